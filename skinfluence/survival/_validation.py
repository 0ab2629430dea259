"""Validation of a right-censored survival target ``y``."""

import numpy as np

_HOW_TO_BUILD = (
    "Build y with sksurv.util.Surv.from_arrays(event=..., time=...), or pass a two-column "
    "array whose columns are (time, event)."
)


def check_survival_target(y, n_samples=None, *, require_event=True):
    """Split a survival target into a float time array and a boolean event array.

    Parameters
    ----------
    y : structured array or array-like of shape (n_samples, 2)
        Either a structured array with one boolean field (the event indicator) and one float
        field (the observed time), as scikit-survival uses, or a two-column array whose columns
        are (time, event) with events coded 0/1.
    n_samples : int, default=None
        Expected number of rows (the length of ``X``).
    require_event : bool, default=True
        Refuse a target without an observed event (a training set; an evaluation set without
        events has a zero partial likelihood).

    Returns
    -------
    time : ndarray of shape (n_samples,), float64
        Observed times, strictly positive and finite.
    event : ndarray of shape (n_samples,), bool
        True where the event was observed, False where the row is censored.
    """
    y = np.asarray(y)
    if y.dtype.names is not None:
        time, event = _split_structured(y)
    elif y.ndim == 2 and y.shape[1] == 2:
        time, event = y[:, 0], y[:, 1]
    else:
        raise ValueError(
            f"y must be a structured array (event, time) or have two columns (time, event); "
            f"got an array of shape {y.shape} and dtype {y.dtype}. {_HOW_TO_BUILD}"
        )
    try:
        time = np.asarray(time, dtype=np.float64).copy()
        event_values = np.asarray(event, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y must hold numeric times and events. {_HOW_TO_BUILD}") from exc
    if not np.all(np.isin(event_values, (0.0, 1.0))):
        raise ValueError("The event indicator must be boolean (or 0/1); found other values.")
    if not np.all(np.isfinite(time)):
        raise ValueError("Survival times must be finite; found NaN or infinite times.")
    if np.any(time <= 0):
        raise ValueError(
            f"Survival times must be strictly positive; found {int(np.sum(time <= 0))} "
            f"non-positive time(s) (smallest {time.min():g})."
        )
    event = event_values.astype(bool)
    if require_event and not event.any():
        raise ValueError("All rows are censored: a Cox model needs at least one observed event.")
    if n_samples is not None and time.shape[0] != n_samples:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: {n_samples} and {time.shape[0]}."
        )
    return time, event


def _split_structured(y):
    """Find the boolean and the float field of a scikit-survival structured array."""
    if len(y.dtype.names) != 2:
        raise ValueError(
            f"A structured y needs exactly two fields (event, time); got {y.dtype.names}. "
            + _HOW_TO_BUILD
        )
    kinds = {name: y.dtype[name].kind for name in y.dtype.names}
    event_fields = [name for name, kind in kinds.items() if kind == "b"]
    if len(event_fields) != 1:
        raise ValueError(
            f"A structured y needs one boolean event field; got field kinds {kinds}. "
            + _HOW_TO_BUILD
        )
    (time_field,) = [name for name in y.dtype.names if name != event_fields[0]]
    return y[time_field], y[event_fields[0]]


def check_constant_columns(X, alpha, feature_names=None):
    """Reject unpenalised constant columns: a Cox model has no intercept to absorb them.

    A constant column cancels from every risk set, so the partial likelihood does not depend on
    its coefficient: the coefficient is undefined (a flat direction, not a separation).
    """
    constant = np.flatnonzero((np.ptp(X, axis=0) == 0) & (np.asarray(alpha) == 0))
    if constant.size:
        names = [str(feature_names[j]) if feature_names is not None else f"feature {j}"
                 for j in constant]
        raise ValueError(
            f"X has constant columns ({', '.join(names[:10])}): they cancel from the Cox partial "
            "likelihood, so their unpenalised coefficients are undefined. Drop them or set "
            "alpha > 0."
        )
