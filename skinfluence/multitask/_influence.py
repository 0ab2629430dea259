"""MultiTask Influence Function (MTIF): data-level and task-level removal effects.

Sign convention (the library's): every score is a removal effect on a task's validation loss,
``V_k(fitted without the row or task) - V_k(fitted with all)``; positive = the row/task helps
task k. The paper's (2)-(3) use the opposite sign.

Derivation (Lemmas F.3, F.4 and F.6). Removing row i of task l from the objective (1), which
averages each task's losses, changes the gradient of the objective at the fit by
``-(grad loss_i - mean_l) / (n_l - 1)`` where ``mean_l`` is the mean loss gradient of task l (the
other rows of task l are re-averaged over ``n_l - 1``). One Newton step gives the parameter shift

    delta w_i = H^-1 (grad loss_i - mean_l) / (n_l - 1),

and the effect on target task k is ``g_k . delta w_i`` with ``g_k`` the gradient of ``V_k``. The
block solve ``H^-1`` (Lemma F.6, :class:`~skinfluence.backend.block_arrow.BlockArrowSolver`)
gives for a gradient ``(v_l in block l, v_gamma)`` the shared shift
``N^-1 (v_gamma - H_{K+1,l} H_ll^-1 v_l)``: the paper's equation (7) has the wrong sign on its
first term, and equations (8)-(9) carry the opposite sign on ``H_kk^-1 H_{k,K+1} d gamma``
(right: ``d theta_k = -H_kk^-1 (g_k + H_{k,K+1} d gamma)``); the two errors cancel only when
the loss does not involve gamma (Example 1). Tests settle this against the dense ``H^-1 g``.

Removing task l (Proposition 2, regulariser included) drops its whole summand
``mean loss_l + Omega_l``: ``delta w = H^-1 grad(mean loss_l + Omega_l)``.
"""

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted

from skinfluence._validation import DeviceOption, check_finite_target, check_validation_tasks
from skinfluence.backend.block_arrow import BlockArrowSolver
from skinfluence.backend.device import resolve_device
from skinfluence.multitask._objective import multitask_objective, task_positions
from skinfluence.multitask._tasks import check_tasks


def _check_data(X, y, tasks, X_val, y_val, tasks_val, copy=False):
    """Validate training and validation data; the training rows are the default validation.

    With ``copy=True`` no returned array shares memory with the inputs (those that validation
    did not already convert are copied), so that later changes to the inputs do not reach them.
    """
    def owned(checked, given):
        return checked.copy() if copy and np.may_share_memory(checked, given) else checked

    X = owned(check_array(X), X)
    y = owned(np.asarray(y), y)
    check_finite_target(y, "y")
    tasks = owned(check_tasks(tasks, len(X)), tasks)
    check_consistent_length(X, y, tasks)
    given = [v is not None for v in (X_val, y_val, tasks_val)]
    if any(given) and not all(given):
        raise ValueError("Pass all of X_val, y_val and tasks_val, or none of them.")
    if not any(given):
        return X, y, tasks, X, y, tasks
    X_val = owned(check_array(X_val), X_val)
    if X_val.shape[1] != X.shape[1]:
        raise ValueError(f"X_val has {X_val.shape[1]} features but X has {X.shape[1]}.")
    y_val = owned(np.asarray(y_val), y_val)
    check_finite_target(y_val, "y_val")
    tasks_val = owned(check_tasks(tasks_val, len(X_val)), tasks_val)
    check_consistent_length(X_val, y_val, tasks_val)
    check_validation_tasks(tasks, tasks_val)
    return X, y, tasks, X_val, y_val, tasks_val


def mtif_scores(objective, X, y, tasks, X_val, y_val, tasks_val, damping=0.0):
    """Data-level (n, K) and task-level (K, K) removal effects on each task's validation loss.

    Parameters
    ----------
    objective : MultitaskObjective
        View of the fitted model.
    X, y, tasks : arrays
        Training data the model was fitted on.
    X_val, y_val, tasks_val : arrays
        Validation data; every task needs at least one validation row.
    damping : float, default=0.0
        Added to the Hessian's diagonal.

    Returns
    -------
    data : ndarray of shape (n, K)
        ``data[i, k]``: effect of removing row i on task k's validation loss.
    task : ndarray of shape (K, K)
        ``task[l, k]``: effect of removing task l on task k's validation loss (NaN diagonal:
        a removed task has no validation loss).
    """
    K = len(objective.classes)
    pos, pos_val = task_positions(objective.classes, tasks), task_positions(objective.classes,
                                                                             tasks_val)
    index = [np.flatnonzero(pos == k) for k in range(K)]
    index_val = [np.flatnonzero(pos_val == k) for k in range(K)]
    counts = np.array([len(i) for i in index])
    if counts.min() < 2 or min(len(i) for i in index_val) == 0:
        raise ValueError(
            "Every task needs at least 2 training rows and 1 validation row; got "
            f"{counts.min()} training and {min(len(i) for i in index_val)} validation rows."
        )
    X, y = objective.tensors(X, y)
    X_val, y_val = objective.tensors(X_val, y_val)
    solver = BlockArrowSolver(*objective.hessian_blocks(X, y, index), damping=damping)

    # U = H^-1 [g_1 ... g_K]: column k embeds task k's validation gradient (block k + shared).
    d_t = objective.theta.shape[1]
    (val_theta, val_gamma), _ = objective.task_gradients(X_val, y_val, pos_val)
    G = torch.cat([torch.diag_embed(val_theta.T).permute(1, 0, 2).reshape(K * d_t, K),
                   val_gamma.T])
    U = solver.solve(G)
    U_task, U_shared = U[: K * d_t].reshape(K, d_t, K), U[K * d_t:]

    (mean_theta, mean_gamma), (row_theta, row_gamma) = objective.task_gradients(X, y, pos)
    data = torch.empty(len(X), K, dtype=U.dtype, device=U.device)
    for k, rows in enumerate(index):
        centred_t = row_theta[rows] - mean_theta[k]
        centred_g = row_gamma[rows] - mean_gamma[k]
        data[rows] = (centred_t @ U_task[k] + centred_g @ U_shared) / (len(rows) - 1)

    pen_theta, pen_gamma = objective.penalty_gradients()
    full_theta, full_gamma = mean_theta + pen_theta, mean_gamma + pen_gamma
    task = torch.einsum("ld,ldk->lk", full_theta, U_task) + full_gamma @ U_shared
    task = task.cpu().numpy()
    np.fill_diagonal(task, np.nan)
    return data.cpu().numpy(), task


class MultitaskInfluence(BaseEstimator):
    """Data-level and task-level influence for multitask models (MTIF).

    Fits a clone of ``estimator`` and estimates, without retraining, how removing each training
    row or each whole task would change every task's validation loss. The Hessian of a multitask
    objective is block-arrow shaped (task blocks plus a shared block); it is solved through its
    Schur complement (MTIF Lemma F.6), never densely inverted.

    Sign convention: removal effects, ``V_k(without) - V_k(with all)``, predicted to first order
    (one Newton step from the fit). Positive = the row/task *helps* task k; negative = it hurts
    (negative transfer). The MTIF paper reports the opposite sign.

    Parameters
    ----------
    estimator : estimator with ``fit(X, y, tasks)``
        A multitask model registered with ``multitask_objective`` (:class:`MultitaskRidge`,
        :class:`SharedBottomNetwork`).
    damping : float, default=0.0
        Added to the Hessian's diagonal (useful for non-convex networks).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to compute; ``"auto"`` picks CUDA when a GPU is visible.
    n_jobs : int, default=None
        Parallel refits in :meth:`leave_one_task_out`.

    Attributes
    ----------
    estimator_ : estimator
        The clone fitted on all training rows.
    tasks_ : ndarray of shape (K,)
        Sorted task labels; the columns of ``data_influence_`` and ``task_influence_``.
    data_influence_ : ndarray of shape (n_samples, K)
        Effect of removing each training row on each task's validation loss (within-task for
        the row's own task, between-task for the others).
    task_influence_ : ndarray of shape (K, K)
        Row l = removed task, column k = target task: effect of removing task l (its rows and
        its regulariser, Proposition 2) on task k's validation loss. The diagonal is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.multitask import MultitaskInfluence, MultitaskRidge
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(90, 4)); tasks = np.repeat([0, 1, 2], 30)
    >>> y = X @ [1.0, 2.0, 0.0, 0.0] + rng.normal(size=90)
    >>> mtif = MultitaskInfluence(MultitaskRidge(lam=0.5)).fit(X, y, tasks)
    >>> mtif.data_influence_.shape, mtif.task_influence_.shape
    ((90, 3), (3, 3))
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit", "predict"])],
        "damping": [Interval(Real, 0, None, closed="left")],
        "device": [DeviceOption()],
        "n_jobs": [Integral, None],
    }

    def __init__(self, estimator, *, damping=0.0, device="auto", n_jobs=None):
        self.estimator = estimator
        self.damping = damping
        self.device = device
        self.n_jobs = n_jobs

    def fit(self, X, y, tasks=None, X_val=None, y_val=None, tasks_val=None):
        """Fit the estimator and compute the influence scores.

        Parameters
        ----------
        X, y : array-like of shape (n_samples, n_features), (n_samples,)
            Training data.
        tasks : array-like of shape (n_samples,)
            Task label of each training row (required).
        X_val, y_val, tasks_val : array-like, default=None
            Validation rows that define each task's validation loss. When omitted, each task's
            training loss is the target.

        Returns
        -------
        self : MultitaskInfluence
        """
        self._validate_params()
        # copies: trim and leave_one_task_out refit on them, whatever the caller does to X later
        data = _check_data(X, y, tasks, X_val, y_val, tasks_val, copy=True)
        self.estimator_ = clone(self.estimator).fit(*data[:3])
        objective = multitask_objective(self.estimator_, resolve_device(self.device))
        self.tasks_ = objective.classes
        self.data_influence_, self.task_influence_ = mtif_scores(objective, *data,
                                                                 damping=self.damping)
        self._data = data
        return self

    def trim(self, fraction=0.05):
        """Drop the rows that hurt validation most and refit (MTIF section 3.2.1).

        A row's score is its summed removal effect over all tasks' validation losses; up to
        ``fraction`` of the rows, the most negative ones (only negative ones), are removed.

        Parameters
        ----------
        fraction : float in [0, 1), default=0.05

        Returns
        -------
        estimator : estimator
            A clone of ``estimator`` fitted on the kept rows.
        removed : ndarray of int
            Indices of the removed training rows, most harmful first.
        """
        check_is_fitted(self)
        if not 0 <= fraction < 1:
            raise ValueError(f"fraction must be in [0, 1); got {fraction}.")
        score = self.data_influence_.sum(axis=1)
        order = np.argsort(score)[: round(fraction * len(score))]
        removed = order[score[order] < 0]
        keep = np.setdiff1d(np.arange(len(score)), removed)
        X, y, tasks = self._data[:3]
        return clone(self.estimator).fit(X[keep], y[keep], tasks[keep]), removed

    def leave_one_task_out(self):
        """Real leave-one-task-out retraining on the fitted data (ground truth for
        ``task_influence_``); see :func:`leave_one_task_out`."""
        check_is_fitted(self)
        return leave_one_task_out(self.estimator, *self._data, n_jobs=self.n_jobs)


def _validation_losses(estimator, X_val, y_val, tasks_val, labels):
    return multitask_objective(estimator, torch.device("cpu")).task_losses(
        X_val, y_val, tasks_val, labels)


def _refit_losses(estimator, X, y, tasks, keep, validation, labels):
    if not keep.any():  # removing the only task leaves nothing to fit, nor a loss to measure
        return np.full(len(labels), np.nan)
    fitted = clone(estimator).fit(X[keep], y[keep], tasks[keep])
    return _validation_losses(fitted, *validation, labels)


def _retrain(estimator, X, y, tasks, X_val, y_val, tasks_val, masks, n_jobs, verbose):
    X, y, tasks, *validation = _check_data(X, y, tasks, X_val, y_val, tasks_val)
    labels = np.unique(tasks)
    base = _validation_losses(clone(estimator).fit(X, y, tasks), *validation, labels)
    losses = Parallel(n_jobs=n_jobs, verbose=verbose)(
        delayed(_refit_losses)(estimator, X, y, tasks, keep, validation, labels)
        for keep in masks(tasks, labels)
    )
    return np.array(losses) - base


def leave_one_task_out(estimator, X, y, tasks, X_val=None, y_val=None, tasks_val=None, *,
                       n_jobs=None, verbose=0):
    """Real leave-one-task-out effects, by retraining without each task (joblib-parallel).

    Parameters
    ----------
    estimator : estimator with ``fit(X, y, tasks)``
    X, y, tasks, X_val, y_val, tasks_val : array-like
        As in :meth:`MultitaskInfluence.fit`.
    n_jobs : int, default=None
    verbose : int, default=0

    Returns
    -------
    effects : ndarray of shape (K, K)
        ``effects[l, k] = V_k(fitted without task l) - V_k(fitted with all)``, tasks in sorted
        label order; NaN on the diagonal. With a single task, ``[[nan]]``, as
        ``MultitaskInfluence.task_influence_``.
    """
    def masks(tasks, labels):
        return (tasks != label for label in labels)

    return _retrain(estimator, X, y, tasks, X_val, y_val, tasks_val, masks, n_jobs, verbose)


def leave_one_row_out(estimator, X, y, tasks, X_val=None, y_val=None, tasks_val=None, *,
                      indices=None, n_jobs=None, verbose=0):
    """Real leave-one-out effects of training rows on each task's validation loss.

    Parameters
    ----------
    estimator : estimator with ``fit(X, y, tasks)``
    X, y, tasks, X_val, y_val, tasks_val : array-like
        As in :meth:`MultitaskInfluence.fit`.
    indices : array-like of int, default=None
        Rows to remove one at a time (default: all).
    n_jobs : int, default=None
    verbose : int, default=0

    Returns
    -------
    effects : ndarray of shape (len(indices), K)
        ``V_k(fitted without row i) - V_k(fitted with all)``, tasks in sorted label order.
    """
    n = len(X)
    indices = np.arange(n) if indices is None else np.asarray(indices)

    def masks(tasks, labels):
        return (np.arange(n) != i for i in indices)

    return _retrain(estimator, X, y, tasks, X_val, y_val, tasks_val, masks, n_jobs, verbose)
