"""Multitask ridge regression: task coefficients shrunk toward a shared vector (MTIF Example 1)."""

from numbers import Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from skinfluence.backend.block_arrow import BlockArrowSolver
from skinfluence.backend.device import as_tensor
from skinfluence.multitask._objective import MultitaskObjective, multitask_objective, task_positions
from skinfluence.multitask._tasks import REQUEST_TASKS, check_tasks


def _design(X, intercept):
    return torch.cat([X, torch.ones_like(X[:, :1])], dim=1) if intercept else X


def _hessian_blocks(Z, index, lam, d):
    """Hessian blocks of Example 1: ``A_k = 2/n_k Z_k^T Z_k + 2 lam_k E E^T``, ``B_k = -2 lam_k E``,
    ``D = 2 sum_k lam_k I``, with ``E`` embedding the coefficients into ``theta_k``."""
    embed = torch.eye(Z.shape[1], d, dtype=Z.dtype, device=Z.device)
    gram = torch.stack([Z[rows].T @ Z[rows] / len(rows) for rows in index])
    A = 2 * gram + 2 * lam[:, None, None] * (embed @ embed.T)
    B = -2 * lam[:, None, None] * embed
    return A, B, 2 * lam.sum() * torch.eye(d, dtype=Z.dtype, device=Z.device)


class MultitaskRidge(RegressorMixin, BaseEstimator):
    """Linear regression per task with coefficients shrunk toward a learned shared vector.

    Minimises the MTIF paper's Example 1 (per-task intercepts are not penalised)::

        sum_k [ mean_{i in task k} (y_i - x_i @ w_k - b_k)^2 + lam_k * ||w_k - gamma||^2 ]

    over the task coefficients ``w_k``, intercepts ``b_k`` and the shared vector ``gamma``. The
    objective is quadratic; it is solved exactly through its block-arrow Hessian (Schur
    complement, one small factorisation per task).

    Parameters
    ----------
    lam : float or dict, default=0.1
        Strength of the shrinkage toward ``gamma`` (> 0): one value for all tasks, or a dict
        ``{task label: value}`` (tasks missing from the dict are rejected).
    fit_intercept : bool, default=True
        Whether each task gets its own unpenalised intercept.

    Attributes
    ----------
    tasks_ : ndarray of shape (K,)
        Sorted task labels seen in ``fit``.
    coef_ : ndarray of shape (K, n_features)
        Task coefficients ``w_k``, in the order of ``tasks_``.
    intercept_ : ndarray of shape (K,)
        Task intercepts (zeros when ``fit_intercept=False``).
    shared_coef_ : ndarray of shape (n_features,)
        The shared vector ``gamma``.
    lam_ : ndarray of shape (K,)
        Shrinkage strength per task.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.multitask import MultitaskRidge
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3)); tasks = np.repeat(["a", "b", "c"], 20)
    >>> y = X @ [1.0, 0.0, -1.0] + rng.normal(scale=0.1, size=60)
    >>> model = MultitaskRidge(lam=1.0).fit(X, y, tasks=tasks)
    >>> model.predict(X[:2], tasks=["a", "c"]).shape
    (2,)

    ``tasks`` is per-row metadata, requested by default, so with metadata routing enabled
    scikit-learn's model selection slices and passes it. Shuffle the folds: the rows are sorted
    by task, and unshuffled folds would test on tasks unseen in training, which ``predict``
    rejects (``cross_val_score`` then reports NaN scores):

    >>> import sklearn
    >>> from sklearn.model_selection import KFold, cross_val_score
    >>> cv = KFold(3, shuffle=True, random_state=0)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     scores = cross_val_score(MultitaskRidge(), X, y, params={"tasks": tasks}, cv=cv)
    >>> scores.round(2)
    array([0.98, 0.99, 0.99])
    """

    __metadata_request__fit = REQUEST_TASKS
    __metadata_request__predict = REQUEST_TASKS
    __metadata_request__score = REQUEST_TASKS

    _parameter_constraints: ClassVar[dict] = {
        "lam": [Interval(Real, 0, None, closed="neither"), dict],
        "fit_intercept": ["boolean"],
    }

    def __init__(self, lam=0.1, fit_intercept=True):
        self.lam = lam
        self.fit_intercept = fit_intercept

    def _task_lam(self):
        if not isinstance(self.lam, dict):
            return np.full(len(self.tasks_), float(self.lam))
        missing = [t for t in self.tasks_.tolist() if t not in self.lam]
        if missing:
            raise ValueError(f"`lam` has no value for the tasks {missing}; add them to the dict.")
        lam = np.array([self.lam[t] for t in self.tasks_.tolist()], dtype=float)
        if not (lam > 0).all():
            raise ValueError(f"Every value of `lam` must be > 0; got {lam.min()}.")
        return lam

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, tasks=None):
        """Fit the task and shared coefficients.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        tasks : array-like of shape (n_samples,)
            Task label of each row (required; a keyword so that metadata routing can pass it).

        Returns
        -------
        self : MultitaskRidge
        """
        X, y = validate_data(self, X, y, y_numeric=True)
        tasks = check_tasks(tasks, len(X))
        self.tasks_ = np.unique(tasks)
        self.lam_ = self._task_lam()
        pos = task_positions(self.tasks_, tasks)
        index = [np.flatnonzero(pos == k) for k in range(len(self.tasks_))]
        Z, y = _design(as_tensor(X, "cpu"), self.fit_intercept), as_tensor(y, "cpu")
        A, B, D = _hessian_blocks(Z, index, as_tensor(self.lam_, "cpu"), X.shape[1])
        # The objective is quadratic: H w = (2/n_k Z_k^T y_k, ..., 0) solves it exactly.
        rhs = [2 * Z[rows].T @ y[rows] / len(rows) for rows in index] + [torch.zeros_like(D[0])]
        w = BlockArrowSolver(A, B, D).solve(torch.cat(rhs)).numpy()
        d = X.shape[1]
        theta = w[:-d].reshape(len(self.tasks_), Z.shape[1])
        self.coef_ = theta[:, :d]
        self.intercept_ = theta[:, d] if self.fit_intercept else np.zeros(len(self.tasks_))
        self.shared_coef_ = w[-d:]
        return self

    def predict(self, X, tasks=None):
        """Predict each row with the coefficients of its task.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        tasks : array-like of shape (n_samples,)
            Task label of each row (required); every label must have been seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        pos = task_positions(self.tasks_, check_tasks(tasks, len(X)))
        return np.einsum("nd,nd->n", X, self.coef_[pos]) + self.intercept_[pos]

    def score(self, X, y, tasks=None, sample_weight=None):
        """R^2 of ``predict(X, tasks=tasks)`` against ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        tasks : array-like of shape (n_samples,)
            Task label of each row (required).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        return r2_score(y, self.predict(X, tasks=tasks), sample_weight=sample_weight)


@multitask_objective.register(MultitaskRidge)
def _ridge_objective(estimator, device):
    check_is_fitted(estimator)
    d = estimator.n_features_in_
    theta = estimator.coef_
    if estimator.fit_intercept:
        theta = np.hstack([theta, estimator.intercept_[:, None]])
    lam = as_tensor(estimator.lam_, device)
    intercept = estimator.fit_intercept

    def loss(th, g, X, y):
        pred = X @ th[:d] + (th[d] if intercept else 0.0)
        return (y - pred) ** 2

    def penalty(k, th, g):
        return lam[k] * ((th[:d] - g) ** 2).sum()

    def hessian_blocks(X, y, index):
        return _hessian_blocks(_design(X, intercept), index, lam, d)

    return MultitaskObjective(estimator.tasks_, as_tensor(theta, device),
                              as_tensor(estimator.shared_coef_, device), loss, penalty,
                              hessian_blocks)


__all__ = ["MultitaskRidge"]
