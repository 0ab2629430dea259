"""Shared-bottom neural network, one linear head per task (MTIF Example 2), in torch."""

import itertools
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from skinfluence._validation import DeviceOption
from skinfluence.backend.device import as_tensor, resolve_device
from skinfluence.multitask._objective import MultitaskObjective, multitask_objective, task_positions
from skinfluence.multitask._tasks import REQUEST_TASKS, check_tasks


def _check_hidden_layer_sizes(hidden_layer_sizes):
    """At least one shared layer, each of a positive integer width."""
    if not hidden_layer_sizes or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h > 0
            for h in hidden_layer_sizes):
        raise ValueError(
            "hidden_layer_sizes must hold the positive integer width of each shared layer, at "
            f"least one, e.g. (16,) or (32, 16); got {hidden_layer_sizes!r}."
        )


def _bottom_shapes(n_features, hidden_layer_sizes):
    sizes = [n_features, *hidden_layer_sizes]
    return [((a, b), (b,)) for a, b in itertools.pairwise(sizes)]


def _bottom(gamma, X, shapes):
    """Shared layers ``f(gamma; X)``: tanh MLP with parameters unpacked from the flat ``gamma``."""
    start = 0
    for (w_shape, b_shape) in shapes:
        n_w, n_b = w_shape[0] * w_shape[1], b_shape[0]
        W = gamma[start:start + n_w].reshape(w_shape)
        b = gamma[start + n_w:start + n_w + n_b]
        X = torch.tanh(X @ W + b)
        start += n_w + n_b
    return X


def _head_loss(loss, out, y):
    if loss == "log_loss":  # binary cross-entropy on logits, stable for large |out|
        return torch.nn.functional.softplus(out) - y * out
    return (y - out) ** 2


class SharedBottomNetwork(BaseEstimator):
    """Shared tanh layers and one linear output head per task (shared-bottom MTL).

    Minimises, full batch with L-BFGS, the MTIF paper's Example 2::

        sum_k [ mean_{i in task k} loss(y_i, head_k(bottom(x_i)))
                + alpha * (||theta_k||^2 + ||gamma||^2 / K) ]

    where ``gamma`` are the shared (bottom) parameters and ``theta_k`` the head of task k
    (weights and bias): the whole penalty on ``gamma`` is ``alpha * ||gamma||^2``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(16,)
        Widths (positive) of the shared layers, at least one.
    loss : {"squared_error", "log_loss"}, default="squared_error"
        ``"log_loss"``: every task is binary classification with labels 0/1.
    alpha : float, default=1e-2
        Strength of the L2 penalty.
    max_iter : int, default=500
        L-BFGS iterations.
    tol : float, default=1e-8
        Stop when the largest gradient component is below ``tol``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights; an int makes ``fit`` deterministic.
    device : {"auto", "cpu", "cuda"}, default="auto"

    Attributes
    ----------
    tasks_ : ndarray of shape (K,)
        Sorted task labels.
    heads_ : ndarray of shape (K, hidden_layer_sizes[-1] + 1)
        Task heads ``theta_k`` (weights then bias).
    shared_ : ndarray of shape (n_shared,)
        Flattened shared parameters ``gamma``.
    n_iter_ : int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.multitask import SharedBottomNetwork
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 3)); tasks = np.repeat([0, 1], 40)
    >>> y = np.tanh(X[:, 0]) + 0.1 * rng.normal(size=80)
    >>> net = SharedBottomNetwork(hidden_layer_sizes=(4,), random_state=0).fit(X, y, tasks)
    >>> net.predict(X[:3], [0, 1, 1]).shape
    (3,)
    """

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": [tuple, list],
        "loss": [StrOptions({"squared_error", "log_loss"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [DeviceOption()],
    }

    __metadata_request__fit = REQUEST_TASKS
    __metadata_request__predict = REQUEST_TASKS
    __metadata_request__decision_function = REQUEST_TASKS
    __metadata_request__predict_proba = REQUEST_TASKS

    def __init__(self, hidden_layer_sizes=(16,), loss="squared_error", alpha=1e-2, max_iter=500,
                 tol=1e-8, random_state=None, device="auto"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.loss = loss
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device

    def fit(self, X, y, tasks=None):
        """Fit the shared layers and the task heads.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Targets; 0/1 labels when ``loss="log_loss"``.
        tasks : array-like of shape (n_samples,)
            Task label of each row (required; a keyword so that metadata routing can pass it).

        Returns
        -------
        self : SharedBottomNetwork
        """
        self._validate_params()
        _check_hidden_layer_sizes(self.hidden_layer_sizes)
        X, y = validate_data(self, X, y, y_numeric=True)
        if self.loss == "log_loss" and not np.isin(y, (0, 1)).all():
            raise ValueError("loss='log_loss' needs 0/1 labels in y; encode the two classes as 0/1.")
        tasks = check_tasks(tasks, len(X))
        self.tasks_ = np.unique(tasks)
        device = resolve_device(self.device)
        shapes = _bottom_shapes(X.shape[1], self.hidden_layer_sizes)
        gen = torch.Generator().manual_seed(
            int(check_random_state(self.random_state).randint(2**31 - 1)))
        gamma = torch.cat([
            part for (w_shape, b_shape) in shapes
            for part in (torch.randn(w_shape, generator=gen).flatten() / np.sqrt(w_shape[0]),
                         torch.zeros(b_shape))
        ])
        width = self.hidden_layer_sizes[-1]
        heads = torch.randn(len(self.tasks_), width + 1, generator=gen) / np.sqrt(width)
        heads[:, -1] = 0.0
        dtype = torch.float64 if device.type == "cpu" else torch.float32
        gamma = gamma.to(device, dtype).requires_grad_()
        heads = heads.to(device, dtype).requires_grad_()
        Xt, yt = as_tensor(X, device, dtype), as_tensor(y, device, dtype)
        pos = task_positions(self.tasks_, tasks)
        scale = as_tensor(1.0 / np.bincount(pos)[pos], device, dtype)  # per-task means
        pos = torch.as_tensor(pos, device=device)

        def objective():
            out = (_bottom(gamma, Xt, shapes) * heads[pos, :-1]).sum(1) + heads[pos, -1]
            penalty = self.alpha * ((heads ** 2).sum() + (gamma ** 2).sum())
            return (scale * _head_loss(self.loss, out, yt)).sum() + penalty

        optimizer = torch.optim.LBFGS([gamma, heads], max_iter=self.max_iter,
                                      tolerance_grad=self.tol, tolerance_change=0.0,
                                      history_size=50, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            value = objective()
            value.backward()
            return value

        optimizer.step(closure)
        closure()
        grad_max = max(gamma.grad.abs().max().item(), heads.grad.abs().max().item())
        if grad_max > max(self.tol, 1e-5):
            warnings.warn(
                f"L-BFGS stopped with gradient max-norm {grad_max:.2g} > tol; influence estimates "
                "need a converged fit: increase max_iter.", ConvergenceWarning, stacklevel=2)
        self.n_iter_ = optimizer.state[optimizer._params[0]]["n_iter"]
        self.shared_ = gamma.detach().cpu().numpy()
        self.heads_ = heads.detach().cpu().numpy()
        return self

    def decision_function(self, X, tasks=None):
        """Raw head outputs (predictions, or logits for ``loss="log_loss"``) of shape (n,)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        pos = task_positions(self.tasks_, check_tasks(tasks, len(X)))
        with torch.no_grad():
            Z = _bottom(torch.as_tensor(self.shared_), torch.as_tensor(X, dtype=torch.float64),
                        _bottom_shapes(X.shape[1], self.hidden_layer_sizes)).numpy()
        return np.einsum("nd,nd->n", Z, self.heads_[pos, :-1]) + self.heads_[pos, -1]

    def predict(self, X, tasks=None):
        """Predictions (``squared_error``) or 0/1 labels (``log_loss``) of shape (n,)."""
        out = self.decision_function(X, tasks=tasks)
        return (out > 0).astype(int) if self.loss == "log_loss" else out

    @available_if(lambda self: self.loss == "log_loss")
    def predict_proba(self, X, tasks=None):
        """Class probabilities (n, 2) of each row under its task's head."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X, tasks=tasks)))
        return np.column_stack([1 - p, p])


@multitask_objective.register(SharedBottomNetwork)
def _network_objective(estimator, device):
    check_is_fitted(estimator)
    shapes = _bottom_shapes(estimator.n_features_in_, estimator.hidden_layer_sizes)
    n_tasks, alpha, kind = len(estimator.tasks_), estimator.alpha, estimator.loss

    def loss(th, g, X, y):
        return _head_loss(kind, _bottom(g, X, shapes) @ th[:-1] + th[-1], y)

    def penalty(k, th, g):
        return alpha * ((th ** 2).sum() + (g ** 2).sum() / n_tasks)

    return MultitaskObjective(estimator.tasks_, as_tensor(estimator.heads_, device),
                              as_tensor(estimator.shared_, device), loss, penalty)


__all__ = ["SharedBottomNetwork"]
