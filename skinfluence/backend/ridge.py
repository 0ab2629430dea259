"""Adapters for ridge classifiers and the cross-validated linear models, at their selected strength.

* ``RidgeCV`` / ``RidgeClassifierCV``: the ridge objective at the selected ``alpha_``.
* ``RidgeClassifier``: ridge regression on the class codes ``+1 / -1`` (one column per class,
  a single column for two classes, as scikit-learn's ``LabelBinarizer(neg_label=-1)``):
  ``sum_i w_i sum_k (Y_ik - z_ik)^2 + alpha ||W||^2`` with ``w_i`` the sample times class weights.
  Its natural loss is that squared error; ``target="prediction"`` is the decision function (two
  classes only).
* ``LogisticRegressionCV``: the logistic objective at the selected ``C_`` and ``l1_ratio_``.

Refits in :func:`skinfluence.leave_one_out` repeat the selection; influence holds it fixed.
"""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegressionCV, RidgeClassifier, RidgeClassifierCV, RidgeCV

from .linear import (
    _check_single_target,
    _classifier_weights,
    _encode_classes,
    _intercept,
    _regression_weights,
    linear_objective,
    logistic_objective,
)
from .registry import register_adapter


def _selected_alpha(model):
    alpha = np.asarray(model.alpha_)
    if alpha.size != 1:
        raise ValueError(
            f"{type(model).__name__} selected one alpha per target; skinfluence supports one "
            "target column: fit one model per target."
        )
    return float(alpha.ravel()[0])


@register_adapter(RidgeCV)
def ridge_cv_adapter(model, X, y, sample_weight, device, dtype):
    _check_single_target(model)
    return linear_objective(
        model.coef_, _intercept(model), X, y, _regression_weights(y, sample_weight), 1.0,
        kind="squared", l2=2.0 * _selected_alpha(model), device=device, dtype=dtype,
    )


def _class_code_loss(Z, y):
    """Squared error of the outputs against the +1 / -1 code of class index ``y``."""
    if Z.shape[1] == 1:
        return (2 * y - 1 - Z[:, 0]) ** 2
    code = 2 * (y.long().unsqueeze(1) == torch.arange(Z.shape[1], device=Z.device)) - 1
    return ((code.to(Z.dtype) - Z) ** 2).sum(1)


def _ridge_classifier(model, X, y, sample_weight, device, dtype, alpha):
    return linear_objective(
        model.coef_, _intercept(model), X, _encode_classes(model, y),
        _classifier_weights(model, y, sample_weight), 1.0, kind="squared", l2=2.0 * alpha,
        output_loss=_class_code_loss, device=device, dtype=dtype,
        encode=lambda labels: _encode_classes(model, labels),
    )


@register_adapter(RidgeClassifier)
def ridge_classifier_adapter(model, X, y, sample_weight, device, dtype):
    return _ridge_classifier(model, X, y, sample_weight, device, dtype, float(model.alpha))


@register_adapter(RidgeClassifierCV)
def ridge_classifier_cv_adapter(model, X, y, sample_weight, device, dtype):
    return _ridge_classifier(model, X, y, sample_weight, device, dtype, _selected_alpha(model))


@register_adapter(LogisticRegressionCV)
def logistic_regression_cv_adapter(model, X, y, sample_weight, device, dtype):
    if not model.refit:
        raise ValueError(
            "LogisticRegressionCV(refit=False) averages the folds' coefficients, which minimise "
            "no single objective; refit it with refit=True."
        )
    C = float(np.ravel(model.C_)[0])
    l1_ratio = np.ravel(model.l1_ratio_)[0]
    if l1_ratio is None or (isinstance(l1_ratio, float) and np.isnan(l1_ratio)):
        l1_ratio = float(getattr(model, "penalty", "l2") == "l1")
    return logistic_objective(model, X, y, sample_weight, device, dtype, C, float(l1_ratio))
