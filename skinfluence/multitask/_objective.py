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
    hessian_blocks : callable, default=None
        ``hessian_blocks(X, y, index)`` returning the blocks of the Hessian in closed form (see
        :meth:`hessian_blocks`); by default torch.func differentiates the objective twice.
    """

    def __init__(self, classes, theta, gamma, loss, penalty, hessian_blocks=None):
        self.classes = np.asarray(classes)
        self.theta, self.gamma = theta, gamma
        self.loss, self.penalty = loss, penalty
        self._closed_form_hessian = hessian_blocks

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

    def hessian_blocks(self, X, y, index):
        """Blocks of the Hessian (6) of L at the fit.

        Parameters
        ----------
        X, y : torch.Tensor
            Training rows.
        index : list of K integer arrays
            The rows of each task.

        Returns
        -------
        A : torch.Tensor of shape (K, d_t, d_t)
        B : torch.Tensor of shape (K, d_t, p)
        D : torch.Tensor of shape (p, p)
        """
        if self._closed_form_hessian is not None:
            return self._closed_form_hessian(X, y, index)
        A, B, D = [], [], 0.0
        for k, rows in enumerate(index):
            (h_tt, h_tg), (_, h_gg) = hessian(self._task_term(k, X[rows], y[rows]),
                                              argnums=(0, 1))(self.theta[k], self.gamma)
            A.append(h_tt)
            B.append(h_tg)
            D = D + h_gg
        return torch.stack(A), torch.stack(B), D

    def row_gradients(self, X, y, pos):
        """Per-row loss gradients ``d loss_i / d theta_k(i)`` (n, d_t) and ``/ d gamma`` (n, p)."""
        def one(th, g, x, t):
            return self.loss(th, g, x.unsqueeze(0), t.unsqueeze(0)).sum()

        per_row = vmap(grad(one, argnums=(0, 1)), in_dims=(0, None, 0, 0))
        pos = torch.as_tensor(pos, device=self.device)
        parts = [
            per_row(self.theta[pos[s]], self.gamma, X[s], y[s])
            for s in (slice(i, i + CHUNK_ROWS) for i in range(0, len(X), CHUNK_ROWS))
        ]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def penalty_gradients(self):
        """Gradients of each ``Omega_k``: (K, d_t) and (K, p)."""
        grads = [grad(lambda th, g, k=k: self.penalty(k, th, g), argnums=(0, 1))(
            self.theta[k], self.gamma) for k in range(len(self.classes))]
        return torch.stack([g[0] for g in grads]), torch.stack([g[1] for g in grads])

    def task_gradients(self, X, y, pos, with_penalty=False):
        """Gradient of each task's mean loss over its rows (+ its penalty): (K, d_t), (K, p).

        Also returns the per-row gradients it averaged, ``(n, d_t), (n, p)``.
        """
        rows_theta, rows_gamma = self.row_gradients(X, y, pos)
        pos = torch.as_tensor(pos, device=self.device)
        K = len(self.classes)
        counts = torch.bincount(pos, minlength=K).clamp_min(1).to(rows_theta.dtype)
        mean_theta = rows_theta.new_zeros(K, rows_theta.shape[1]).index_add_(0, pos, rows_theta)
        mean_gamma = rows_gamma.new_zeros(K, rows_gamma.shape[1]).index_add_(0, pos, rows_gamma)
        mean_theta, mean_gamma = mean_theta / counts[:, None], mean_gamma / counts[:, None]
        if with_penalty:
            pen_theta, pen_gamma = self.penalty_gradients()
            mean_theta, mean_gamma = mean_theta + pen_theta, mean_gamma + pen_gamma
        return (mean_theta, mean_gamma), (rows_theta, rows_gamma)
