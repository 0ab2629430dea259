"""First-order measures: the classic influence function, self-influence and IV.

All are removal effects under the library's convention: for training row i with training
gradient ``g_i = row_scale * w_i * grad loss_i`` the parameters move by ``theta_-i - theta ~
H^-1 g_i`` (Koh & Liang 2017, up to their upweighting sign and 1/n scaling), so a target f moves by
``grad f^T H^-1 g_i``.
"""

import torch

from ..backend.solvers import CholeskySolver, quadratic_forms


def influence_function(objective, solver, target):
    """Predicted removal effects ``grad f_j^T H^-1 g_i``, shape (n_train, m).

    Parameters
    ----------
    objective : Objective
    solver : a curvature solver with ``solve(V) = H^-1 V``
    target : Target
    """
    projected = solver.solve(target.gradients().T)  # H^-1 grad f, shape (p, m)
    chunks = objective.chunks(objective.n_rows, objective.n_params)
    effects = [objective.train_grads_times(s, projected) for s in chunks]
    return effects[0] if len(effects) == 1 else torch.cat(effects)


def self_influence(objective, solver):
    """Predicted removal effect of each row on its own loss, ``grad loss_i^T H^-1 g_i`` (>= 0).

    Large values flag rows the model bends towards (outliers, mislabelled rows).
    """
    if hasattr(objective, "leverage_blocks") and isinstance(solver, CholeskySolver):
        return _linear_self_influence(objective, solver)
    out = []
    for s in objective.chunks(objective.n_rows, 2 * objective.n_params):
        G = objective.row_grads(objective.X[s], objective.y[s])
        scale = objective.row_scale * objective.weights[s]
        out.append(scale * quadratic_forms(solver, G))
    return torch.cat(out)


def _linear_self_influence(objective, solver):
    """``r_i^T M_i (s_i r_i)`` for a model linear in ``theta``, with the leverage blocks
    ``M_i = J_i H^-1 J_i^T``: no per-row gradient is formed."""
    inverse = solver.inverse_factor()
    out = []
    for s in objective.chunks(objective.n_rows, objective.n_params * objective.n_outputs):
        M = objective.leverage_blocks(objective.X[s], inverse)
        r, scaled = objective.row_output_grads(s), objective.scaled_output_derivatives(s)[0]
        out.append(torch.einsum("ck,ckl,cl->c", r, M, scaled))
    return torch.cat(out)


def influence_value(objective, solver, target):
    """IV of Chhabra et al. (2024), as the trimming paper's introduction writes it.

    ``IV_i = sum_v grad L_v^T [sum_j grad^2 L_j]^-1 grad L_i`` over validation rows v: plain data
    losses, no regulariser, weights or scaling. Negative = harmful to the validation loss, the same
    sign as a removal effect. ``solver`` must solve with ``objective.hessian(data_only=True)``.
    """
    direction = solver.solve(target.gradients().sum(0))
    chunks = objective.chunks(objective.n_rows, objective.n_params)
    return torch.cat([objective.row_grads(objective.X[s], objective.y[s]) @ direction
                      for s in chunks])
