"""Training trajectories: parameter checkpoints and learning rates recorded while a model trains.

TracIn and f-INE read how a model moved during training, not only where it stopped. A
:class:`Trajectory` keeps one flattened parameter vector per checkpoint, in the layout of the
model's :class:`~skinfluence.backend.Objective` (``theta``), and the learning rate in effect at
that checkpoint. Per-row gradients are recomputed from the checkpoints when they are needed, so
memory stays ``O(T p)`` for ``T`` checkpoints of ``p`` parameters, never ``O(T n p)``.

Three ways to record:

* skorch nets: the :class:`~.skorch_recorder.TrajectoryRecorder` callback (any optimizer,
  minibatches), at epoch ends or every ``k`` optimizer steps; the learning rate is the
  optimizer's ``lr`` (for Adam the base rate, not the per-coordinate adaptive step).
* plain torch modules: :func:`record_torch` trains a :class:`TorchModel` by minibatch SGD (or
  another ``torch.optim`` optimizer) and records.
* scikit-learn models with ``partial_fit`` (``SGDClassifier``, ``SGDRegressor``,
  ``MLPClassifier``, ``MLPRegressor`` with ``solver="sgd"`` or ``"adam"``):
  :func:`record_partial_fit` runs one epoch per call and reads the learning rate from the
  estimator's schedule (for Adam the base rate ``learning_rate_init``).
"""

import copy
import numbers
import sys
import threading

import numpy as np
import torch
from sklearn.base import clone, is_classifier
from sklearn.neural_network import MLPClassifier, MLPRegressor

from .registry import make_objective
from .torch_models import LOSSES, TorchModel


class Trajectory:
    """Parameter checkpoints of one training run and the learning rate at each.

    Parameters
    ----------
    thetas : torch.Tensor of shape (T, p)
        Flattened parameters at each checkpoint, in the layout of the model's objective.
    learning_rates : ndarray of shape (T,)
        Effective learning rate of the steps that led to each checkpoint.
    """

    def __init__(self, thetas, learning_rates):
        self.thetas = thetas
        self.learning_rates = np.asarray(learning_rates, dtype=float)

    def __len__(self):
        return len(self.learning_rates)

    def __iter__(self):
        return zip(self.thetas, self.learning_rates)


def is_skorch_net(model):
    """Whether ``model`` is a skorch net (skorch is optional: a net implies it is imported)."""
    skorch = sys.modules.get("skorch")
    return skorch is not None and isinstance(model, skorch.NeuralNet)


def check_checkpoints(checkpoints):
    """``"epoch"`` or a positive number of optimizer steps between checkpoints."""
    if checkpoints == "epoch":
        return checkpoints
    if isinstance(checkpoints, numbers.Integral) and not isinstance(checkpoints, bool) \
            and checkpoints > 0:
        return int(checkpoints)
    raise ValueError(f"checkpoints={checkpoints!r} is not supported; use 'epoch' or a positive "
                     "number of optimizer steps between checkpoints.")


def _flat_parameters(module):
    # the order of Objective.theta: named_parameters() that require gradients
    return torch.cat([p.detach().reshape(-1).cpu().clone()
                      for p in module.parameters() if p.requires_grad])


def record_torch(model, X, y, *, epochs=10, batch_size=32, lr=0.01, optimizer=torch.optim.SGD,
                 checkpoints="epoch", random_state=None):
    """Train a copy of a :class:`TorchModel`'s module by minibatches and record its trajectory.

    The training objective is the model's: the mean of its per-row ``loss`` over each minibatch,
    with the optimizer's ``weight_decay`` set to ``model.weight_decay``.

    Parameters
    ----------
    model : TorchModel
        Its module gives the initial parameters; it is copied, never modified.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Class indices for classification losses.
    epochs : int, default=10
    batch_size : int, default=32
    lr : float, default=0.01
    optimizer : torch.optim.Optimizer class, default=torch.optim.SGD
    checkpoints : "epoch" or int, default="epoch"
        Record at epoch ends or every ``checkpoints`` optimizer steps.
    random_state : int, optional
        Seeds the minibatch order.

    Returns
    -------
    trained : TorchModel
        The trained copy (same loss, weight decay and ``params``).
    trajectory : Trajectory
    """
    every = check_checkpoints(checkpoints)
    if not isinstance(model, TorchModel):
        raise TypeError(f"record_torch needs a skinfluence.TorchModel, got {type(model).__name__}.")
    output_loss = LOSSES[model.loss][0]
    module = copy.deepcopy(model.module).train()
    dtype = next(module.parameters()).dtype
    X = torch.as_tensor(np.asarray(X), dtype=dtype)
    y = torch.as_tensor(np.asarray(y), dtype=dtype)
    opt = optimizer([p for p in module.parameters() if p.requires_grad], lr=lr,
                    weight_decay=model.weight_decay)
    generator = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
    thetas, rates, steps = [], [], 0
    for _ in range(epochs):
        for rows in torch.randperm(len(X), generator=generator).split(batch_size):
            opt.zero_grad()
            output_loss(module(X[rows]).reshape(len(rows), -1), y[rows]).mean().backward()
            opt.step()
            steps += 1
            if every != "epoch" and steps % every == 0:
                thetas.append(_flat_parameters(module))
                rates.append(opt.param_groups[0]["lr"])
        if every == "epoch":
            thetas.append(_flat_parameters(module))
            rates.append(opt.param_groups[0]["lr"])
    trained = TorchModel(module.eval(), loss=model.loss, weight_decay=model.weight_decay,
                         params=model.params)
    return trained, Trajectory(torch.stack(thetas), rates)


def sgd_learning_rates(model, steps):
    """Learning rate of a scikit-learn SGD model at each step counter ``t`` in ``steps``.

    Follows the schedules of scikit-learn's ``_plain_sgd``: ``"constant"`` and ``"adaptive"``
    (one epoch per ``partial_fit`` never triggers the adaptive decrease) use ``eta0``;
    ``"invscaling"`` ``eta0 / t^power_t``; ``"optimal"`` ``1 / (alpha (t0 + t - 1))`` with
    ``t0 = 1 / (alpha^(3/4))`` for the log and squared losses.
    """
    steps = np.asarray(steps, dtype=float)
    schedule = model.learning_rate
    if schedule in ("constant", "adaptive"):
        return np.full_like(steps, model.eta0)
    if schedule == "invscaling":
        return model.eta0 / steps ** model.power_t
    if schedule == "optimal":
        typical_weight = np.sqrt(1.0 / np.sqrt(model.alpha))
        t0 = 1.0 / (typical_weight * model.alpha)
        return 1.0 / (model.alpha * (t0 + steps - 1))
    raise ValueError(f"learning_rate={schedule!r} has a per-row step size; record trajectories "
                     "with 'constant', 'optimal', 'invscaling' or 'adaptive'.")


def mlp_learning_rate(model):
    """Learning rate of the next ``partial_fit`` epoch of a scikit-learn MLP.

    Adam: the base rate ``learning_rate_init`` (as for skorch nets, not the per-coordinate
    adaptive step). ``solver="sgd"``: the current rate of its schedule, which scikit-learn's
    ``SGDOptimizer`` keeps for the whole epoch and updates at its end (``"invscaling"``:
    ``learning_rate_init / (t + 1)^power_t`` for ``t`` rows seen; ``"adaptive"``: divided by 5
    after ``n_iter_no_change`` epochs without improvement); ``learning_rate_init`` before the
    first epoch.
    """
    if model.solver == "adam" or not hasattr(model, "_optimizer"):
        return model.learning_rate_init
    return model._optimizer.learning_rate


def _partial_fit_epoch(model, X, y, kwargs):
    """One ``partial_fit`` call (one epoch); returns the learning rate of its steps."""
    if isinstance(model, (MLPClassifier, MLPRegressor)):
        rate = mlp_learning_rate(model)
        model.partial_fit(X, y, **kwargs)
        return rate
    start = getattr(model, "t_", 1.0)
    model.partial_fit(X, y, **kwargs)
    return sgd_learning_rates(model, np.arange(start, model.t_)).mean()


def record_partial_fit(estimator, X, y, *, epochs=None, random_state=None):
    """Train a clone of a ``partial_fit`` estimator epoch by epoch and record its trajectory.

    Parameters
    ----------
    estimator : SGDClassifier, SGDRegressor, MLPClassifier or MLPRegressor
        Unfitted or fitted; it is cloned. MLPs need ``solver="sgd"`` or ``"adam"``; each epoch
        is their minibatches of ``batch_size`` in their own shuffled order.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    epochs : int, optional
        Default: the estimator's ``max_iter``.
    random_state : int, optional
        Sets the clone's ``random_state`` (the shuffling of each epoch, an MLP's initialisation).

    Returns
    -------
    trained : estimator
    trajectory : Trajectory
        One checkpoint per epoch, in the layout of the estimator's objective
        (:func:`~skinfluence.backend.make_objective`). The learning rate is, for SGD models, the
        mean over the epoch's steps; for MLPs :func:`mlp_learning_rate`.
    """
    model = _seeded_clone(estimator, random_state)
    if getattr(model, "average", False):
        raise ValueError(f"{type(model).__name__}(average={model.average!r}) reports averaged "
                         "coefficients, not the SGD iterates; use average=False.")
    kwargs = {"classes": np.unique(y)} if is_classifier(model) else {}
    thetas, rates = [], []
    for _ in range(epochs or model.max_iter):
        rates.append(_partial_fit_epoch(model, X, y, kwargs))
        objective = make_objective(model, X, y, device="cpu", check_convergence=False)
        thetas.append(objective.theta.clone())
    return model, Trajectory(torch.stack(thetas), rates)


#: Name of the recorder among a skorch net's callbacks.
RECORDER = "skinfluence_trajectory"


def record_training(estimator, X, y, *, checkpoints="epoch", seed=None):
    """Fit a clone of ``estimator`` with a seed (:func:`seeded_fit`) and record its trajectory.

    skorch nets get a :class:`~.skorch_recorder.TrajectoryRecorder`; other estimators must have ``partial_fit``
    (one checkpoint per epoch).

    Returns
    -------
    trained : estimator
    trajectory : Trajectory
    """
    every = check_checkpoints(checkpoints)
    if is_skorch_net(estimator):
        from .skorch_recorder import TrajectoryRecorder

        callbacks = [] if estimator.callbacks in (None, "disable") else list(estimator.callbacks)
        # rebuilt as clone() does (skorch's set_params(callbacks=...) fails on "disable")
        params = clone(estimator.get_params(deep=False), safe=False)
        params["callbacks"] = [*callbacks, (RECORDER, TrajectoryRecorder(every=every))]
        net = type(estimator)(**params)
        net = seeded_fit(net, X, y, seed)
        return net, dict(net.callbacks_)[RECORDER].trajectory_
    if hasattr(estimator, "partial_fit"):
        if every != "epoch":
            raise ValueError(f"{type(estimator).__name__} is trained by partial_fit, one epoch "
                             "per call: use checkpoints='epoch'.")
        return record_partial_fit(estimator, X, y, random_state=seed)
    raise TypeError(f"{type(estimator).__name__} cannot be trained step by step; training "
                    "trajectories need a skorch net or an estimator with partial_fit "
                    "(SGDClassifier, SGDRegressor, MLPClassifier or MLPRegressor with "
                    "solver='sgd' or 'adam').")


def _seeded_clone(estimator, seed):
    model = clone(estimator)
    if seed is not None and not is_skorch_net(model) \
            and "random_state" in model.get_params():
        model.set_params(random_state=seed)
    return model


#: torch's generator is global to the process: threads (joblib's "threading" backend) take
#: turns seeding and training nets on it, or each would draw from the others' seeds.
_TORCH_GENERATOR = threading.Lock()


def seeded_fit(estimator, X, y, seed):
    """Fit a clone of ``estimator`` whose training randomness is set by ``seed``.

    skorch nets: torch's generator, in a forked state so that the caller's generator is left
    as it was (the seed sets initialisation and minibatch order), one thread at a time;
    others: ``random_state``.
    """
    model = _seeded_clone(estimator, seed)
    if not is_skorch_net(model):
        return model.fit(X, y)
    with _TORCH_GENERATOR, torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return model.fit(X, y)


def random_projection(n_params, dim, seed, device, dtype):
    """Gaussian matrix ``(n_params, dim)`` with entries ``N(0, 1/dim)``: preserves inner products
    in expectation (TracInRP, LESS, TRAK)."""
    generator = torch.Generator().manual_seed(int(seed))
    P = torch.randn(n_params, dim, generator=generator, dtype=torch.float64) / np.sqrt(dim)
    return P.to(device=device, dtype=dtype)
