"""Adapters for scikit-learn's generalised linear models: Poisson, Gamma and Tweedie regression.

scikit-learn minimises (``sklearn/linear_model/_glm/glm.py``)

    1 / (2 sum_i s_i) * sum_i s_i deviance(y_i, h(x_i w + b)) + alpha / 2 ||w||^2,

that is ``row_scale = 1 / sum_i s_i`` times the *half* deviance (the natural loss here), with
``penalty = 0.5 alpha ||w||^2`` and the intercept unpenalised. The model's output is the linear
predictor ``x w + b`` (the log of the mean for the log link): ``target="prediction"`` measures
that. Removing a row also lowers ``sum_i s_i``, which strengthens the penalty relative to the
data by a factor ``1 + s_i / (sum_j s_j - s_i)``; the estimate holds ``row_scale`` fixed (an
``O(1/n)`` difference; measured norm ratios to refits 1.00-1.01).
"""

import numpy as np
import torch
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor

from .linear import _check_single_target, _intercept, _regression_weights, linear_objective
from .registry import register_adapter


def half_tweedie_deviance(power, link):
    """``output_loss(Z, y)``: half the Tweedie deviance of mean ``h(Z)`` (``link`` "log" or
    "identity"), zero at ``h(Z) = y``, as scikit-learn's ``HalfTweedieLoss``."""

    def loss(Z, y):
        eta = Z[:, 0]
        mu = eta.exp() if link == "log" else eta
        if power == 0:
            return 0.5 * (y - mu) ** 2
        if power == 1:
            return torch.xlogy(y, y) - y * mu.log() - y + mu
        if power == 2:
            return mu.log() - y.log() + y / mu - 1
        y_pos = y.clamp_min(0)
        return (y_pos ** (2 - power) / ((1 - power) * (2 - power))
                - y * mu ** (1 - power) / (1 - power) + mu ** (2 - power) / (2 - power))

    return loss


def tweedie_targets(model, power):
    """``encode``: targets as floats, refused outside the deviance's domain (as ``fit`` does).

    ``y >= 0`` for ``1 <= power < 2`` (Poisson), ``y > 0`` for ``power >= 2`` (Gamma): the
    deviance of other targets is undefined, and would give NaN or wrong influence silently.
    """
    name = type(model).__name__

    def encode(y):
        y = np.asarray(y, dtype=float)
        bad = (y < 0) if 1 <= power < 2 else (y <= 0) if power >= 2 else np.zeros(len(y), bool)
        if bad.any():
            domain = "non-negative" if power < 2 else "positive"
            raise ValueError(
                f"{name} (power={power:g}) needs {domain} targets; the given targets hold "
                f"{np.unique(y[bad])[:5].tolist()}. Pass the targets the model was fitted on, "
                "or drop those rows."
            )
        return y

    return encode


def _glm_objective(model, X, y, sample_weight, device, dtype, power, link):
    _check_single_target(model)
    encode = tweedie_targets(model, power)
    weights = _regression_weights(y, sample_weight)
    return linear_objective(
        model.coef_, _intercept(model), X, encode(y), weights, 1.0 / weights.sum(),
        kind="squared", l2=float(model.alpha), output_loss=half_tweedie_deviance(power, link),
        device=device, dtype=dtype, encode=encode,
    )


@register_adapter(PoissonRegressor)
def poisson_adapter(model, X, y, sample_weight, device, dtype):
    return _glm_objective(model, X, y, sample_weight, device, dtype, power=1, link="log")


@register_adapter(GammaRegressor)
def gamma_adapter(model, X, y, sample_weight, device, dtype):
    return _glm_objective(model, X, y, sample_weight, device, dtype, power=2, link="log")


@register_adapter(TweedieRegressor)
def tweedie_adapter(model, X, y, sample_weight, device, dtype):
    link = model.link if model.link != "auto" else ("identity" if model.power <= 0 else "log")
    return _glm_objective(model, X, y, sample_weight, device, dtype, power=float(model.power),
                          link=link)
