"""Retraining-based and representer valuation of training rows (survey sections 4.2, 4.3, 5.1.2).

Every retraining loop runs through scikit-learn's joblib ``Parallel``, so any joblib backend
(loky, dask.distributed, ray) executes it.
"""

from ._downsampling import Downsampling, downsampling_influence
from ._representer import Representers, representer_points
from ._values import DataValues, data_values

__all__ = [
    "DataValues",
    "Downsampling",
    "Representers",
    "data_values",
    "downsampling_influence",
    "representer_points",
    "valuation_scores",
]

SCORE_METHODS = ("banzhaf", "shapley", "beta", "knn", "downsampling")


def valuation_scores(estimator, X, y, X_val, y_val, *, method, budget=None, random_state=None,
                     n_jobs=None):
    """One signed score per training row: positive = the row helps the validation rows.

    ``"banzhaf"``, ``"shapley"``, ``"beta"``, ``"knn"``: :func:`data_values` with the
    estimator's score and default budget; ``"downsampling"``: the downsampling removal effect on
    the mean validation loss (:func:`downsampling_influence`, default budget), which is
    positive for a row whose removal raises the loss. Both read "higher = the row helps", the
    library's removal-effect convention.

    Parameters
    ----------
    estimator, X, y, X_val, y_val
        As in :func:`data_values`.
    method : {"banzhaf", "shapley", "beta", "knn", "downsampling"}
    budget : int, optional
        Utility evaluations of :func:`data_values` (default 2000, and at least ten
        permutations, ``10 * (n_samples + 1)``, for ``"shapley"`` and ``"beta"``) or models of
        :func:`downsampling_influence` (default 1000).
    random_state : int, RandomState instance or None, default=None
    n_jobs : int, optional

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    if method not in SCORE_METHODS:
        raise ValueError(f"method={method!r} is not supported; use one of {SCORE_METHODS}.")
    if method == "downsampling":
        models = {} if budget is None else {"n_models": budget}
        result = downsampling_influence(estimator, X, y, X_val, y_val, n_jobs=n_jobs,
                                        random_state=random_state, **models)
        return result.effects.mean(axis=1)
    if budget is None:
        budget = max(2000, 10 * (len(X) + 1)) if method in ("shapley", "beta") else 2000
    return data_values(estimator, X, y, X_val, y_val, method=method, budget=budget,
                       n_jobs=n_jobs, random_state=random_state).values
