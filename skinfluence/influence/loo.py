"""Brute-force leave-one-out: the ground truth every estimate is checked against."""

import copy

import numpy as np
from sklearn.base import clone
from sklearn.utils import _safe_indexing
from tqdm.auto import tqdm

from .._validation import (
    check_fitted,
    check_indices,
    check_removable,
    check_targets,
    check_test_data,
    check_training_data,
    public,
)
from ..backend import make_objective, model_to_refit
from ..backend.diagnostics import check_stationary
from ..backend.threads import parallel_map
from ..backend.wrappers import weight_fit_params
from .targets import Target


def refit_without(estimator, X, y, sample_weight, keep, warm_start=False):
    """Fit a copy of ``estimator`` on the rows ``keep`` (a boolean mask or index array)."""
    if warm_start:
        model = copy.deepcopy(estimator)
        if "warm_start" not in model.get_params():
            raise ValueError(f"{type(model).__name__} has no warm_start parameter; use "
                             "warm_start=False.")
        model.set_params(warm_start=True)
    else:
        model = clone(estimator)
    weights = None if sample_weight is None else sample_weight[keep]
    return model.fit(_safe_indexing(X, keep), y[keep], **weight_fit_params(model, weights))


@public("X", "y", "X_test", "y_test", "target", "indices", "sample_weight", "warm_start",
        "n_jobs", "verbose", "device")
def leave_one_out(estimator, X, y, X_test, y_test=None, *, target="loss", indices=None,
                  sample_weight=None, warm_start=False, n_jobs=None, verbose=0, device="cpu"):
    """Removal effects measured by really retraining without each row.

    Parameters
    ----------
    estimator : fitted estimator
        Fitted on ``(X, y)``; its clone is refitted without each row. A Pipeline is refitted
        whole (preprocessing included); a fitted search refits its ``best_estimator_`` with the
        selected hyperparameters. A cross-validated estimator (``LogisticRegressionCV``,
        ``RidgeCV``, ``LassoCV``, ...) is refitted as it is, so each refit tunes again, while
        the estimates hold ``C_`` / ``alpha_`` fixed; to compare them, refit the plain model at
        the selected value (``LogisticRegression(C=model.C_[0])``).
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    X_test : array-like of shape (n_test, n_features)
    y_test : array-like of shape (n_test,), optional
        Needed for loss targets.
    target : {"loss", "mean_loss", "prediction"}, default="loss"
        As in :func:`skinfluence.influence`.
    indices : array-like of int or bool, optional
        Rows to leave out (row numbers, or a boolean mask of length ``n_samples``), default all.
    sample_weight : array-like of shape (n_samples,), optional
        Weights the estimator was fitted with (subset for each refit).
    warm_start : bool, default=False
        Continue training a copy of the fitted model instead of refitting a clone from scratch
        (``warm_start=True`` on a copy; scikit-learn and skorch models that support it).
    n_jobs : int, optional
        Parallel refits through joblib (any joblib backend, e.g. dask or ray); each parallel
        worker runs on one thread.
    verbose : int, default=0
        Show a progress bar when positive.
    device : str, default="cpu"
        Where the target is evaluated.

    Returns
    -------
    ndarray of shape (n_indices, n_test), or (n_indices,) for ``target="mean_loss"``
        ``f(theta fitted without row i) - f(theta)``.
    """
    check_fitted(estimator)
    X, y, sample_weight = check_training_data(X, y, sample_weight, estimator)
    X_test, y_test = check_test_data(X_test, y_test, X.shape[1], estimator)
    indices = check_indices(indices, X.shape[0])
    base = make_objective(estimator, X, y, sample_weight, device=device,
                          check_convergence=False)
    check_targets(base, y)
    check_removable(base, y, indices)
    if y_test is not None:
        check_targets(base, y_test, "y_test")
    check_stationary(base, type(estimator).__name__)  # fitted on other rows? say so
    reference = Target(base, X_test, y_test, target).values(base.theta)
    refitted = model_to_refit(estimator)
    if not hasattr(refitted, "fit"):
        raise TypeError(
            f"leave_one_out refits the model without each row, and a {type(refitted).__name__} "
            "holds a trained module skinfluence cannot retrain; retrain it yourself without "
            "each row, or compare with a skorch net, which skinfluence can refit."
        )

    def one(i):
        keep = np.ones(X.shape[0], dtype=bool)
        keep[i] = False
        model = refit_without(refitted, X, y, sample_weight, keep, warm_start)
        objective = make_objective(model, _safe_indexing(X, keep), y[keep], None, device=device,
                                   check_convergence=False)
        return (Target(objective, X_test, y_test, target).values(objective.theta)
                - reference).detach().cpu().numpy()

    rows = tqdm(indices, desc="leave-one-out", disable=not verbose)
    effects = np.stack(parallel_map(one, rows, n_jobs))
    return effects[:, 0] if target == "mean_loss" else effects
