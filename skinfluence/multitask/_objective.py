"""Differentiable view of a fitted multitask model: the objective (1) of the MTIF paper.

A multitask model with task labels ``classes_``, task parameters ``theta_k`` (one row of
``theta``, same length for every task) and shared parameters ``gamma`` minimised

    L(theta, gamma) = sum_k [ mean_{i in task k} loss(theta_k, gamma; x_i, y_i)
                              + penalty_k(theta_k, gamma) ].

Models register a builder with :func:`multitask_objective` (from the module that defines them),
so that :class:`MultitaskInfluence` works with any model that provides one.
"""

from functools import singledispatch

import numpy as np
import torch
from torch.func import grad, hessian, vmap

from skinfluence.backend.device import as_tensor

#: Rows per chunk of per-row gradients.
CHUNK_ROWS = 4096


@singledispatch
def multitask_objective(estimator, device):
    """Return the :class:`MultitaskObjective` of a fitted multitask ``estimator``."""
    raise TypeError(
        f"{type(estimator).__name__} is not a registered multitask model; use MultitaskRidge or "
        "SharedBottomNetwork, or register a builder with "
        "`skinfluence.multitask.multitask_objective.register`."
    )


def task_positions(classes, tasks):
    """Positions of the task labels ``tasks`` in ``classes``; ValueError for unseen labels."""
    tasks = np.asarray(tasks)
    pos = np.searchsorted(classes, tasks)
    pos = np.clip(pos, 0, len(classes) - 1)
    unseen = classes[pos] != tasks
    if unseen.any():
        raise ValueError(
            f"Task labels {np.unique(tasks[unseen]).tolist()} were not seen in fit; the model "
            f"knows the tasks {classes.tolist()}."
        )
    return pos


class MultitaskObjective:
    """Training objective of a fitted multitask model, in torch.

    Parameters
    ----------
    classes : ndarray of shape (K,)
        Sorted task labels.
    theta : torch.Tensor of shape (K, d_t)
        Task-specific parameters, one row per task.
    gamma : torch.Tensor of shape (p,)
        Shared parameters.
    loss : callable
        ``loss(theta_k, gamma, X, y)`` returns the per-row losses (n,) of task-k rows.
    penalty : callable
        ``penalty(k, theta_k, gamma)`` returns the scalar regulariser ``Omega_k``.
    task_hessian : callable, default=None
        ``task_hessian(k, X, y)`` returns the Hessian blocks ``(d2/dtheta_k^2, d2/dtheta_k dgamma,
        d2/dgamma^2)`` of the k-th summand of L in closed form; by default torch.func computes
        them by automatic differentiation.
    """

    def __init__(self, classes, theta, gamma, loss, penalty, task_hessian=None):
        self.classes = np.asarray(classes)
        self.theta, self.gamma = theta, gamma
        self.loss, self.penalty = loss, penalty
        self.task_hessian = task_hessian or self._autodiff_hessian

    @property
    def device(self):
        return self.gamma.device

    def tensors(self, X, y):
        return as_tensor(X, self.device), as_tensor(y, self.device)

    def _task_term(self, k, X, y, with_penalty=True):
        """The k-th summand of L (or its mean loss alone) as a function of (theta_k, gamma)."""
        def term(th, g):
            value = self.loss(th, g, X, y).mean()
            return value + self.penalty(k, th, g) if with_penalty else value

        return term

    def task_losses(self, X, y, tasks, labels):
        """Mean loss of each task in ``labels`` over its rows of (X, y); NaN without rows."""
        X, y = self.tensors(X, y)
        tasks = np.asarray(tasks)
        pos = dict(zip(self.classes.tolist(), range(len(self.classes))))
        out = np.full(len(labels), np.nan)
        with torch.no_grad():
            for j, label in enumerate(labels):
                rows = np.flatnonzero(tasks == label)
                if len(rows) and label in pos:
                    k = pos[label]
                    out[j] = self.loss(self.theta[k], self.gamma, X[rows], y[rows]).mean().item()
        return out

    def _autodiff_hessian(self, k, X, y):
        (h_tt, h_tg), (_, h_gg) = hessian(self._task_term(k, X, y), argnums=(0, 1))(
            self.theta[k], self.gamma)
        return h_tt, h_tg, h_gg

    def hessian_blocks(self, X, y, index):
        """Blocks of the Hessian (6): lists ``A_k`` (d_t, d_t) and ``B_k`` (d_t, p), and ``D``."""
        A, B, D = [], [], 0.0
        for k, rows in enumerate(index):
            h_tt, h_tg, h_gg = self.task_hessian(k, X[rows], y[rows])
            A.append(h_tt)
            B.append(h_tg)
            D = D + h_gg
        return A, B, D

    def task_gradients(self, X, y, index, with_penalty):
        """Gradient of each task's mean loss (+ penalty): (K, d_t) and (K, p)."""
        g_theta, g_gamma = [], []
        for k in range(len(self.classes)):
            term = self._task_term(k, X[index[k]], y[index[k]], with_penalty)
            gt, gg = grad(term, argnums=(0, 1))(self.theta[k], self.gamma)
            g_theta.append(gt)
            g_gamma.append(gg)
        return torch.stack(g_theta), torch.stack(g_gamma)

    def row_gradients(self, X, y, task_of_row):
        """Per-row loss gradients ``d loss_i / d theta_k(i)`` (n, d_t) and ``/ d gamma`` (n, p)."""
        def one(th, g, x, t):
            return self.loss(th, g, x.unsqueeze(0), t.unsqueeze(0)).sum()

        per_row = vmap(grad(one, argnums=(0, 1)), in_dims=(0, None, 0, 0))
        task_of_row = torch.as_tensor(task_of_row, device=self.device)
        parts = [
            per_row(self.theta[task_of_row[s]], self.gamma, X[s], y[s])
            for s in (slice(i, i + CHUNK_ROWS) for i in range(0, len(X), CHUNK_ROWS))
        ]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
