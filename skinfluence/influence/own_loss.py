"""Each training row's own loss: in-sample, and under the parameters refitted without the row.

The leave-one-out parameters come from the Newton-step removal estimate
(:func:`~skinfluence.influence.newton.newton_shifts`, exact for ridge and least squares), so the
leave-one-out loss of row i is ``loss(theta + shift_i, x_i, y_i)``: for ridge the squared
leave-one-out residual ``(e_i / (1 - h_ii))^2``, for a classifier the log loss of the row's label
under a model that never saw it (an out-of-sample confidence, like cross-validated
probabilities, from one fit).
"""

import torch
from torch.func import vmap

from .newton import newton_shifts


def own_losses(objective):
    """In-sample natural loss of every training row at the fitted ``theta``: shape (n,)."""
    out = [objective.loss(objective.theta, objective.X[s], objective.y[s])
           for s in objective.chunks(objective.n_rows, objective.n_outputs)]
    return torch.cat(out)


def loo_values(objective, solver, fn):
    """``fn(theta_-i, x_i, y_i)`` of every training row at its leave-one-out parameters.

    Parameters
    ----------
    objective : Objective
    solver : a curvature solver with ``solve(V) = H^-1 V``
    fn : callable
        ``fn(theta, x, y)`` of one row (no batch dimension), vectorised with ``vmap``.

    Returns
    -------
    torch.Tensor of shape (n, ...)
    """
    out = []
    for s in objective.chunks(objective.n_rows, objective.n_params * (objective.n_outputs + 2)):
        thetas = objective.theta + newton_shifts(objective, solver, s)
        out.append(vmap(fn)(thetas, objective.X[s], objective.y[s]))
    return torch.cat(out)


def loo_losses(objective, solver):
    """Natural loss of every training row under the parameters refitted without it: (n,)."""
    return loo_values(objective, solver, objective.row_loss)


def loo_log_proba(objective, solver):
    """Class log-probabilities of every training row without it (classifiers): (n, n_classes)."""
    def one(theta, x, _):
        return objective.log_proba(theta, x.unsqueeze(0))[0]
    return loo_values(objective, solver, one)


def loo_outputs(objective, solver):
    """Raw outputs of every training row without it (e.g. leave-one-out predictions): (n, K)."""
    def one(theta, x, _):
        return objective.outputs(theta, x.unsqueeze(0))[0]
    return loo_values(objective, solver, one)
