"""Measures: pure functions from a fitted model and data to removal effects.

Public entry points take a fitted estimator and numpy data; the functions in the submodules
work on a :class:`skinfluence.backend.Objective` and torch tensors.
"""

import numpy as np

from .._validation import (
    adapter_options,
    check_fitted,
    check_targets,
    check_test_data,
    check_training_data,
    public,
)
from ..backend import CholeskySolver, make_objective, make_solver
from ..backend.diagnostics import diagnose
from ..backend.threads import thread_policy
from .first_order import influence_function
from .first_order import influence_value as _influence_value
from .first_order import self_influence as _self_influence
from .loo import leave_one_out
from .newton import newton_effects
from .targets import Target

__all__ = ["influence", "influence_value", "leave_one_out", "self_influence"]


def _objective(estimator, X, y, sample_weight, device, params, dtype=None):
    """Validated training data and the objective of ``estimator``, diagnosed."""
    check_fitted(estimator)
    X, y, sample_weight = check_training_data(X, y, sample_weight, estimator)
    objective = make_objective(estimator, X, y, sample_weight, device=device, dtype=dtype,
                               check_convergence=False, **adapter_options(estimator, params))
    check_targets(objective, y)
    diagnose(objective, estimator)
    return objective, X


def _target(objective, estimator, X, X_test, y_test, kind, names=("X_test", "y_test")):
    X_test, y_test = check_test_data(X_test, y_test, X.shape[1], estimator, names)
    if y_test is not None:
        check_targets(objective, y_test, names[1])
    return Target(objective, X_test, y_test, kind)


def _work(X):
    """Size of a problem for the thread policy: rows times features (stored entries if sparse)."""
    return X.nnz if hasattr(X, "nnz") else np.prod(np.shape(X))


@public("X", "y", "X_test", "y_test", "target", "method", "sample_weight", "solver", "damping",
        "device", "params")
def influence(estimator, X, y, X_test, y_test=None, *, target="loss", method="influence",
              sample_weight=None, solver="auto", damping=0.0, device="auto", params="all",
              dtype=None):
    """Predicted effect of removing each training row on each test row's loss or prediction.

    The sign convention is the library's: ``f(theta fitted without row i) - f(theta)``.
    A positive effect on a loss means the row *helps* (removing it raises the loss).

    Parameters
    ----------
    estimator : fitted estimator
        Fitted on ``(X, y)`` (scikit-learn linear models, skorch nets, :class:`TorchModel`, or
        any model with a registered adapter).
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The training inputs the estimator was fitted on. Sparse input (converted to CSR) is
        accepted for the scikit-learn linear models and never densified: with more than 5 000
        parameters ``H^-1`` is applied by conjugate gradient over Hessian-vector products.
    y : array-like of shape (n_samples,)
        The training targets.
    X_test : {array-like, sparse matrix} of shape (n_test, n_features)
        Rows on which the effect is measured.
    y_test : array-like of shape (n_test,), optional
        Their targets; required for loss targets.
    target : {"loss", "mean_loss", "prediction"}, default="loss"
        ``"loss"``: each test row's natural loss (log loss, or squared error for regressors);
        ``"mean_loss"``: the mean test loss; ``"prediction"``: each test row's raw prediction
        (value, binary log-odds, or log-probability of ``y_test``'s class for multiclass).
    method : {"influence", "newton"}, default="influence"
        ``"influence"``: the classic first-order influence function ``grad f^T H^-1 g_i``.
        ``"newton"``: one Newton step with the exact leave-one-out Hessian, the target evaluated
        at the predicted parameters (exact for ridge; far closer to retraining for GLMs).
    sample_weight : array-like of shape (n_samples,), optional
        The weights the estimator was fitted with.
    solver : {"auto", "cholesky", "cg", "lowrank"}, default="auto"
        How ``H^-1`` is applied.
    damping : float, default=0.0
        Added to the Hessian's diagonal.
    device : {"auto", "cpu", "cuda"}, default="auto"
    params : {"all", "last"}, default="all"
        For networks, ``"last"`` takes influence over the last linear layer only.
    dtype : {None, "float64", "float32"}, default=None
        Precision of the computation; ``None``: float64 on the CPU, float32 on a GPU.
        ``"float32"`` halves the memory; measured on the L2 logistic regression of
        ``benchmarks/bench_influence.py`` (n = 50 000, d = 100, 50 test rows) its largest error
        against float64 was 4e-7 of the largest effect (``method="newton"``: 1.1e-4, as it
        subtracts two losses; ``self_influence``: 3e-7).

    Returns
    -------
    ndarray of shape (n_samples, n_test), or (n_samples,) for ``target="mean_loss"``

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import Ridge
    >>> import skinfluence
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = Ridge(alpha=1.0).fit(X[:300], y[:300])
    >>> effects = skinfluence.influence(model, X[:300], y[:300], X[300:], y[300:],
    ...                                 target="mean_loss", method="newton")
    >>> effects.shape
    (300,)
    """
    with thread_policy(_work(X)):
        objective, X = _objective(estimator, X, y, sample_weight, device, params, dtype)
        tgt = _target(objective, estimator, X, X_test, y_test, target)
        curvature = make_solver(objective, solver, damping)
        measure = influence_function if method == "influence" else newton_effects
        return tgt.finalize(measure(objective, curvature, tgt))


@public("X", "y", "sample_weight", "solver", "damping", "device", "params")
def self_influence(estimator, X, y, *, sample_weight=None, solver="auto", damping=0.0,
                   device="auto", params="all", dtype=None):
    """Predicted removal effect of each training row on its own loss (always >= 0).

    Parameters
    ----------
    estimator, X, y, sample_weight, solver, damping, device, params, dtype
        As in :func:`influence`.

    Returns
    -------
    ndarray of shape (n_samples,)
        ``grad loss_i^T H^-1 g_i``: large for rows the fit bends towards (outliers, label noise).
    """
    with thread_policy(_work(X)):
        objective, _ = _objective(estimator, X, y, sample_weight, device, params, dtype)
        curvature = make_solver(objective, solver, damping)
        return _self_influence(objective, curvature).detach().cpu().numpy()


@public("X", "y", "X_val", "y_val", "damping", "device")
def influence_value(estimator, X, y, X_val, y_val, *, damping=0.0, device="auto"):
    """IV of Chhabra et al. (2024): influence of each row on the summed validation loss.

    ``IV_i = sum_v grad L_v^T [sum_j grad^2 L_j]^-1 grad L_i`` with plain data losses (no
    regulariser, as the trimming paper writes it). Negative values flag rows harmful to the
    validation loss — the same sign as a removal effect.

    Parameters
    ----------
    estimator, X, y, device
        As in :func:`influence`.
    X_val, y_val : array-like
        Validation rows.
    damping : float, default=0.0
        Added to the data Hessian (needed when it is singular, e.g. unpenalised multinomial).

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    with thread_policy(_work(X)):
        objective, X = _objective(estimator, X, y, None, device, "all")
        tgt = _target(objective, estimator, X, X_val, y_val, "loss", ("X_val", "y_val"))
        curvature = CholeskySolver(objective.hessian(data_only=True), damping=damping)
        return _influence_value(objective, curvature, tgt).detach().cpu().numpy()
