"""Exact Shapley values of the k-nearest-neighbour utility (Jia et al., 2019)."""

import numpy as np
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier


def knn_utility_parameters(estimator):
    """``(k, metric, metric_params)`` of an unweighted :class:`KNeighborsClassifier`."""
    if not isinstance(estimator, KNeighborsClassifier):
        raise TypeError(
            f"method='knn' values rows for a k-nearest-neighbour classifier, not "
            f"{type(estimator).__name__}; pass KNeighborsClassifier(n_neighbors=k) (used as a "
            "surrogate for any classifier) or choose method='banzhaf', 'shapley' or 'beta'."
        )
    if estimator.weights != "uniform":
        raise ValueError(
            f"KNN-Shapley's closed form holds for a uniform vote; got weights="
            f"{estimator.weights!r}. Use KNeighborsClassifier(weights='uniform')."
        )
    metric = estimator.metric
    params = dict(estimator.metric_params or {})
    if metric == "minkowski":
        params.setdefault("p", estimator.p)
    return estimator.n_neighbors, metric, params


def knn_shapley(estimator, X, y, X_val, y_val):
    """Shapley value of each training row for the utility of Jia et al. (2019).

    ``U(S) = mean over validation rows of (1/k) * #{the min(k, |S|) nearest rows of S with the
    validation row's label}`` (``U(empty) = 0``). With the rows sorted by distance to a
    validation row (ties by row order), the values follow from the recursion
    ``s_n = [y_n = y_v] / n``, ``s_j = s_{j+1} + ([y_j = y_v] - [y_{j+1} = y_v]) / k *
    min(k, j) / j``, evaluated here as a reversed cumulative sum.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    k, metric, params = knn_utility_parameters(estimator)
    distances = pairwise_distances(X_val, X, metric=metric, **params)
    order = np.argsort(distances, axis=1, kind="stable")
    match = (y[order] == np.asarray(y_val)[:, None]).astype(float)
    n = X.shape[0]
    rank = np.arange(1, n)
    steps = (match[:, :-1] - match[:, 1:]) / k * np.minimum(k, rank) / rank
    tail = np.cumsum(steps[:, ::-1], axis=1)[:, ::-1]
    sorted_values = match[:, -1:] / n + np.hstack([tail, np.zeros((len(match), 1))])
    values = np.empty_like(sorted_values)
    np.put_along_axis(values, order, sorted_values, axis=1)
    return values.mean(axis=0)
