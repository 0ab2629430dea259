"""Adapters for scikit-learn's ``MLPClassifier`` and ``MLPRegressor``.

scikit-learn minimises (``sklearn/neural_network/_multilayer_perceptron.py``, ``_backprop``)

    (1 / sum_i s_i) * (sum_i s_i loss_i + alpha / 2 * sum_layers ||W||^2),

biases unpenalised, with ``loss_i`` the log loss of the output probabilities (logistic output for
two classes, softmax for more) or, for regression, ``0.5 * mean_k (y_ik - f_ik)^2``. Multiplied
by ``sum_i s_i / n`` (which moves no minimiser and no ``H^-1 g``), this is the objective of a torch
network trained with a mean-reduced criterion and coupled weight decay ``alpha / n`` on the
weights (``2 K alpha / n`` for K regression outputs, whose natural loss is the summed squared
error). The fitted layers become an equivalent ``torch.nn.Sequential`` whose outputs are the
logits (or values), evaluated in float64.
"""

import numpy as np
import torch
from sklearn.neural_network import MLPClassifier, MLPRegressor

from .linear import _encode_classes
from .registry import register_adapter
from .torch_models import module_objective

_ACTIVATIONS = {
    "relu": torch.nn.ReLU,
    "tanh": torch.nn.Tanh,
    "logistic": torch.nn.Sigmoid,
    "identity": torch.nn.Identity,
}


def mlp_module(model):
    """The fitted network as a ``torch.nn.Sequential`` of ``Linear`` layers and activations.

    Returns the module and the names of its weight matrices (the penalised parameters).
    """
    layers = []
    for i, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        if i > 0:
            layers.append(_ACTIVATIONS[model.activation]())
        linear = torch.nn.Linear(*W.shape, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(W.T))
            linear.bias.copy_(torch.as_tensor(b))
        layers.append(linear)
    module = torch.nn.Sequential(*layers)
    weights = [f"{i}.weight" for i, layer in enumerate(layers)
               if isinstance(layer, torch.nn.Linear)]
    return module, weights


def _mlp_objective(model, X, y, sample_weight, device, dtype, params, loss, decay, encode=None):
    module, weights = mlp_module(model)
    weights_ = np.ones(len(X)) if sample_weight is None else sample_weight
    return module_objective(module, X, y, weights_, loss=loss,
                            decay=dict.fromkeys(weights, decay), params=params, device=device,
                            dtype=dtype, encode=encode)


@register_adapter(MLPClassifier)
def mlp_classifier_adapter(model, X, y, sample_weight, device, dtype, params="all"):
    if model.out_activation_ not in ("logistic", "softmax") or (
            model.out_activation_ == "logistic" and model.n_outputs_ > 1):
        raise ValueError(
            "A multilabel MLPClassifier (one logistic output per label) is not supported; fit "
            "one classifier per label or encode the labels as classes."
        )
    def encode(labels):
        return _encode_classes(model, np.asarray(labels)).astype(float)

    loss = "bce_with_logits" if model.out_activation_ == "logistic" else "cross_entropy"
    return _mlp_objective(model, X, encode(y), sample_weight, device, dtype, params, loss,
                          model.alpha / len(X), encode)


@register_adapter(MLPRegressor)
def mlp_regressor_adapter(model, X, y, sample_weight, device, dtype, params="all"):
    if model.loss != "squared_error":
        raise ValueError(
            f"MLPRegressor(loss={model.loss!r}) is not supported; influence needs "
            "loss='squared_error'."
        )
    return _mlp_objective(model, X, np.asarray(y, dtype=float), sample_weight, device, dtype,
                          params, "mse", 2 * model.n_outputs_ * model.alpha / len(X))
