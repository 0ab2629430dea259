"""Views through scikit-learn's meta-estimators: Pipelines, searches, target transformers.

Influence is taken over the parameters of the innermost fitted model; what comes before it is
held fixed as fitted:

* ``Pipeline`` (scikit-learn and imbalanced-learn): every step but the last is applied to the
  training and test rows as fitted; the last step is differentiated. Removing a row does *not*
  refit the preprocessing (a ``StandardScaler``'s mean stays put), which is the assumption of the
  estimate; :func:`skinfluence.leave_one_out` refits the whole Pipeline, so it measures what a
  user means by removal. An imbalanced-learn sampler that records which rows it drew
  (``sample_indices_``: random under- and over-sampling) counts each row as many times as it
  entered the final step's training set; samplers that synthesise rows (SMOTE) are refused. The
  draw is held fixed too, while a ``leave_one_out`` refit draws again.
* ``GridSearchCV`` / ``RandomizedSearchCV``: their ``best_estimator_``,
  hyperparameters held as selected (``leave_one_out`` refits ``best_estimator_``, not the search).
* ``TransformedTargetRegressor``: its ``regressor_`` on the transformed targets; losses and
  predictions are measured on the scale the regressor was fitted on.
"""

import numpy as np
from sklearn import get_config
from sklearn.compose import TransformedTargetRegressor
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import Pipeline

from .registry import ModelView, dense_rows, register_wrapper


def _is_step(step):
    return step is not None and step != "passthrough"


@register_wrapper(Pipeline)
def pipeline_view(pipeline):
    """The last step of a fitted Pipeline, with the others applied as fitted."""
    final = pipeline.steps[-1][1]
    if not _is_step(final):
        raise ValueError(
            "The Pipeline's last step is 'passthrough': there is no model to compute influence "
            "for. End the Pipeline with an estimator."
        )
    steps = [step for _, step in pipeline.steps[:-1] if _is_step(step)]
    samplers = [step for step in steps if hasattr(step, "fit_resample")]
    if len(samplers) > 1:
        raise ValueError("A Pipeline with more than one sampler is not supported; keep one.")
    row_counts = _sampler_counts(samplers[0]) if samplers else None
    transformers = [step for step in steps if not hasattr(step, "fit_resample")]
    if not transformers:
        return ModelView(final, row_counts=row_counts)

    def transform(X):
        for step in transformers:  # samplers act at fit time only, as in Pipeline.predict
            X = step.transform(X)
        return _model_rows(X, final)

    return ModelView(final, transform, row_counts=row_counts)


def _model_rows(X, final):
    """The preprocessed rows as a float64 ndarray, or an error naming the Pipeline's step.

    The user's rows are checked only after the preprocessing (they may hold strings or missing
    values that it encodes or imputes); what reaches the model must be finite numbers.
    """
    try:
        X = dense_rows(X)
    except ValueError as err:
        raise ValueError(
            f"The Pipeline's preprocessing gives {type(final).__name__} rows that are not finite "
            f"numbers ({' '.join(str(err).split())}). Impute or drop missing values (e.g. add a "
            "SimpleImputer to the Pipeline) and encode string columns (OneHotEncoder in a "
            "ColumnTransformer)."
        ) from err
    return X


def weight_fit_params(model, sample_weight):
    """The ``fit`` keyword that hands ``sample_weight`` to ``model``'s final estimator.

    A Pipeline takes it as ``<last step>__sample_weight`` when metadata routing is off, as
    scikit-learn's ``Pipeline.fit`` documents; with routing on, as ``sample_weight`` (routed to
    the steps that request it).
    """
    if sample_weight is None:
        return {}
    if isinstance(model, Pipeline) and not get_config()["enable_metadata_routing"]:
        return {f"{model.steps[-1][0]}__sample_weight": sample_weight}
    return {"sample_weight": sample_weight}


def _sampler_counts(sampler):
    """How often the fitted ``sampler`` drew each training row, from its ``sample_indices_``."""
    if not hasattr(sampler, "sample_indices_"):
        raise ValueError(
            f"{type(sampler).__name__} creates new rows, so the final model's training rows are "
            "not the user's rows and their influence is undefined. Use a sampler that draws "
            "existing rows (RandomUnderSampler, RandomOverSampler), or compute influence of the "
            "resampled data: Xr, yr = sampler.fit_resample(X, y)."
        )
    indices = sampler.sample_indices_

    def counts(n_samples):
        return np.bincount(indices, minlength=n_samples).astype(float)

    return counts


@register_wrapper(GridSearchCV)
@register_wrapper(RandomizedSearchCV)
def search_view(search):
    """A fitted search's ``best_estimator_``, hyperparameters held as selected."""
    if not hasattr(search, "best_estimator_"):
        raise ValueError(
            f"{type(search).__name__} was fitted with refit=False, so it holds no fitted model; "
            "refit it with refit=True (the default)."
        )
    return ModelView(search.best_estimator_, refit="estimator")


@register_wrapper(TransformedTargetRegressor)
def transformed_target_view(model):
    """The inner regressor of a fitted TransformedTargetRegressor, on transformed targets."""
    transformer = model.transformer_

    def transform_target(y):
        y = np.asarray(y, dtype=float)
        with np.errstate(all="ignore"):
            transformed = transformer.transform(y.reshape(-1, 1)).ravel()
        bad = ~np.isfinite(transformed)
        if bad.any():
            raise ValueError(
                f"The TransformedTargetRegressor's transform maps targets "
                f"{np.unique(y[bad])[:5].tolist()} to NaN or infinity (outside the domain of "
                "its func); drop those rows or pass the targets it was fitted on."
            )
        return transformed

    return ModelView(model.regressor_, transform_target=transform_target)
