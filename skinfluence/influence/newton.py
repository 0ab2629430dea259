"""Newton-step leave-one-out: ``theta_-i ~ theta + H_-i^-1 g_i`` with the exact leave-one-out
Hessian ``H_-i = H - J_i^T A_i J_i`` and the target evaluated at the predicted parameters.

With ``B_i = H^-1 J_i^T`` and ``M_i = J_i B_i`` (the K x K leverage block), Woodbury gives

    H_-i^-1 g_i = B_i (I - A_i M_i)^-1 r_i,     g_i = J_i^T r_i,

where ``r_i`` and ``A_i`` are the row's scaled output gradient and curvature. For a binary GLM
this is the leverage correction ``H^-1 g_i / (1 - h_i)``; for ridge regression it is exact
leave-one-out. For networks ``J_i^T A_i J_i`` is the Gauss-Newton part of the row's Hessian.
"""

import warnings

import torch

from ..backend.solvers import CholeskySolver


def newton_shifts(objective, solver, rows):
    """Predicted parameter shifts ``theta_-i - theta`` of the rows in slice ``rows``: (c, p)."""
    J, r, A = objective.output_factors(objective.X[rows], objective.y[rows], rows=rows)
    c, K, p = J.shape
    scale = objective.row_scale * objective.weights[rows]
    r, A = scale[:, None] * r, scale[:, None, None] * A
    B = solver.solve(J.reshape(c * K, p).T).T.reshape(c, K, p)
    M = torch.einsum("ckp,clp->ckl", J, B)
    coeff = _leverage_corrected(r, A, M)
    return torch.einsum("ck,ckp->cp", coeff, B)


def _leverage_corrected(r, A, M):
    """``(I - A_i M_i)^-1 r_i`` per row (c, K), warning when a row's leverage reaches 1."""
    K = r.shape[1]
    leverage = (A * M)[:, 0, 0] if K == 1 else _largest_leverage(A, M)
    if bool((leverage > 1 - 1e-8).any()):
        warnings.warn(
            f"{int((leverage > 1 - 1e-8).sum())} rows have leverage >= 1 (max "
            f"{leverage.max().item():.6f}): without them the model is not identified and their "
            "Newton-step estimate is unreliable.",
            RuntimeWarning, stacklevel=4,
        )
    if K == 1:
        return r / (1 - leverage).unsqueeze(1)
    eye = torch.eye(K, dtype=r.dtype, device=r.device)
    return torch.linalg.solve(eye - A @ M, r.unsqueeze(2))[:, :, 0]


def _largest_leverage(A, M):
    """Largest eigenvalue of each ``A_i M_i``: with both blocks positive semi-definite it is
    that of the symmetric ``A_i^1/2 M_i A_i^1/2``, which ``eigvalsh`` finds where the general
    eigensolver of ``A_i M_i`` can fail to converge (ill-conditioned blocks)."""
    w, V = torch.linalg.eigh(A)
    root = V @ torch.diag_embed(w.clamp(min=0).sqrt()) @ V.transpose(1, 2)
    S = root @ M @ root
    return torch.linalg.eigvalsh((S + S.transpose(1, 2)) / 2)[:, -1]


def _jacobian_rows(objective, X):
    """Output Jacobians of rows ``X`` as one (n K, p) matrix (row i*K + k: d Z_ik / d theta)."""
    K = objective.n_outputs
    eye = torch.eye(K, dtype=objective.theta.dtype, device=objective.theta.device)
    rows = [objective.jacobian_transpose_times(X, eye[k].expand(X.shape[0], K))
            for k in range(K)]
    return torch.stack(rows, dim=1).reshape(-1, objective.n_params)


def linear_newton_effects(objective, solver, target):
    """:func:`newton_effects` for a model linear in ``theta`` with a Cholesky factor ``L``.

    The target rows' outputs move by ``J_t H_-i^-1 g_i = (J_t H^-1 J_i^T) coeff_i``, so one
    solve ``P = H^-1 J_t^T`` serves every training row; the leverage blocks
    ``M_i = J_i H^-1 J_i^T`` come from one product through ``X`` with ``L^-1``. No shifted
    parameter vector is formed.
    """
    theta, K, p = objective.theta, objective.n_outputs, objective.n_params
    Z = objective.outputs(theta, target.X)
    m = Z.shape[0]
    P = solver.solve(_jacobian_rows(objective, target.X).T)  # (p, m K)
    base = target.values_of_outputs(Z)
    out = []
    inverse = solver.inverse_factor()
    for s in objective.chunks(objective.n_rows, 2 * p * K + m * K * K):
        r, A = objective.scaled_output_derivatives(s)
        M = objective.leverage_blocks(objective.X[s], inverse)
        coeff = _leverage_corrected(r, A, M)
        moved = torch.einsum("ck,ckj->cj", coeff, objective.jacobian_times(objective.X[s], P))
        out.append(target.values_of_output_sets(Z + moved.reshape(-1, m, K)) - base)
    return torch.cat(out)


def newton_effects(objective, solver, target):
    """Removal effects ``f(theta + shift_i) - f(theta)``, shape (n_train, m)."""
    if hasattr(objective, "jacobian_times") and isinstance(solver, CholeskySolver):
        return linear_newton_effects(objective, solver, target)
    base = target.values(objective.theta)
    out = []
    for s in objective.chunks(objective.n_rows, objective.n_params * (objective.n_outputs + 2)):
        thetas = objective.theta + newton_shifts(objective, solver, s)
        out.append(target.values_at(thetas) - base)
    return torch.cat(out)
