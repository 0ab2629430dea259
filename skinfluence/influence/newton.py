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


def newton_shifts(objective, solver, rows):
    """Predicted parameter shifts ``theta_-i - theta`` of the rows in slice ``rows``: (c, p)."""
    J, r, A = objective.output_factors(objective.X[rows], objective.y[rows], rows=rows)
    c, K, p = J.shape
    scale = objective.row_scale * objective.weights[rows]
    r, A = scale[:, None] * r, scale[:, None, None] * A
    B = solver.solve(J.reshape(c * K, p).T).T.reshape(c, K, p)
    M = torch.einsum("ckp,clp->ckl", J, B)
    eye = torch.eye(K, dtype=J.dtype, device=J.device)
    system = eye - A @ M
    # leverage of the row: removal leaves the parameters unidentified when it reaches 1
    leverage = torch.linalg.eigvals(A @ M).real.max(dim=1).values
    if bool((leverage > 1 - 1e-8).any()):
        warnings.warn(
            f"{int((leverage > 1 - 1e-8).sum())} rows have leverage >= 1 (max "
            f"{leverage.max().item():.6f}): without them the model is not identified and their "
            "Newton-step estimate is unreliable.",
            RuntimeWarning, stacklevel=3,
        )
    coeff = torch.linalg.solve(system, r.unsqueeze(2))[:, :, 0]
    return torch.einsum("ck,ckp->cp", coeff, B)


def newton_effects(objective, solver, target):
    """Removal effects ``f(theta + shift_i) - f(theta)``, shape (n_train, m)."""
    base = target.values(objective.theta)
    out = []
    for s in objective.chunks(objective.n_rows, objective.n_params * (objective.n_outputs + 2)):
        thetas = objective.theta + newton_shifts(objective, solver, s)
        out.append(target.values_at(thetas) - base)
    return torch.cat(out)
