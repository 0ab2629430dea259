"""Registry from fitted-model types to adapter factories that build an :class:`Objective`."""

import sys

import numpy as np
from sklearn.utils.validation import check_array

from .device import resolve_device, resolve_dtype
from .diagnostics import diagnose
from .objective import _identity

_ADAPTERS = {}
#: Adapter factories that accept a scipy.sparse X (the L2 linear models, backend/linear.py).
SPARSE_ADAPTERS = set()
_WRAPPERS = {}
#: Adapter tables by kind: "objective" (row-separable losses, :class:`Objective`) and "cox"
#: (partial-likelihood models, see :mod:`skinfluence.survival`).
_KINDS = {"objective": _ADAPTERS, "cox": {}}
#: Top-level package -> function registering its adapters, run once that package is imported.
_DEFERRED = {}


def register_adapter(model_type, factory=None, *, kind="objective"):
    """Register how to turn a fitted model of ``model_type`` into an :class:`Objective`.

    Parameters
    ----------
    model_type : type
        Class of the fitted model; subclasses match too (nearest in the MRO wins).
    factory : callable, optional
        ``factory(model, X, y, sample_weight, device, dtype) -> Objective`` where ``X`` and ``y``
        are the validated numpy training data the model was fitted on. If omitted, returns a
        decorator.
    kind : {"objective", "cox"}, default="objective"
        ``"cox"`` registers a Cox model for :class:`skinfluence.CoxInfluence`:
        ``factory(model, X) -> CoxObjective`` (see :mod:`skinfluence.survival`).

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
        return lambda f: register_adapter(model_type, f, kind=kind)
    _KINDS[kind][model_type] = factory
    return factory


def register_when_imported(package, register):
    """Run ``register()`` (which registers adapters) once ``package`` has been imported.

    For optional dependencies (skorch): skinfluence never imports them itself; a model of theirs
    can only exist once the user has imported the package, and that is when the adapters are
    registered.
    """
    _DEFERRED[package] = register


def _register_imported():
    for package in [p for p in _DEFERRED if sys.modules.get(p) is not None]:
        _DEFERRED.pop(package)()


def supported_models(kind="objective"):
    """Names of the model types that have a registered adapter of ``kind``."""
    _register_imported()
    return sorted(t.__name__ for t in _KINDS[kind])


def _nearest(table, model):
    """The entry of ``table`` for the nearest class of ``model`` in its MRO, or None."""
    for cls in type(model).__mro__:
        if cls in table:
            return table[cls]
    return None


def find_adapter(model, kind="objective"):
    """The factory registered for the nearest class of ``model`` (see :func:`register_adapter`)."""
    _register_imported()
    factory = _nearest(_KINDS[kind], model)
    if factory is not None:
        return factory
    if kind != "objective":
        raise TypeError(
            f"skinfluence has no {kind} adapter for {type(model).__name__}. Supported: "
            f"{', '.join(supported_models(kind))}, or register one with "
            f"skinfluence.register_adapter(YourModelClass, factory, kind={kind!r})."
        )
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
        A model with a registered adapter (see :func:`register_adapter`), or a meta-estimator
        with a registered wrapper ending in one (see :func:`register_wrapper`): a Pipeline's
        preprocessing becomes ``Objective.preprocess``, a target transform part of ``encode``.
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
        Run :func:`~skinfluence.backend.diagnostics.diagnose`: warn, with the measured figure,
        when the model is not at a minimum of its objective on this data, or when the data
        leave an unpenalised model without a unique finite minimum.
    **options
        Passed to the adapter (e.g. ``params="last"`` for skorch nets: last layer only).

    Returns
    -------
    Objective
    """
    view = unwrap_model(model)
    factory = find_adapter(view.estimator)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if view.row_counts is not None:
        counts = view.row_counts(len(X))
        sw = counts if sw is None else sw * counts
    X_model = view.transform(X)
    if hasattr(X_model, "tocsr") and factory not in SPARSE_ADAPTERS:
        raise TypeError(
            f"A scipy.sparse X was passed for a {type(view.estimator).__name__}: only the "
            "scikit-learn L2 linear models take sparse X; pass X.toarray() for other models."
        )
    try:
        objective = factory(view.estimator, X_model, view.transform_target(y), sw, device,
                            dtype, **options)
    except RuntimeError as err:  # torch cannot evaluate the model on X (shapes, dtypes)
        raise ValueError(
            f"{type(view.estimator).__name__} cannot be evaluated on X of shape {np.shape(X)}: "
            f"{' '.join(str(err).split())}. Pass the inputs the model was trained on."
        ) from err
    objective.preprocess = _compose(view.transform, objective.preprocess)
    objective.encode = _compose(view.transform_target, objective.encode)
    if check_convergence:
        diagnose(objective, view.estimator)
    return objective


class ModelView:
    """What a fitted meta-estimator exposes to influence: its fitted model and how data reach it.

    Parameters
    ----------
    estimator : fitted estimator
        The model whose objective is differentiated (e.g. a Pipeline's last step).
    transform : callable, optional
        Maps the user's rows ``X`` to that model's inputs, as fitted (a Pipeline's preprocessing).
    transform_target : callable, optional
        Maps the user's targets to that model's targets (``TransformedTargetRegressor``).
    row_counts : callable, optional
        ``row_counts(n_samples)`` -> how many times each user row entered the model's training
        set (an imbalanced-learn sampler's ``sample_indices_``); multiplies the row weights.
    refit : str, default="wrapper"
        What :func:`skinfluence.leave_one_out` refits without a row: ``"wrapper"`` the whole
        meta-estimator (a Pipeline refits its preprocessing), ``"estimator"`` the inner model only
        (a search's ``best_estimator_``: hyperparameters held as selected).
    """

    def __init__(self, estimator, transform=None, transform_target=None, row_counts=None,
                 refit="wrapper"):
        self.estimator = estimator
        self.transform = transform or _identity
        self.transform_target = transform_target or _identity
        self.row_counts = row_counts
        self.refit = refit

    @property
    def transforms_rows(self):
        """Whether the user's rows are transformed before they reach the model (a Pipeline's
        preprocessing): then they may be any input that preprocessing takes, e.g. a data frame
        with string columns."""
        return self.transform is not _identity


def register_wrapper(model_type, unwrap=None):
    """Register how to see through a fitted meta-estimator of ``model_type``.

    Parameters
    ----------
    model_type : type
        Class of the meta-estimator (Pipeline, search, target transformer); subclasses match.
    unwrap : callable, optional
        ``unwrap(model) -> ModelView``: the inner fitted model and how the user's data reach it.
        Views of nested meta-estimators are composed. If omitted, returns a decorator.

    Examples
    --------
    >>> from skinfluence.backend import ModelView, register_wrapper
    >>> class Frozen:
    ...     def __init__(self, inner):
    ...         self.inner = inner
    >>> _ = register_wrapper(Frozen, lambda model: ModelView(model.inner))
    """
    if unwrap is None:
        return lambda f: register_wrapper(model_type, f)
    _WRAPPERS[model_type] = unwrap
    return unwrap


def unwrap_model(model):
    """The :class:`ModelView` of a fitted model: wrappers removed, their transforms composed.

    A model without a registered wrapper is its own view.
    """
    view = ModelView(model)
    while (unwrap := _nearest(_WRAPPERS, view.estimator)) is not None:
        inner = unwrap(view.estimator)
        view = ModelView(
            inner.estimator,
            _compose(view.transform, inner.transform),
            _compose(view.transform_target, inner.transform_target),
            _product(view.row_counts, inner.row_counts),
        )
    return view


def model_to_refit(model):
    """The estimator :func:`skinfluence.leave_one_out` clones and refits without each row.

    The outermost meta-estimators whose view says ``refit="estimator"`` (searches) are replaced
    by their inner model, so that refits keep the selected hyperparameters.
    """
    while (unwrap := _nearest(_WRAPPERS, model)) is not None:
        inner = unwrap(model)
        if inner.refit != "estimator":
            break
        model = inner.estimator
    return model


def _compose(outer, inner):
    if inner is _identity:
        return outer
    if outer is _identity:
        return inner
    return lambda values: inner(outer(values))


def _product(outer, inner):
    if outer is not None and inner is not None:
        raise ValueError(
            "Nested Pipelines that both resample rows are not supported; put the samplers in one "
            "Pipeline."
        )
    return outer or inner


def dense_rows(X):
    """A transformer's output as a float64 ndarray (sparse matrices and DataFrames included)."""
    X = check_array(X, accept_sparse=True, dtype=np.float64)
    return X.toarray() if hasattr(X, "toarray") else X
