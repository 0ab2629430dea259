"""Adapter for scikit-learn's ``HuberRegressor``, whose objective includes the scale ``sigma``.

scikit-learn minimises jointly over ``w, b, sigma`` (``sklearn/linear_model/_huber.py``)

    sum_i s_i (sigma + H_eps((y_i - x_i w - b) / sigma) sigma) + alpha ||w||^2,

with ``H_eps(z) = z^2`` for ``|z| <= eps`` and ``2 eps |z| - eps^2`` beyond. ``sigma`` is a
parameter of the objective, so it is one here: the model's outputs are ``(x w + b, sigma)``, both
linear in ``theta = (w, b, sigma)``, and the second is an auxiliary output, not a prediction.
"""

import numpy as np
import torch
from sklearn.linear_model import HuberRegressor

from .device import as_tensor
from .linear import _regression_weights
from .objective import Objective
from .registry import register_adapter


def _huber_loss(epsilon):
    def loss(Z, y):
        residual, sigma = (y - Z[:, 0]).abs(), Z[:, 1]
        inlier = sigma + residual**2 / sigma
        outlier = sigma + 2 * epsilon * residual - sigma * epsilon**2
        return torch.where(residual > epsilon * sigma, outlier, inlier)

    return loss


@register_adapter(HuberRegressor)
def huber_adapter(model, X, y, sample_weight, device, dtype):
    d = model.coef_.size
    if X.shape[1] != d:
        raise ValueError(
            f"X has {X.shape[1]} features but the fitted model expects {d}; pass the training "
            "data the model was fitted on."
        )
    fit_intercept = model.fit_intercept
    parts = [model.coef_] + ([[model.intercept_]] if fit_intercept else []) + [[model.scale_]]
    theta = as_tensor(np.concatenate(parts), device, dtype)
    n_linear = d + int(fit_intercept)

    def outputs(theta, X):
        prediction = X @ theta[:d] + (theta[d] if fit_intercept else 0.0)
        return torch.stack([prediction, theta[-1].expand(len(X))], dim=1)

    def penalty(theta):
        return model.alpha * (theta[:d] ** 2).sum()

    def jacobian(X):
        J = torch.zeros(len(X), 2, n_linear + 1, dtype=X.dtype, device=X.device)
        J[:, 0, :d] = X
        if fit_intercept:
            J[:, 0, d] = 1.0
        J[:, 1, -1] = 1.0
        return J

    objective = Objective(
        theta, as_tensor(X, device, dtype), as_tensor(y, device, dtype),
        as_tensor(_regression_weights(y, sample_weight), device, dtype), 1.0,
        outputs=outputs, output_loss=_huber_loss(model.epsilon), penalty=penalty,
        is_classifier=False, jacobian=jacobian,
    )
    objective.n_auxiliary_outputs = 1
    return objective
