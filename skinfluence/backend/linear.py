"""Adapters for fitted scikit-learn linear models.

Each adapter states the objective the estimator minimised, in the form of :class:`Objective`
(``row_scale * sum_i w_i loss_i + penalty``); intercepts are never penalised except by
liblinear, which treats the intercept as a feature of value ``intercept_scaling``.

=========================================  ==============  ====================================
estimator                                  row_scale       penalty
=========================================  ==============  ====================================
LogisticRegression                         C (1 if none)   r ||W||_1 + 0.5 (1 - r) ||W||^2
LinearRegression                           1               0
Ridge                                      1               alpha ||W||^2
SGDClassifier(loss="log_loss"), binary     1 / n           0.5 alpha ||W||^2
SGDRegressor(loss="squared_error")         0.5 / n         0.5 alpha ||W||^2
=========================================  ==============  ====================================

``r`` is ``l1_ratio``; with ``r > 0`` influence is taken on the active set (``linear_objective``).
Natural losses: log loss (binary or multinomial) for classifiers, squared error ``(y - f)^2``
for regressors.
"""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.utils import compute_class_weight

from .device import as_tensor
from .objective import Objective
from .registry import register_adapter


def _binary_loss(Z, y):
    return F.binary_cross_entropy_with_logits(Z[:, 0], y, reduction="none")


def _binary_log_proba(Z):
    return torch.stack([F.logsigmoid(-Z[:, 0]), F.logsigmoid(Z[:, 0])], dim=1)


def _multinomial_loss(Z, y):
    return -torch.gather(F.log_softmax(Z, dim=1), 1, y.long().unsqueeze(1))[:, 0]


def _multinomial_log_proba(Z):
    return F.log_softmax(Z, dim=1)


def _squared_loss(Z, y):
    return (y - Z[:, 0]) ** 2


_LOSSES = {
    "binary": (_binary_loss, _binary_log_proba),
    "multinomial": (_multinomial_loss, _multinomial_log_proba),
    "squared": (_squared_loss, None),
}


def linear_objective(coef, intercept, X, y, weights, row_scale, *, kind, l2, device, dtype,
                     intercept_l2=0.0, encode=None, output_loss=None, l1=0.0, active=None):
    """Objective of a linear model ``Z = X W^T + b`` with penalty ``0.5 l2 ||W||^2``.

    Parameters
    ----------
    coef : ndarray of shape (K, d)
    intercept : ndarray of shape (K,) or None
        ``None`` when the model has no intercept.
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
        0/1 labels (``kind="binary"``), class indices (``"multinomial"``) or targets.
    weights : ndarray of shape (n,)
    row_scale : float
    kind : {"binary", "multinomial", "squared"}
    l2 : float
        Strength of the coefficient penalty.
    device, dtype
        Where and in which precision to compute.
    intercept_l2 : float, default=0.0
        Strength of an intercept penalty (liblinear only).
    encode : callable, optional
        Maps user labels to the numeric targets of the loss.
    output_loss : callable, optional
        ``output_loss(Z, y)`` -> (n,) natural loss of a regressor in place of the squared error
        of ``kind="squared"`` (GLM deviances, Huber).
    l1 : float, default=0.0
        Strength of an L1 penalty ``l1 ||W||_1``. Influence is then taken on the active set
        (the standard approximation for L1 fits): only the coefficients that are non-zero
        (or marked in ``active``) vary, their signs held, so the penalty is smooth there.
    active : ndarray of bool of shape (K, d), optional
        Coefficients that vary; default all (or the non-zero ones when ``l1 > 0``).

    Returns
    -------
    Objective
    """
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    K, d = coef.shape
    if active is None:
        active = coef != 0 if l1 > 0 else np.ones_like(coef, dtype=bool)
    free = np.flatnonzero(np.asarray(active).ravel())
    if X.shape[1] != d:
        raise ValueError(
            f"X has {X.shape[1]} features but the fitted model expects {d}; pass the training "
            "data the model was fitted on."
        )
    fit_intercept = intercept is not None
    # Multinomial intercepts are identified only up to a common shift (softmax ignores it, no
    # penalty pins it): parametrise them by coordinates c in the sum-zero subspace,
    # b = mean(b) + P c, so that the Hessian has no structural null direction.
    basis = _sum_zero_basis(K) if kind == "multinomial" else np.eye(K)
    if fit_intercept:
        intercept = np.atleast_1d(np.asarray(intercept, dtype=float))
        offset = as_tensor(np.full(K, intercept.mean()) if kind == "multinomial"
                           else np.zeros(K), device, dtype)
        coords = basis.T @ (intercept - offset.cpu().numpy())
    parts = [coef.ravel()[free]] + ([coords] if fit_intercept else [])
    theta = as_tensor(np.concatenate(parts), device, dtype)
    basis = as_tensor(basis, device, dtype)
    n_coef = free.size
    every = n_coef == K * d
    free_t = torch.as_tensor(free, device=device)
    signs = as_tensor(np.sign(coef.ravel()[free]), device, dtype)

    def weights_matrix(theta):
        if every:
            return theta[:n_coef].reshape(K, d)
        return torch.zeros(K * d, dtype=theta.dtype, device=theta.device).index_put(
            (free_t,), theta[:n_coef]).reshape(K, d)

    def outputs(theta, X):
        Z = X @ weights_matrix(theta).T
        return Z + offset + basis @ theta[n_coef:] if fit_intercept else Z

    def penalty(theta):
        value = 0.5 * l2 * (theta[:n_coef] ** 2).sum() + l1 * (signs * theta[:n_coef]).sum()
        return value + 0.5 * intercept_l2 * (theta[n_coef:] ** 2).sum()

    def jacobian(X):
        # d Z[n, k] / d W[k', j] = [k == k'] X[n, j];  d Z[n, k] / d c = basis[k]
        eye = torch.eye(K, dtype=X.dtype, device=X.device)
        blocks = [torch.einsum("kl,nd->nkld", eye, X).reshape(len(X), K, K * d)]
        if not every:
            blocks[0] = blocks[0][:, :, free_t]
        if fit_intercept:
            blocks.append(basis.expand(len(X), K, basis.shape[1]))
        return torch.cat(blocks, dim=2)

    natural_loss, log_proba = _LOSSES[kind]
    return Objective(
        theta, as_tensor(X, device, dtype), as_tensor(y, device, dtype),
        as_tensor(weights, device, dtype), row_scale,
        outputs=outputs, output_loss=output_loss or natural_loss, penalty=penalty,
        is_classifier=kind != "squared", jacobian=jacobian, log_proba=log_proba,
        encode=encode,
    )


def _sum_zero_basis(K):
    """(K, K-1) orthonormal basis of the vectors whose entries sum to zero (Helmert)."""
    basis = np.zeros((K, K - 1))
    for j in range(1, K):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -j
        basis[:, j - 1] /= np.sqrt(j * (j + 1))
    return basis


def _encode_classes(model, y):
    classes = model.classes_
    unknown = ~np.isin(y, classes)
    if unknown.any():
        raise ValueError(
            f"y holds labels {np.unique(y[unknown])[:5].tolist()} that the fitted model never saw "
            f"(its classes_ are {classes.tolist()}); pass the training labels it was fitted on."
        )
    return np.searchsorted(classes, y)


def _classifier_weights(model, y, sample_weight):
    sw = np.ones(len(y)) if sample_weight is None else sample_weight
    if getattr(model, "class_weight", None) is None:
        return sw
    cw = compute_class_weight(model.class_weight, classes=model.classes_, y=y,
                              sample_weight=sample_weight)
    return sw * cw[np.searchsorted(model.classes_, y)]


def _intercept(model):
    return model.intercept_ if model.fit_intercept else None


def _logistic_penalty(model):
    """``(C, l1_ratio)`` of a fitted LogisticRegression (``C=inf``: no penalty)."""
    penalty = getattr(model, "penalty", "deprecated")
    if penalty is None or penalty == "none":
        return np.inf, 0.0
    if penalty in ("l1", "l2"):
        return float(model.C), float(penalty == "l1")
    return float(model.C), float(model.l1_ratio or 0.0)


def logistic_objective(model, X, y, sample_weight, device, dtype, C, l1_ratio):
    """Objective of a fitted logistic model with inverse strength ``C`` and ``l1_ratio``.

    ``C * sum_i w_i logloss_i + l1_ratio ||W||_1 + (1 - l1_ratio) / 2 ||W||^2``; with an L1 part,
    on the active set.
    """
    row_scale, l2, l1 = (1.0, 0.0, 0.0) if np.isinf(C) else (C, 1.0 - l1_ratio, l1_ratio)
    y_idx = _encode_classes(model, y)
    weights = _classifier_weights(model, y, sample_weight)
    binary = model.coef_.shape[0] == 1
    if not binary and model.solver == "liblinear":
        raise ValueError(
            "A multiclass LogisticRegression fitted with solver='liblinear' is one-vs-rest: "
            "K separate objectives. Refit with solver='lbfgs' or 'newton-cholesky' (multinomial)."
        )
    intercept_l2 = 0.0
    if model.solver == "liblinear" and model.fit_intercept:
        if l1 > 0:
            raise ValueError(
                "liblinear penalises the intercept with the L1 penalty, which makes it part of "
                "the active set; refit with solver='saga' for an L1 LogisticRegression."
            )
        # liblinear penalises the weight of a constant feature of value intercept_scaling
        intercept_l2 = l2 / model.intercept_scaling**2
    return linear_objective(
        model.coef_, _intercept(model), X, y_idx, weights, row_scale,
        kind="binary" if binary else "multinomial", l2=l2, l1=l1, intercept_l2=intercept_l2,
        device=device, dtype=dtype, encode=lambda labels: _encode_classes(model, labels),
    )


@register_adapter(LogisticRegression)
def logistic_regression_adapter(model, X, y, sample_weight, device, dtype):
    return logistic_objective(model, X, y, sample_weight, device, dtype,
                              *_logistic_penalty(model))


def _check_single_target(model):
    if np.ndim(model.coef_) > 1 and np.shape(model.coef_)[0] > 1:
        raise ValueError(
            f"{type(model).__name__} was fitted on several targets; skinfluence supports one "
            "target column: fit one model per target."
        )


def _regression_weights(y, sample_weight):
    return np.ones(len(y)) if sample_weight is None else sample_weight


@register_adapter(LinearRegression)
def linear_regression_adapter(model, X, y, sample_weight, device, dtype):
    _check_single_target(model)
    return linear_objective(
        model.coef_, _intercept(model), X, y, _regression_weights(y, sample_weight), 1.0,
        kind="squared", l2=0.0, device=device, dtype=dtype,
    )


@register_adapter(Ridge)
def ridge_adapter(model, X, y, sample_weight, device, dtype):
    _check_single_target(model)
    if np.ndim(model.alpha) > 0:
        raise ValueError("Ridge with one alpha per target is not supported; use a scalar alpha.")
    return linear_objective(
        model.coef_, _intercept(model), X, y, _regression_weights(y, sample_weight), 1.0,
        kind="squared", l2=2.0 * model.alpha, device=device, dtype=dtype,
    )


def _sgd_l2(model):
    if model.penalty is None:
        return 0.0
    if model.penalty != "l2":
        raise ValueError(
            f"{type(model).__name__}(penalty={model.penalty!r}) has no smooth objective; refit "
            "with penalty='l2' or penalty=None."
        )
    return float(model.alpha)


@register_adapter(SGDClassifier)
def sgd_classifier_adapter(model, X, y, sample_weight, device, dtype):
    if model.loss != "log_loss":
        raise ValueError(
            f"SGDClassifier(loss={model.loss!r}) is not a likelihood model; influence needs "
            "loss='log_loss'."
        )
    if model.coef_.shape[0] != 1:
        raise ValueError(
            "A multiclass SGDClassifier is one-vs-rest (K separate objectives); use "
            "LogisticRegression for multiclass influence."
        )
    return linear_objective(
        model.coef_, _intercept(model), X, _encode_classes(model, y),
        _classifier_weights(model, y, sample_weight), 1.0 / len(y),
        kind="binary", l2=_sgd_l2(model), device=device, dtype=dtype,
        encode=lambda labels: _encode_classes(model, labels),
    )


@register_adapter(SGDRegressor)
def sgd_regressor_adapter(model, X, y, sample_weight, device, dtype):
    if model.loss != "squared_error":
        raise ValueError(
            f"SGDRegressor(loss={model.loss!r}) is not supported; influence needs "
            "loss='squared_error'."
        )
    # sklearn's squared loss is 0.5 (y - f)^2, averaged over the rows
    return linear_objective(
        model.coef_, _intercept(model), X, y, _regression_weights(y, sample_weight),
        0.5 / len(y), kind="squared", l2=_sgd_l2(model), device=device, dtype=dtype,
    )
