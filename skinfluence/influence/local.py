"""FI: local influence of a training row on a perturbation manifold (trimming paper, section 2).

Perturbing training input ``x_i`` by ``omega`` moves the fitted parameters along

    D_i = d theta_hat / d omega = -c_i H^-1 M_i                       (appendix A, eq. A.7)

with ``M_i = d/dx d/dtheta loss_i`` (p x d), ``c_i = row_scale * w_i`` and ``H`` the Hessian of
the objective **the estimator actually minimised** (regulariser and scaling included). This is
the exact derivative of the estimator's own minimiser; for an unpenalised model fitted on the
plain summed loss it equals the paper's ``-n^-1 H_mean^-1 M_i`` (``H_mean`` the mean Hessian).

The metric tensor of the perturbation manifold (section 2) is

    G_i = sum_c P(c) s_c s_c^T,   s_c = d/domega log P(c | x_i + omega, theta_hat(x_i + omega))
        = (d/dtheta log P(c)) D_i + d/dx log P(c)                      (eq. 2.3)

a d x d matrix of rank ``K - 1`` for K classes (one for a binary model). Regressors use a Gaussian
predictive distribution ``N(f(x), sigma^2)``: ``G_i = s s^T / sigma^2`` with ``s = d f / domega``
and ``sigma^2`` the mean squared training residual (the noise variance's maximum-likelihood
estimate; it scales FI by a constant and leaves rankings unchanged).

For a query gradient ``q = d/dtheta L(z')``, FI is (eq. 2.1-2.2)

    FI(z', z_i) = (q^T D_i) G_i^+ (q^T D_i)^T = || q^T N_i ||^2,   N_i = D_i U_i Lambda_i^-1/2

where ``G_i = U_i Lambda_i U_i^T`` keeps the eigenvalues above ``rcond`` times the largest (the
same cut as ``numpy.linalg.pinv(G_i, rcond, hermitian=True)``). FI is a squared norm: unsigned,
larger = the query's loss is more sensitive to perturbing the row.

Nothing here forms ``M_i`` or ``G_i`` explicitly: ``G_i``'s factor comes from a K x d matrix per
row and ``M_i`` is only applied to vectors (Jacobian-vector products of the parameter gradient
in ``x``), so a binary model costs three solves and a handful of O(p + d) products per row.
"""

import torch
from torch.func import grad, jacrev, jvp, vmap

from ..backend.device import as_tensor


def _mixed_times(objective, X, y, U):
    """``M_i u`` for each row i and each of its vectors ``U[i]`` (m, d): shape (n, m, p)."""
    dtheta = grad(objective.row_loss)
    theta = objective.theta

    def one(x, y, u):
        return jvp(lambda x: dtheta(theta, x, y), (x,), (u,))[1]

    return vmap(vmap(one, in_dims=(None, None, 0)))(X, y, U)


def _times_mixed(objective, X, y, E):
    """``e^T M_i`` for each row i and each of its vectors ``E[i]`` (m, p): shape (n, m, d)."""
    dtheta = grad(objective.row_loss)
    theta = objective.theta

    def one(x, y, e):
        return grad(lambda x: dtheta(theta, x, y) @ e)(x)

    return vmap(vmap(one, in_dims=(None, None, 0)))(X, y, E)


#: Subspace iterations of the truncated SVD of ``M_i`` (KFSVD).
SVD_POWER_ITERATIONS = 2


def _truncated_mixed(objective, X, y, k, n_iter=SVD_POWER_ITERATIONS):
    """Rank-k factors ``(Q, B)`` with ``M_i ~= Q_i B_i`` (section 5, Algorithm 5 step 8).

    Subspace (power) iteration on ``M_i`` through its products with vectors, never forming it:
    ``Q_i`` (p x k) is an orthonormal basis of ``(M_i M_i^T)^n_iter M_i R`` for a Gaussian start
    ``R`` (fixed seed) and ``B_i = Q_i^T M_i`` (k x d). The SVD ``B_i = W S V^T`` gives the
    paper's ``M_i ~= U S V^T`` with ``U = Q_i W``; products only need ``Q_i`` and ``B_i``. With
    ``k = d`` the factorisation is exact. Shapes: Q (c, k, p), B (c, k, d).
    """
    gen = torch.Generator().manual_seed(0)
    R = torch.randn(X.shape[0], k, X.shape[1], generator=gen, dtype=X.dtype).to(X.device)
    for step in range(n_iter + 1):
        Q = torch.linalg.qr(_mixed_times(objective, X, y, R).transpose(1, 2))[0]
        Q = Q.transpose(1, 2)
        R = _times_mixed(objective, X, y, Q)
        if step < n_iter:
            R = torch.linalg.qr(R.transpose(1, 2))[0].transpose(1, 2)
    return Q, R


def _metric_features(objective):
    """``(features, rank)``: per-row functions whose weighted outer products give ``G_i``.

    ``features(theta, x)`` returns ``(f, P)``: K' values and their probability weights, so that
    ``G = sum_c P_c (d f_c) (d f_c)^T``.
    """
    if objective.is_classifier:
        def features(theta, x):
            log_p = objective.log_proba(theta, x.unsqueeze(0))[0]
            return log_p, log_p.exp()
        n_classes = objective.log_proba(objective.theta, objective.X[:1]).shape[1]
        return features, n_classes - 1

    residual_var = _residual_variance(objective)

    def features(theta, x):
        f = objective.outputs(theta, x.unsqueeze(0))[0]
        return f, torch.ones_like(f) / residual_var
    return features, objective.n_outputs


def _residual_variance(objective):
    """Weighted mean squared training residual, the Gaussian noise variance of a regressor."""
    total = 0.0
    for s in objective.chunks(objective.n_rows, objective.n_outputs):
        total += (objective.weights[s] * objective.loss(objective.theta, objective.X[s],
                                                        objective.y[s])).sum()
    return (total / objective.weights.sum()).clamp_min(torch.finfo(objective.theta.dtype).tiny)


def _row_indices(objective, rows):
    if rows is None:
        return torch.arange(objective.n_rows, device=objective.theta.device)
    if isinstance(rows, slice):
        return torch.arange(objective.n_rows, device=objective.theta.device)[rows]
    return torch.as_tensor(rows, dtype=torch.long, device=objective.theta.device).reshape(-1)


def _factor_chunk(objective, solver, index, features, rank, rcond, svd_rank=None):
    X, y = objective.X[index], objective.y[index]
    coeff = (objective.row_scale * objective.weights[index])[:, None, None]
    c, p = X.shape[0], objective.n_params
    theta = objective.theta
    if svd_rank is None:
        def times_mixed(E):
            return _times_mixed(objective, X, y, E)

        def mixed_times(U):
            return _mixed_times(objective, X, y, U)
    else:
        Q, Bm = _truncated_mixed(objective, X, y, min(svd_rank, X.shape[1], p))

        def times_mixed(E):
            return (E @ Q.transpose(1, 2)) @ Bm

        def mixed_times(U):
            return (U @ Bm.transpose(1, 2)) @ Q

    def feature_values(theta, x):
        return features(theta, x)[0]

    d_theta, d_x = vmap(jacrev(feature_values, argnums=(0, 1)), in_dims=(None, 0))(theta, X)
    weights = vmap(lambda x: features(theta, x)[1])(X)  # (c, K')
    k = d_theta.shape[1]
    # s_c = (d/dtheta f_c) D_i + d/dx f_c with D_i = -c_i H^-1 M_i          (eq. 2.3, A.7)
    solved = solver.solve(d_theta.reshape(c * k, p).T).T.reshape(c, k, p)
    S = d_x - coeff * times_mixed(solved)
    B = weights.clamp_min(0).sqrt().unsqueeze(2) * S  # G_i = B_i^T B_i
    # eigenpairs of G_i from the small K' x K' Gram matrix B_i B_i^T = W diag(lam) W^T
    lam, W = torch.linalg.eigh(B @ B.transpose(1, 2))
    lam, W = lam.flip(1)[:, :rank], W.flip(2)[:, :, :rank]
    keep = lam > rcond * lam[:, :1].clamp_min(0)
    keep &= lam > 0
    safe = torch.where(keep, lam, torch.ones_like(lam))
    # unit eigenvectors of G_i: u_j = B_i^T w_j / sqrt(lam_j); N_i = D_i u_j / sqrt(lam_j)
    U = (W.transpose(1, 2) @ B) / safe.sqrt().unsqueeze(2)  # (c, r, d)
    U = torch.where(keep.unsqueeze(2), U, torch.zeros_like(U))
    MU = mixed_times(U)  # (c, r, p)
    r = MU.shape[1]
    N = -coeff * solver.solve(MU.reshape(c * r, p).T).T.reshape(c, r, p)
    N = N / safe.sqrt().unsqueeze(2)
    return N.transpose(1, 2)


def _factor_chunks(objective, solver, rows, rcond, svd_rank=None):
    """Yield ``(positions, N)`` chunk by chunk over the selected rows."""
    index = _row_indices(objective, rows)
    features, rank = _metric_features(objective)
    d = objective.X.shape[1]
    rank = min(rank, d)
    k = rank + 1
    per_row = 4 * (k + (svd_rank or 0)) * (objective.n_params + d)
    for s in objective.chunks(len(index), per_row):
        yield s, _factor_chunk(objective, solver, index[s], features, rank, rcond, svd_rank)


def local_influence_factors(objective, solver, *, rows=None, rcond=1e-10, svd_rank=None):
    """Factors ``N_i`` with ``FI(z', z_i) = || q(z')^T N_i ||^2`` for any query gradient ``q``.

    Parameters
    ----------
    objective : skinfluence.backend.Objective
        The fitted model's objective view.
    solver : curvature solver
        ``solver.solve(V) = H^-1 V`` for the objective's Hessian (e.g. from ``make_solver``).
    rows : slice or array-like of int, optional
        Training rows to factor, default all.
    rcond : float, default=1e-10
        Eigenvalues of ``G_i`` below ``rcond`` times its largest are treated as zero (the
        pseudo-inverse's cut).
    svd_rank : int, optional
        KFSVD (section 5): replace each ``M_i`` by its rank-``svd_rank`` truncated SVD from
        ``SVD_POWER_ITERATIONS`` subspace iterations (capped at d; exact when it is d).
        Default: ``M_i`` exactly. The kernel never forms ``M_i`` either way, so this
        approximates without saving memory; the KFSVD pairing uses it with
        :class:`~skinfluence.backend.kfac.KFACSolver` as ``solver``.

    Returns
    -------
    torch.Tensor of shape (n_rows, p, r)
        ``N_i = D_i U_i Lambda_i^-1/2`` with ``r = K - 1`` for K classes (1 for a binary
        model), the number of outputs for a regressor (capped at the feature count d).
    """
    return torch.cat([N for _, N in _factor_chunks(objective, solver, rows, rcond, svd_rank)])


def local_influence(objective, solver, query_gradients, *, rows=None, rcond=1e-10,
                    svd_rank=None):
    """FI (eq. 2.1) of each training row for each query gradient.

    Parameters
    ----------
    objective, solver, rows, rcond, svd_rank
        As in :func:`local_influence_factors`.
    query_gradients : tensor or array of shape (m, p) or (p,)
        ``d/dtheta L(z')`` of each query ``z'`` at the fitted parameters.

    Returns
    -------
    torch.Tensor of shape (m, n_rows)
        ``FI(z'_j, z_i) >= 0``; larger = the query's loss is more sensitive to row i.
    """
    theta = objective.theta
    Q = as_tensor(query_gradients, theta.device, theta.dtype) if not torch.is_tensor(
        query_gradients) else query_gradients.to(theta.device, theta.dtype)
    Q = Q.reshape(-1, objective.n_params)
    out = [torch.einsum("mp,npr->mnr", Q, N).pow(2).sum(2)
           for _, N in _factor_chunks(objective, solver, rows, rcond, svd_rank)]
    return torch.cat(out, dim=1)


def fi_util(objective, solver, target, *, rows=None, rcond=1e-10, svd_rank=None):
    """FI^util (eq. 3.1, Algorithm 1): FI with the mean validation-loss gradient as the query.

    Parameters
    ----------
    objective, solver, rows, rcond, svd_rank
        As in :func:`local_influence_factors`.
    target : Target
        Validation rows; the query is the mean of its gradients (of ``"loss"`` or the
        gradient of ``"mean_loss"``).

    Returns
    -------
    torch.Tensor of shape (n_rows,)
        Unsigned; Algorithm 3 trims the rows with the largest values.
    """
    query = target.gradients().mean(0, keepdim=True)
    return local_influence(objective, solver, query, rows=rows, rcond=rcond,
                           svd_rank=svd_rank)[0]
