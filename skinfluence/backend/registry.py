"""Registry from fitted-model types to adapter factories that build an :class:`Objective`."""

import numpy as np

from .device import resolve_device, resolve_dtype

_ADAPTERS = {}


def register_adapter(model_type, factory=None):
    """Register how to turn a fitted model of ``model_type`` into an :class:`Objective`.

    Parameters
    ----------
    model_type : type
        Class of the fitted model; subclasses match too (nearest in the MRO wins).
    factory : callable, optional
        ``factory(model, X, y, sample_weight, device, dtype) -> Objective`` where ``X`` and ``y``
        are the validated numpy training data the model was fitted on. If omitted, returns a
        decorator.

    Examples
    --------
    >>> from skinfluence import register_adapter
    >>> class MyModel:
    ...     pass
    >>> @register_adapter(MyModel)
    ... def my_adapter(model, X, y, sample_weight, device, dtype):
    ...     ...  # build and return a skinfluence.backend.Objective
    """
    if factory is None:
        return lambda f: register_adapter(model_type, f)
    _ADAPTERS[model_type] = factory
    return factory


def supported_models():
    """Names of the model types that have a registered adapter."""
    return sorted(t.__name__ for t in _ADAPTERS)


def find_adapter(model):
    for cls in type(model).__mro__:
        if cls in _ADAPTERS:
            return _ADAPTERS[cls]
    raise TypeError(
        f"skinfluence has no adapter for {type(model).__name__}. Supported: "
        f"{', '.join(supported_models())}. To add your own model, write a function returning a "
        "skinfluence.backend.Objective and register it with "
        "skinfluence.register_adapter(YourModelClass, factory)."
    )


def make_objective(model, X, y, sample_weight=None, *, device="auto", dtype=None,
                   check_convergence=True, **options):
    """Build the differentiable objective of a fitted model on its training data.

    Parameters
    ----------
    model : fitted estimator
        A model with a registered adapter (see :func:`register_adapter`).
    X : array-like of shape (n_samples, n_features)
        The training inputs the model was fitted on.
    y : array-like of shape (n_samples,)
        The training targets.
    sample_weight : array-like of shape (n_samples,), optional
        The weights the model was fitted with.
    device : {"auto", "cpu", "cuda"}, default="auto"
    dtype : {None, "float64", "float32"} or torch.dtype, default=None
        ``None``: float64 on the CPU, float32 on a GPU.
    check_convergence : bool, default=True
        Warn, with the measured gradient norm, when the model is not at a minimum.
    **options
        Passed to the adapter (e.g. ``params="last"`` for skorch nets: last layer only).

    Returns
    -------
    Objective
    """
    factory = find_adapter(model)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    objective = factory(model, X, y, sw, device, dtype, **options)
    if check_convergence:
        objective.check_convergence(type(model).__name__)
    return objective
