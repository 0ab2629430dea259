"""Input checks shared by the public functions and estimators.

Parameters are declared once, in :data:`CONSTRAINTS`, with scikit-learn's ``_param_validation``
constraints; :func:`public` validates a function's arguments against them before it runs (the
estimators use the same constraints through ``_parameter_constraints``). The ``check_*``
functions validate data. The checked arrays may be views of the user's arrays: they are only
read, and everything handed to torch goes through :func:`skinfluence.backend.device.as_tensor`,
which copies.
"""

import inspect
import re
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    validate_params,
)
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _num_samples,
    check_array,
    check_consistent_length,
    check_is_fitted,
)

from .backend.device import DEVICE_TYPES
from .backend.registry import find_adapter, unwrap_model


class DeviceOption(Options):
    """``"auto"``, a device string torch knows (``"cpu"``, ``"cuda"``, ``"cuda:1"``) or a
    :class:`torch.device` (an ``Options`` so that scikit-learn's validation accepts it)."""

    _PATTERN = re.compile(rf"^(auto|(?:{'|'.join(DEVICE_TYPES)})(?::\d+)?)$")

    def __init__(self):
        super().__init__(object, set())

    def is_satisfied_by(self, val):
        if isinstance(val, torch.device):
            return True
        return isinstance(val, str) and self._PATTERN.match(val) is not None

    def __str__(self):
        return "'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device"


#: The constraints of every public argument, by name: one place, shared by all entry points.
CONSTRAINTS = {
    "X": ["array-like", "sparse matrix"],
    "y": ["array-like", None],
    "X_test": ["array-like", "sparse matrix"],
    "y_test": ["array-like", None],
    "X_val": ["array-like"],
    "y_val": ["array-like"],
    "sample_weight": ["array-like", None],
    "indices": ["array-like", None],
    "target": [StrOptions({"loss", "mean_loss", "prediction"})],
    "method": [StrOptions({"influence", "newton"})],
    "solver": [StrOptions({"auto", "cholesky", "cg", "lowrank"})],
    "damping": [Interval(Real, 0, None, closed="left")],
    "device": [DeviceOption(), None],
    "params": [StrOptions({"all", "last"})],
    "warm_start": ["boolean"],
    "n_jobs": [Integral, None],
    "verbose": ["verbose"],
}


def public(*names, **constraints):
    """Decorator: validate the arguments ``names`` (and ``constraints``) before each call.

    Parameters
    ----------
    *names : str
        Arguments checked against their entry in :data:`CONSTRAINTS`.
    **constraints : list
        Constraints of arguments specific to one function.

    Returns
    -------
    callable
        A decorator. An invalid argument raises ``InvalidParameterError`` (a ``ValueError``
        and a ``TypeError``) naming the argument, the allowed values and the value given.
    """
    declared = {name: CONSTRAINTS[name] for name in names} | constraints
    return validate_params(declared, prefer_skip_nested_validation=False)


def check_fitted(estimator):
    """Raise a clear error when ``estimator`` has not been fitted.

    Objects that are not scikit-learn estimators (no ``__sklearn_tags__``), such as
    :class:`~skinfluence.TorchModel` or a user's class with a registered adapter, are left to
    their adapter.
    """
    if hasattr(estimator, "initialized_"):
        if not estimator.initialized_:
            raise NotFittedError(
                f"This {type(estimator).__name__} is not fitted yet; call fit(X, y) first."
            )
        return
    if hasattr(estimator, "fit") and hasattr(estimator, "__sklearn_tags__"):
        check_is_fitted(estimator)


def _column_names(X):
    """Column names of a pandas or polars frame, or None."""
    columns = getattr(X, "columns", None)
    if columns is None or not all(isinstance(c, str) for c in columns):
        return None
    return [str(c) for c in columns]


def check_feature_names(estimator, X, name="X"):
    """Columns of a data frame ``X`` must be the fitted estimator's, in the same order.

    As scikit-learn's ``predict`` does: a frame with reordered or renamed columns would
    silently give other numbers.
    """
    _check_columns(getattr(estimator, "feature_names_in_", None), X, name,
                   f"the {type(estimator).__name__} was fitted on",
                   f"{name}[estimator.feature_names_in_]")


def check_same_columns(X, X_other, name="X_test"):
    """Columns of a data frame ``X_other`` must be those of the training frame ``X``, in order.

    For functions that fit clones of an unfitted estimator: as scikit-learn's ``predict``
    would, refuse evaluation rows whose columns are reordered or renamed.
    """
    _check_columns(_column_names(X), X_other, name, "X has", f"{name}[X.columns]")


def _check_columns(fitted, X, name, reference, fix):
    given = _column_names(X)
    if fitted is None or given is None or list(fitted) == given:
        return
    fitted = [str(c) for c in fitted]
    if sorted(fitted) == sorted(given):
        problem = "the same columns in another order"
    else:
        unseen, missing = sorted(set(given) - set(fitted)), sorted(set(fitted) - set(given))
        problem = f"columns {unseen} it never saw and lacks {missing}"
    raise ValueError(
        f"{name} has {problem} than {reference}; pass {fix} (columns {fitted[:10]}"
        f"{' ...' if len(fitted) > 10 else ''})."
    )


def check_finite_target(y, name="y"):
    """A numeric target must hold no NaN or infinity."""
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        bad = np.flatnonzero(~np.isfinite(y))
        raise ValueError(
            f"{name} contains NaN or infinity (rows {bad[:5].tolist()}"
            f"{' ...' if len(bad) > 5 else ''}); remove or impute those rows first."
        )
    if y.dtype == object and any(v is None or (isinstance(v, float) and np.isnan(v))
                                 for v in y):
        raise ValueError(f"{name} contains missing labels (None or NaN); remove those rows.")


def _check_target(y, name):
    y = check_array(y, ensure_2d=False, dtype=None, ensure_all_finite=False,
                    input_name=name)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be one-dimensional (one target per row); got shape {y.shape}. "
            "skinfluence supports one target column: fit one model per target."
        )
    check_finite_target(y, name)
    return y


def _check_rows(X, estimator, name, dtype=np.float64):
    """Rows for ``estimator``: float64 (dense, or sparse CSR) without NaN/inf, or, when the
    estimator's own preprocessing (a Pipeline's steps) turns them into numbers, as given.

    The preprocessing may take what a float array cannot hold (a data frame with string
    columns, missing values it imputes); its output is checked where it is applied
    (:func:`skinfluence.backend.wrappers.pipeline_view`). Either way, with ``estimator`` a data
    frame's columns are checked against ``feature_names_in_``, and ``X`` needs a row.
    """
    if estimator is not None:
        check_feature_names(estimator, X, name)
    if estimator is None or not unwrap_model(estimator).transforms_rows:
        return check_array(X, accept_sparse="csr", dtype=dtype, input_name=name)
    if not hasattr(X, "shape"):  # a list of rows: an array the preprocessing can index
        X = check_array(X, dtype=None, ensure_all_finite=False, input_name=name)
    if len(X.shape) != 2:
        raise ValueError(
            f"{name} must be 2-D (one row per sample, one column per feature); got shape "
            f"{X.shape}. Reshape a single feature with {name}.reshape(-1, 1)."
        )
    if _num_samples(X) == 0:
        raise ValueError(f"{name} has no rows; pass at least one row.")
    return X


def check_training_data(X, y, sample_weight=None, estimator=None, dtype=np.float64):
    """Validated training data: float64 ``X`` (dense, or sparse CSR for the linear models)
    without NaN/inf, matching lengths. ``dtype`` as :func:`sklearn.utils.check_array` takes it
    (``(np.float64, np.float32)`` keeps float32 rows for a net that trains in float32).

    With ``estimator``, a data frame's columns are checked against ``feature_names_in_``; an
    estimator that preprocesses its rows (a Pipeline) gets ``X`` as given (see
    :func:`_check_rows`).
    """
    X = _check_rows(X, estimator, "X", dtype)
    if y is None:
        raise ValueError("y is required: pass the training targets the model was fitted on.")
    y = _check_target(y, "y")
    check_consistent_length(X, y)
    if sample_weight is not None:
        sample_weight = check_array(sample_weight, ensure_2d=False, dtype=np.float64,
                                    input_name="sample_weight")
        check_consistent_length(X, sample_weight)
        if (sample_weight < 0).any():
            raise ValueError("sample_weight holds negative weights; weights must be >= 0.")
    return X, y, sample_weight


def check_test_data(X_test, y_test, n_features, estimator=None, names=("X_test", "y_test")):
    """Validated evaluation rows with the training feature count (and column names), converted
    as :func:`check_training_data` converts ``X``."""
    X_test = _check_rows(X_test, estimator, names[0])
    if X_test.shape[1] != n_features:
        raise ValueError(
            f"{names[0]} has {X_test.shape[1]} features but the training data has "
            f"{n_features}."
        )
    if y_test is not None:
        y_test = _check_target(y_test, names[1]).ravel()
        check_consistent_length(X_test, y_test)
    return X_test, y_test


def check_indices(indices, n_samples, name="indices"):
    """Row indices as a 1-D int array in ``[0, n_samples)``; a boolean mask is converted."""
    if indices is None:
        return np.arange(n_samples)
    arr = np.asarray(indices)
    if arr.dtype == bool:
        if arr.shape != (n_samples,):
            raise ValueError(
                f"{name} is a boolean mask of shape {arr.shape} but X has {n_samples} rows; "
                f"pass a mask of length {n_samples} or integer row indices."
            )
        arr = np.flatnonzero(arr)
    if arr.size == 0:
        raise ValueError(f"{name} selects no rows; pass at least one row, or None for all.")
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be a 1-D array of integer row indices or a boolean mask; got "
            f"dtype {arr.dtype} and shape {arr.shape}."
        )
    bad = arr[(arr < 0) | (arr >= n_samples)]
    if bad.size:
        raise ValueError(
            f"{name} holds rows {bad[:5].tolist()} outside [0, {n_samples}) (X has "
            f"{n_samples} rows)."
        )
    return arr


def adapter_options(estimator, params):
    """Keyword options for the estimator's adapter; ``params != "all"`` needs a network (the
    last step of a Pipeline, the best estimator of a search)."""
    if params == "all":
        return {}
    model = unwrap_model(estimator).estimator
    signature = inspect.signature(find_adapter(model)).parameters
    if "params" not in signature and not any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values()):
        raise ValueError(
            f"params={params!r} selects layers of a network, but {type(model).__name__} "
            "has no layers to choose from; use params='all'."
        )
    return {"params": params}


def check_targets(objective, y, name="y"):
    """A classifier needs two classes; its encoded labels must index its outputs."""
    if not objective.is_classifier:
        return
    if name == "y" and len(np.unique(y)) < 2:
        raise ValueError(
            f"y holds a single class ({np.unique(y)[0]!r}); influence on a classifier needs at "
            "least two classes in the training data."
        )
    codes = np.asarray(objective.encode(y))
    n_classes = max(2, objective.n_outputs)
    if codes.dtype.kind not in "iufb":
        raise ValueError(
            f"{name} holds labels {np.unique(codes)[:5].tolist()} the model cannot map to its "
            f"{n_classes} outputs; pass class indices 0..{n_classes - 1}."
        )
    bad = (codes < 0) | (codes >= n_classes) | (codes != np.round(codes))
    if bad.any():
        raise ValueError(
            f"{name} holds class indices {np.unique(codes[bad])[:5].tolist()} outside the "
            f"model's {n_classes} classes; labels must be integers 0..{n_classes - 1}."
        )


def check_label_types(labels, name="tasks"):
    """Labels of one kind, none missing: mixing numbers and strings has no order and no
    unambiguous match."""
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError(f"{name} contains NaN labels; give every row a label.")
    if labels.dtype != object:
        return labels
    kinds = {"string" if isinstance(v, str) else "number" if isinstance(v, (Real, np.bool_))
             else type(v).__name__ for v in labels}
    if len(kinds) > 1:
        raise ValueError(
            f"{name} mixes label types ({', '.join(sorted(kinds))}); use one type, e.g. "
            f"strings for all: np.asarray({name}).astype(str)."
        )
    return labels


def check_validation_tasks(tasks, tasks_val):
    """Every task needs validation rows, and validation rows need a training task."""
    unseen = np.setdiff1d(tasks_val, tasks)
    if unseen.size:
        raise ValueError(
            f"tasks_val holds tasks {unseen[:5].tolist()} that no training row has; their "
            "validation rows would be ignored. Drop them or add training rows for them."
        )
    empty = np.setdiff1d(tasks, tasks_val)
    if empty.size:
        raise ValueError(
            f"tasks {empty[:5].tolist()} have no validation rows, so their validation loss is "
            "undefined; pass validation rows for every task (or omit X_val, y_val and "
            "tasks_val to validate on the training rows)."
        )


def check_removable(objective, y, indices):
    """Leaving out any one row of ``indices`` must leave a classifier every class."""
    if not objective.is_classifier:
        return
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    alone = indices[counts[inverse[indices]] == 1]
    if alone.size:
        raise ValueError(
            f"rows {alone[:5].tolist()} are the only rows of their class: leaving one out "
            "leaves the refitted classifier without that class. Drop them from indices."
        )


def check_classifier_target(estimator, y):
    """A classifier (or ``method="knn"``) needs class labels, of at least two classes."""
    if not is_classifier(estimator):
        return
    kind = type_of_target(y)
    if kind not in ("binary", "multiclass"):
        label = "Unknown label type: " if kind == "unknown" else ""
        raise ValueError(
            f"{label}y holds {kind} values, but {type(estimator).__name__} is a classifier that "
            "needs class labels; pass integer or string labels, or use a regressor."
        )
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"y holds a single class ({np.unique(y)[0]!r}); {type(estimator).__name__} needs "
            "at least two classes in the training data."
        )
