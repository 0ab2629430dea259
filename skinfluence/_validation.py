"""Input checks shared by the public functions and estimators.

The checked arrays may be views of the user's arrays: they are only read, and everything handed
to torch goes through :func:`skinfluence.backend.device.as_tensor`, which copies.
"""

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted


def check_fitted(estimator):
    """Raise a clear error when ``estimator`` has not been fitted."""
    if hasattr(estimator, "initialized_") or not hasattr(estimator, "fit"):
        if hasattr(estimator, "initialized_") and not estimator.initialized_:
            raise NotFittedError(
                f"This {type(estimator).__name__} is not fitted yet; call fit(X, y) first."
            )
        return
    check_is_fitted(estimator)


def check_training_data(X, y, sample_weight=None):
    """Validated training data: float64 ``X`` (dense, or sparse CSR for the linear models) without
    NaN/inf, matching lengths."""
    X = check_array(X, accept_sparse="csr", dtype=np.float64)
    if y is None:
        raise ValueError("y is required: pass the training targets the model was fitted on.")
    y = check_array(y, ensure_2d=False, dtype=None)
    if y.ndim != 1:
        y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity; remove or impute those rows first.")
    check_consistent_length(X, y)
    if sample_weight is not None:
        sample_weight = check_array(sample_weight, ensure_2d=False, dtype=np.float64)
        check_consistent_length(X, sample_weight)
    return X, y, sample_weight


def check_test_data(X_test, y_test, n_features):
    """Validated evaluation rows with the training feature count."""
    X_test = check_array(X_test, accept_sparse="csr", dtype=np.float64)
    if X_test.shape[1] != n_features:
        raise ValueError(
            f"X_test has {X_test.shape[1]} features but the training data has {n_features}."
        )
    if y_test is not None:
        y_test = check_array(y_test, ensure_2d=False, dtype=None).ravel()
        check_consistent_length(X_test, y_test)
    return X_test, y_test


def check_classes(objective, y):
    """A classifier needs at least two classes among its training labels."""
    if objective.is_classifier and len(np.unique(y)) < 2:
        raise ValueError(
            f"y holds a single class ({np.unique(y)[0]!r}); influence on a classifier needs at "
            "least two classes in the training data."
        )
