"""Curvature solvers: prepare once, then ``solve(V)`` returns ``H^-1 V`` for a block of vectors.

Three interchangeable strategies:

* :class:`CholeskySolver` — exact, from an explicit Hessian (small parameter counts).
* :class:`CGSolver` — conjugate gradient over Hessian-vector products (matrix-free).
* :class:`LanczosSolver` — low-rank eigendecomposition from Lanczos iterations over
  Hessian-vector products; exact when ``rank`` equals the parameter count.

Damping
-------
Every solver takes ``damping`` (``H + damping * I``). :class:`CholeskySolver` also applies a
documented fallback: when ``H + damping * I`` is not positive definite it warns with the measured
smallest eigenvalue and raises the damping to ``|lambda_min| + 1e-6 * mean(diag H)``, the smallest
shift that makes the matrix safely invertible.
"""

import warnings

import torch

from .diagnostics import DiagnosticWarning

__all__ = ["CGSolver", "CholeskySolver", "LanczosSolver", "make_solver", "quadratic_forms"]


def _as_block(V):
    """View a vector as a one-column block; remember to squeeze it back."""
    return (V.unsqueeze(1), True) if V.ndim == 1 else (V, False)


class CholeskySolver:
    """Exact solves with a Cholesky factor of ``H + damping * I``.

    Parameters
    ----------
    H : torch.Tensor of shape (p, p)
        Symmetric Hessian.
    damping : float, default=0.0
        Added to the diagonal before factorising.
    """

    def __init__(self, H, damping=0.0):
        H = 0.5 * (H + H.T)
        if not torch.isfinite(H).all():
            raise ValueError("The Hessian holds NaN or infinity: the fitted parameters or the "
                             "data are not finite (an unpenalised fit that diverged?).")
        eye = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        factor, info = torch.linalg.cholesky_ex(H + damping * eye)
        if info.item() != 0:
            lam_min = torch.linalg.eigvalsh(H)[0].item()
            shift = abs(lam_min) + 1e-6 * H.diagonal().abs().mean().item() + damping
            if shift <= 0:
                raise ValueError("The Hessian is zero: the objective has no curvature in "
                                 "theta. Pass damping > 0 or check the loss.")
            warnings.warn(
                f"The Hessian is not positive definite (smallest eigenvalue {lam_min:.3g}); "
                f"adding damping {shift:.3g} to its diagonal. Influence estimates are then "
                "approximate: check that the model has converged, or pass a larger `damping`.",
                DiagnosticWarning,
                stacklevel=2,
            )
            damping = shift
            factor = torch.linalg.cholesky(H + damping * eye)
        self.damping = damping
        self.factor = factor
        self._inverse_factor = None

    def inverse_factor(self):
        """``L^-1`` (p, p) for the factor ``L``: ``||L^-1 v||^2 = v^T (H + damping I)^-1 v``."""
        if self._inverse_factor is None:
            L = self.factor
            eye = torch.eye(L.shape[0], dtype=L.dtype, device=L.device)
            self._inverse_factor = torch.linalg.solve_triangular(L, eye, upper=False)
        return self._inverse_factor

    def solve(self, V):
        """Return ``(H + damping I)^-1 V`` for ``V`` of shape (p,) or (p, m)."""
        block, squeeze = _as_block(V)
        out = torch.cholesky_solve(block, self.factor)
        return out.squeeze(1) if squeeze else out


def _column_dots(A, B):
    """``(A * B).sum(0)``: the dot products of matching columns (einsum: several times faster
    than ``torch.linalg.vecdot`` on the CPU)."""
    return torch.einsum("ij,ij->j", A, B)


def quadratic_forms(solver, G):
    """Row-wise ``g_i^T (H + damping I)^-1 g_i`` for the rows of ``G`` (n, p): shape (n,).

    With a Cholesky factor ``L`` this is ``||L^-1 g_i||^2``: one product with the p x p inverse
    factor (a matrix product runs faster than a triangular solve with many right-hand sides),
    and the result is non-negative by construction.
    """
    if isinstance(solver, CholeskySolver):
        W = G @ solver.inverse_factor().T  # rows L^-1 g_i
        return torch.einsum("ij,ij->i", W, W)
    return (G * solver.solve(G.T).T).sum(1)


class CGSolver:
    """Conjugate gradient on ``(H + damping I) X = V``, all columns at once.

    Parameters
    ----------
    hvp : callable
        ``hvp(V)`` returns ``H V`` for a block ``V`` of shape (p, m).
    damping : float, default=0.0
    tol : float, default=1e-10
        Stop when every column's residual norm is below ``tol`` times its right-hand side's norm.
    max_iter : int, default=None
        Defaults to ``10 * p``.
    diagonal : torch.Tensor of shape (p,), optional
        The diagonal of ``H``: preconditions CG by ``diag(H + damping I)^-1`` (Jacobi), which
        cuts the iterations when the parameters' curvatures differ by orders of magnitude
        (e.g. sparse features of very different frequencies).
    """

    def __init__(self, hvp, damping=0.0, tol=1e-10, max_iter=None, diagonal=None):
        self.hvp, self.damping, self.tol, self.max_iter = hvp, damping, tol, max_iter
        self.diagonal = diagonal

    def _apply(self, V):
        HV = self.hvp(V)
        return HV.add_(V, alpha=self.damping) if self.damping else HV

    def _precondition(self, R):
        if self.diagonal is None:
            return R
        scale = (self.diagonal + self.damping).clamp_min(torch.finfo(R.dtype).tiny)
        return R / scale.unsqueeze(1)

    def solve(self, V):
        """Return ``(H + damping I)^-1 V`` for ``V`` of shape (p,) or (p, m).

        Where CG meets a direction ``p`` of non-positive curvature, ``H + damping I`` is not
        positive definite: as :class:`CholeskySolver`, it warns with the measured curvature
        ``p^T (H + damping I) p / p^T p`` and raises ``damping`` (kept for later solves), by
        twice that curvature's size or by doubling, until CG meets none.
        """
        B, squeeze = _as_block(V)
        B = B.contiguous()
        X, curvature = self._conjugate_gradient(B)
        if curvature is not None:
            before, first = self.damping, curvature
            while curvature is not None:
                self.damping = (max(2 * self.damping, self.damping + 2 * abs(curvature))
                                + torch.finfo(B.dtype).eps)
                X, curvature = self._conjugate_gradient(B)
            warnings.warn(
                f"The Hessian is not positive definite (curvature {first:.3g} along a "
                f"conjugate-gradient direction, damping {before:.3g} included); damping raised "
                f"to {self.damping:.3g}. Influence estimates are then approximate: check that "
                "the model has converged, or pass a larger `damping`.",
                DiagnosticWarning,
                stacklevel=2,
            )
        return X.squeeze(1) if squeeze else X

    def _conjugate_gradient(self, B):
        """The solution of the columns of ``B`` and None, or, at the first direction of
        non-positive curvature, None and that curvature."""
        X = torch.zeros_like(B)
        R = B.clone()
        Z = self._precondition(R)
        P = Z.clone()
        rz = _column_dots(R, Z)
        stop = self.tol**2 * _column_dots(B, B)
        tiny = torch.finfo(B.dtype).tiny
        max_iter = self.max_iter or 10 * B.shape[0]
        for _ in range(max_iter):
            if bool((_column_dots(R, R) <= stop).all()):
                break
            AP = self._apply(P)
            pap, pp = _column_dots(P, AP), _column_dots(P, P)
            bent = (pap <= 0) & (pp > 0)
            if bool(bent.any()):
                return None, (pap[bent] / pp[bent]).min().item()
            alpha = rz / pap.clamp_min(tiny)
            X.addcmul_(alpha.expand_as(P), P)
            R.addcmul_(alpha.expand_as(AP), AP, value=-1)
            Z = self._precondition(R)
            rz_new = _column_dots(R, Z)
            P.mul_(rz_new / rz.clamp_min(tiny)).add_(Z)
            rz = rz_new
        else:
            worst = (_column_dots(R, R) / _column_dots(B, B).clamp_min(1e-300)).sqrt().max().item()
            warnings.warn(
                f"Conjugate gradient stopped after {max_iter} iterations with relative residual "
                f"{worst:.3g}; increase `damping` or use the exact solver.",
                RuntimeWarning,
                stacklevel=3,
            )
        return X, None


class LanczosSolver:
    """Low-rank inverse from ``rank`` Lanczos iterations with full reorthogonalisation.

    ``H^-1 V ~= U diag(1 / (lambda + damping)) U^T V`` over the ``rank`` Ritz pairs; the
    component of ``V`` outside their span is divided by the smallest Ritz value (plus damping).
    With ``rank = p`` the result is exact up to round-off.

    Parameters
    ----------
    hvp : callable
        ``hvp(V)`` returns ``H V`` for a block ``V`` of shape (p, m).
    n_params : int
        The dimension p.
    rank : int, default=50
        Number of Lanczos iterations (capped at ``n_params``).
    damping : float, default=0.0
    random_state : int, default=0
        Seed of the start vector.
    dtype, device
        Of the vectors ``hvp`` takes.
    """

    def __init__(self, hvp, n_params, rank=50, damping=0.0, random_state=0,
                 dtype=torch.float64, device="cpu"):
        rank = min(rank, n_params)
        gen = torch.Generator().manual_seed(random_state)
        q = torch.randn(n_params, generator=gen, dtype=dtype).to(device)
        Q = torch.zeros(n_params, rank, dtype=dtype, device=device)
        alphas, betas = [], []
        q = q / q.norm()
        for j in range(rank):
            Q[:, j] = q
            w = hvp(q.unsqueeze(1)).squeeze(1)
            alphas.append(torch.dot(w, q))
            # full reorthogonalisation keeps the Ritz vectors orthogonal in floating point
            w = w - Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
            w = w - Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
            beta = w.norm()
            if j + 1 == rank or beta <= 1e-12 * alphas[0].abs():
                Q = Q[:, : j + 1]
                break
            betas.append(beta)
            q = w / beta
        k = Q.shape[1]
        T = torch.diag(torch.stack(alphas[:k]))
        if k > 1:
            off = torch.stack(betas[: k - 1])
            T = T + torch.diag(off, 1) + torch.diag(off, -1)
        evals, evecs = torch.linalg.eigh(T)
        if evals[0] + damping <= 0:
            raise ValueError(
                f"The low-rank Hessian has a non-positive eigenvalue ({evals[0].item():.3g}); "
                "pass a `damping` larger than its magnitude."
            )
        self.eigenvalues = evals
        self.eigenvectors = Q @ evecs
        self.damping = damping

    def solve(self, V):
        """Return the low-rank approximation of ``(H + damping I)^-1 V``."""
        B, squeeze = _as_block(V)
        U, lam = self.eigenvectors, self.eigenvalues + self.damping
        coeff = U.T @ B
        out = U @ (coeff / lam.unsqueeze(1)) + (B - U @ coeff) / lam[0]
        return out.squeeze(1) if squeeze else out


def make_solver(objective, solver="auto", damping=0.0, rank=50):
    """Build a curvature solver for an objective view.

    Parameters
    ----------
    objective : skinfluence.backend.Objective
    solver : {"auto", "cholesky", "cg", "lowrank"}, default="auto"
        ``"auto"`` is exact Cholesky up to 5 000 parameters and CG beyond.
    damping : float, default=0.0
    rank : int, default=50
        Lanczos iterations for ``"lowrank"``.
    """
    if solver == "auto":
        solver = "cholesky" if objective.n_params <= 5000 else "cg"
    if solver == "cholesky":
        return CholeskySolver(objective.hessian(), damping=damping)
    if solver == "cg":
        diagonal = getattr(objective, "hessian_diagonal", None)
        return CGSolver(objective.hvp, damping=damping,
                        diagonal=None if diagonal is None else diagonal())
    if solver == "lowrank":
        theta = objective.theta
        return LanczosSolver(objective.hvp, objective.n_params, rank=rank, damping=damping,
                             dtype=theta.dtype, device=theta.device)
    raise ValueError(
        f"solver={solver!r} is not supported; use 'auto', 'cholesky', 'cg' or 'lowrank'."
    )
