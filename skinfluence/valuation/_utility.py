"""The utility of a training subset: fit a clone on it and score it on validation rows."""

import numpy as np
from sklearn.base import is_classifier
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import check_scoring
from sklearn.utils.validation import check_memory

from ..influence.loo import refit_without


def constant_predictor(estimator, y, mask):
    """The constant model of the rows ``mask``: class prior or mean target.

    Fitted on all labels with weights ``mask`` so that a classifier knows every class (its prior
    puts zero mass on the classes absent from the subset); the empty subset falls back on the
    whole training set's prior or mean.
    """
    dummy = DummyClassifier(strategy="prior") if is_classifier(estimator) else DummyRegressor()
    weights = mask.astype(float) if mask.any() else None
    return dummy.fit(np.zeros((len(y), 1)), y, sample_weight=weights)


def fit_and_score(estimator, X, y, X_val, y_val, scoring, mask):
    """Score on ``(X_val, y_val)`` of ``estimator`` fitted on the rows ``mask`` of ``(X, y)``.

    A subset the estimator cannot be fitted on (empty, or a single class for a classifier) is
    scored with :func:`constant_predictor`.
    """
    scorer = check_scoring(estimator, scoring=scoring)
    labels = y[mask]
    if len(labels) == 0 or (is_classifier(estimator) and len(np.unique(labels)) < 2):
        model = constant_predictor(estimator, y, mask)
        scorer = check_scoring(model, scoring=scoring)
        score = float(scorer(model, X_val, y_val))
    else:
        try:
            model = refit_without(estimator, X, y, None, mask)
            score = float(scorer(model, X_val, y_val))
        except ValueError as error:
            classes = (f" holding {len(np.unique(labels))} of the {len(np.unique(y))} classes"
                       if is_classifier(estimator) else "")
            raise ValueError(
                f"{type(estimator).__name__} fitted on a subset of {len(labels)} rows{classes} "
                f"could not be scored with {scoring or 'score'!r} ({error}). Data values score "
                "every subset: pass a scorer of predicted labels (e.g. 'accuracy') and an "
                "estimator that fits any subset of two or more rows."
            ) from error
    if not np.isfinite(score):
        raise ValueError(
            f"The scoring {scoring or 'score'!r} returned {score} for a {type(model).__name__} "
            f"fitted on {len(labels)} rows; data values need a finite score on every subset. "
            "Pass a scorer that stays finite (e.g. 'accuracy', 'neg_mean_squared_error')."
        )
    return score


def evaluate_subsets(estimator, X, y, X_val, y_val, scoring, masks, memory):
    """Utilities of a block of subsets (rows of the boolean array ``masks``), one task's work."""
    score = check_memory(memory).cache(fit_and_score)
    return np.array([score(estimator, X, y, X_val, y_val, scoring, m) for m in masks])
