"""Adapters for torch modules: skorch nets and plain ``nn.Module`` + loss (:class:`TorchModel`).

A net trained with a mean-reduced criterion and an optimizer ``weight_decay`` (L2 coupled to the
gradient, as in SGD or Adam) minimised

    J(theta) = (1 / n) * sum_i w_i loss_i(theta) + 0.5 * sum_groups wd * ||theta_group||^2.

``params="last"`` treats only the last ``nn.Linear`` layer as variable (the body's features are
frozen): exact and cheap Hessians even for large bodies.
"""

import copy
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from .device import as_tensor
from .objective import Objective
from .registry import register_adapter, register_when_imported


def _nll_of_probabilities(Z, y):
    # skorch adds the float eps of the output dtype inside its log
    eps = torch.finfo(Z.dtype).eps
    return -torch.log(torch.gather(Z, 1, y.long().unsqueeze(1))[:, 0] + eps)


def _identity(Z):
    return Z


def _log_of_probabilities(Z):
    return torch.log(Z + torch.finfo(Z.dtype).eps)


def _cross_entropy(Z, y):
    return -torch.gather(F.log_softmax(Z, dim=1), 1, y.long().unsqueeze(1))[:, 0]


def _bce_logits(Z, y):
    return F.binary_cross_entropy_with_logits(Z[:, 0], y, reduction="none")


def _bce_log_proba(Z):
    return torch.stack([F.logsigmoid(-Z[:, 0]), F.logsigmoid(Z[:, 0])], dim=1)


def _mse(Z, y):
    return ((y.reshape(Z.shape[0], -1) - Z) ** 2).sum(1)


#: loss name -> (natural per-row loss of outputs, log-probabilities or None, is_classifier)
LOSSES = {
    "cross_entropy": (_cross_entropy, lambda Z: F.log_softmax(Z, dim=1), True),
    "nll_probabilities": (_nll_of_probabilities, _log_of_probabilities, True),
    "bce_with_logits": (_bce_logits, _bce_log_proba, True),
    "mse": (_mse, None, False),
}


class TorchModel:
    """A trained ``torch.nn.Module`` together with the objective it was trained on.

    Parameters
    ----------
    module : torch.nn.Module
        The trained network; it is copied, never modified.
    loss : {"cross_entropy", "bce_with_logits", "mse", "nll_probabilities"}, default="cross_entropy"
        The mean-reduced criterion it was trained with (``"nll_probabilities"``: the module
        outputs probabilities, as skorch's ``NeuralNetClassifier`` default).
    weight_decay : float, default=0.0
        Coupled L2 weight decay of the optimizer.
    params : {"all", "last"}, default="all"
        Which parameters influence is taken over.

    Examples
    --------
    >>> import torch
    >>> from skinfluence import TorchModel
    >>> model = TorchModel(torch.nn.Linear(3, 2), loss="cross_entropy", weight_decay=1e-3)
    """

    def __init__(self, module, loss="cross_entropy", weight_decay=0.0, params="all"):
        self.module = module
        self.loss = loss
        self.weight_decay = weight_decay
        self.params = params


def _variable_names(module, params):
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    if params == "all":
        return names
    if params == "last":
        linear = [n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
        if not linear:
            raise ValueError("params='last' needs a torch.nn.Linear layer in the module.")
        prefix = f"{linear[-1]}." if linear[-1] else ""
        return [n for n in names if n.startswith(prefix) and "." not in n[len(prefix):]]
    raise ValueError(f"params={params!r} is not supported; use 'all' or 'last'.")


def module_objective(module, X, y, weights, *, loss, decay, params, device, dtype,
                     encode=None):
    """Objective of a trained module with a mean-reduced ``loss`` and per-parameter decay.

    Parameters
    ----------
    module : torch.nn.Module
    X, y : ndarray
        Training inputs and targets (class indices for classifiers).
    weights : ndarray of shape (n,)
    loss : str
        A key of :data:`LOSSES`.
    decay : dict
        Parameter name -> L2 weight-decay coefficient.
    params : {"all", "last"}
    device, dtype
    encode : callable, optional
        Maps user labels to class indices.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not supported; use one of {sorted(LOSSES)}.")
    output_loss, log_proba, is_classifier = LOSSES[loss]
    link = _identity
    if loss == "nll_probabilities":
        # The outputs are the log-probabilities, scored by cross-entropy (equal to NLL of the
        # probabilities, since they sum to one): the Newton step's Gauss-Newton leave-one-out
        # Hessian is then taken in logit space, exact for a model linear in its logits, where in
        # probability space it misses the softmax's curvature.
        link, (output_loss, log_proba, _) = _log_of_probabilities, LOSSES["cross_entropy"]
    module = copy.deepcopy(module).to(device=device, dtype=dtype).eval()
    names = _variable_names(module, params)
    named = dict(module.named_parameters())
    shapes = [named[n].shape for n in names]
    sizes = [named[n].numel() for n in names]
    theta = torch.cat([named[n].detach().reshape(-1) for n in names])
    decays = torch.cat([torch.full((s,), float(decay.get(n, 0.0)), dtype=dtype, device=device)
                        for n, s in zip(names, sizes)])

    def module_outputs(theta, X):
        pieces = torch.split(theta, sizes)
        tensors = {n: t.reshape(s) for n, t, s in zip(names, pieces, shapes)}
        return functional_call(module, tensors, (X,)).reshape(X.shape[0], -1)

    def outputs(theta, X):
        return link(module_outputs(theta, X))

    def penalty(theta):
        return 0.5 * (decays * theta**2).sum()

    X_t = as_tensor(X, device, dtype)
    if loss == "nll_probabilities":
        _check_probabilities(module_outputs(theta, X_t).detach())
    return Objective(
        theta, X_t, as_tensor(y, device, dtype), as_tensor(weights, device, dtype),
        1.0 / len(X), outputs=outputs, output_loss=output_loss, penalty=penalty,
        is_classifier=is_classifier, log_proba=log_proba, encode=encode,
        jacobian=_head_jacobian(module, names, X_t[:8]) if params == "last" else None,
        network=(module, names, link),
    )


def _check_probabilities(Z):
    """NLLLoss reads the module's outputs as class probabilities: refuse outputs that are not."""
    worst = float((Z.sum(1) - 1).abs().max()) if len(Z) else 0.0
    if (Z < 0).any() or worst > 1e-4:
        raise ValueError(
            f"The criterion NLLLoss (skorch's NeuralNetClassifier default) reads the module's "
            f"outputs as class probabilities, but they are not (smallest {float(Z.min()):.3g}, "
            f"rows summing to 1 within {worst:.3g}): training took the log of them. End the "
            "module with a softmax, or train with criterion=torch.nn.CrossEntropyLoss on logits."
        )


def _head_jacobian(module, names, probe):
    """The constant output Jacobian when only an output ``nn.Linear`` layer is variable.

    If the module's output *is* its last linear layer's output (logits or values: no softmax
    after it), the outputs are linear in that layer's parameters, ``Z = F W^T + b`` with ``F``
    the frozen body's features, and the Jacobian is ``[k == k'] F[n, j]`` (weight) and
    ``[k == k']`` (bias). Returns None when the probe rows show any other output.
    """
    prefix = names[0].rsplit(".", 1)[0] if "." in names[0] else ""
    head = module.get_submodule(prefix)

    def features_and_output(X):
        seen = {}
        hook = head.register_forward_hook(lambda m, inp, out: seen.update(F=inp[0], Z=out))
        try:
            with torch.no_grad():
                Z = module(X)
        finally:
            hook.remove()
        return seen["F"], seen["Z"], Z

    _, Z_head, Z = features_and_output(probe)
    if Z.numel() != Z_head.numel() or not torch.equal(Z.reshape(-1), Z_head.reshape(-1)):
        return None
    K = head.out_features

    def jacobian(X):
        F = features_and_output(X)[0].reshape(len(X), -1)
        eye = torch.eye(K, dtype=F.dtype, device=F.device)
        blocks = {f"{prefix}.weight".lstrip("."): torch.einsum(
            "kl,nd->nkld", eye, F).reshape(len(X), K, -1),
            f"{prefix}.bias".lstrip("."): eye.expand(len(X), K, K)}
        return torch.cat([blocks[n] for n in names], dim=2)

    return jacobian


@register_adapter(TorchModel)
def torch_model_adapter(model, X, y, sample_weight, device, dtype):
    weights = np.ones(len(X)) if sample_weight is None else sample_weight
    decay = {n: model.weight_decay for n, _ in model.module.named_parameters()}
    return module_objective(model.module, X, y, weights, loss=model.loss, decay=decay,
                            params=model.params, device=device, dtype=dtype)


def _skorch_decay(net):
    """Weight decay of each parameter, read from the fitted optimizer's parameter groups."""
    by_id = {id(p): n for n, p in net.module_.named_parameters()}
    decay = {}
    for group in net.optimizer_.param_groups:
        for p in group["params"]:
            if id(p) in by_id:
                decay[by_id[id(p)]] = group.get("weight_decay", 0.0)
    if isinstance(net.optimizer_, torch.optim.AdamW) and any(decay.values()):
        warnings.warn(
            "AdamW's decoupled weight decay is not an L2 penalty of the loss; skinfluence treats "
            "it as one. Train with an optimizer with coupled weight decay for exact influence.",
            RuntimeWarning, stacklevel=3,
        )
    return decay


def _skorch_loss(net):
    criterion = net.criterion_
    if isinstance(criterion, torch.nn.NLLLoss):
        return "nll_probabilities"
    if isinstance(criterion, torch.nn.CrossEntropyLoss):
        return "cross_entropy"
    if isinstance(criterion, torch.nn.BCEWithLogitsLoss):
        return "bce_with_logits"
    if isinstance(criterion, torch.nn.MSELoss):
        return "mse"
    raise ValueError(
        f"skorch criterion {type(criterion).__name__} is not supported; use NLLLoss, "
        "CrossEntropyLoss, BCEWithLogitsLoss or MSELoss, or wrap the module in "
        "skinfluence.TorchModel with your own loss."
    )


def skorch_adapter(net, X, y, sample_weight, device, dtype, params="all"):
    """Objective of a fitted skorch net (whole network, or ``params="last"``)."""
    if not getattr(net, "initialized_", False):
        raise ValueError(f"This {type(net).__name__} is not fitted yet; call fit first.")
    loss = _skorch_loss(net)

    def encode(labels):  # a skorch classifier's label is its output's index, whatever classes_
        return np.asarray(labels, dtype=float)

    weights = np.ones(len(X)) if sample_weight is None else sample_weight
    return module_objective(net.module_, np.asarray(X), encode(y), weights,
                            loss=loss, decay=_skorch_decay(net), params=params,
                            device=device, dtype=dtype, encode=encode)


def _register_skorch():
    from skorch import NeuralNet

    register_adapter(NeuralNet, skorch_adapter)


# skorch is optional (``pip install skinfluence[skorch]``): never imported here
register_when_imported("skorch", _register_skorch)
