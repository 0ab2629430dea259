"""A skorch callback recording a training trajectory (imported only where skorch is)."""

import torch
from skorch.callbacks import Callback

from .trajectory import Trajectory, _flat_parameters, check_checkpoints


class TrajectoryRecorder(Callback):
    """skorch callback recording parameter checkpoints and learning rates during ``fit``.

    Parameters
    ----------
    every : "epoch" or int, default="epoch"
        Record at the end of each epoch, or after every ``every`` optimizer steps.

    Attributes
    ----------
    trajectory_ : Trajectory
        The checkpoints recorded since the net was last initialised.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skorch import NeuralNetClassifier
    >>> from skinfluence.backend.trajectory import TrajectoryRecorder
    >>> X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> recorder = TrajectoryRecorder()
    >>> net = NeuralNetClassifier(torch.nn.Linear(3, 2), criterion=torch.nn.CrossEntropyLoss,
    ...                           max_epochs=3, train_split=None, verbose=0,
    ...                           callbacks=[recorder]).fit(X, y)
    >>> len(recorder.trajectory_)
    3
    """

    def __init__(self, every="epoch"):
        self.every = every

    def initialize(self):
        check_checkpoints(self.every)
        # trailing underscores: skorch's get_params leaves these out (clone-safe)
        self.checkpoints_, self.learning_rates_, self.steps_ = [], [], 0
        return self

    @property
    def trajectory_(self):
        return Trajectory(torch.stack(self.checkpoints_), self.learning_rates_)

    def _record(self, net):
        self.checkpoints_.append(_flat_parameters(net.module_))
        self.learning_rates_.append(float(net.optimizer_.param_groups[0]["lr"]))

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if not training or self.every == "epoch":
            return
        self.steps_ += 1
        if self.steps_ % self.every == 0:
            self._record(net)

    def on_epoch_end(self, net, **kwargs):
        if self.every == "epoch":
            self._record(net)
