"""Influence of training rows read from the training trajectory: TracIn and f-INE."""

import numbers
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._delegation import DelegatesToEstimator
from ._validation import DeviceOption, check_classifier_target, check_targets, check_test_data
from .backend import make_objective, resolve_device
from .backend.trajectory import random_projection, record_training
from .influence.targets import Target
from .influence.trajectory import draw_batches, fine, null_quantile, tracin

#: Batch size B of f-INE's Algorithm 1 for estimators without a ``batch_size`` of their own.
DEFAULT_BATCH_SIZE = 32


class TrajectoryInfluence(DelegatesToEstimator, BaseEstimator):
    """Influence of each training row on a model trained by SGD, read from its trajectory.

    The influence functions of :func:`skinfluence.influence` assume a converged, convex fit. A
    network trained for a few epochs by minibatch SGD or Adam is neither; TracIn and f-INE instead
    follow the parameters through training. ``fit`` trains clone(s) of the estimator while
    recording parameter checkpoints (:mod:`skinfluence.backend.trajectory`).

    Every score is a *removal effect* (positive: the row helps, removing it would raise the
    test loss). Methods:

    * ``"tracin"`` -- TracInCP (Pruthi et al. 2020; survey section 5.2.1):
      ``sum_t lr_t grad loss_i(theta_t) . grad loss_test(theta_t)`` over the checkpoints.
    * ``"fine"`` -- f-INE (Algorithms 1-2 of the f-INE paper, vectorised over all rows): a
      hypothesis test between the gradient similarities of minibatches with and without the
      row, across the checkpoints of one run, differenced against an independently trained
      twin. Scores are ``-mu`` (the paper's ``mu`` is negative for a helpful row).

    Parameters
    ----------
    estimator : estimator
        A skorch net, or a scikit-learn model trained by ``partial_fit`` (``SGDClassifier`` with
        ``loss="log_loss"``, ``SGDRegressor``, ``MLPClassifier`` or ``MLPRegressor`` with
        ``solver="sgd"`` or ``"adam"``). It is cloned, never modified.
    method : {"tracin", "fine"}, default="tracin"
    checkpoints : "epoch" or int, default="epoch"
        Record at epoch ends, or every ``checkpoints`` optimizer steps (skorch nets). For f-INE
        each checkpoint is one step t of Algorithm 1.
    n_runs : int, default=1
        Independent training runs whose scores are averaged.
    projection_dim : int, optional
        Project per-row gradients onto this many random Gaussian directions (TracInRP, LESS) to
        save compute and memory on large nets.
    similarity : {"dot", "cosine"}, default="dot"
        TracIn's gradient similarity; ``"cosine"`` renormalises (survey section 5.3).
    batch_size : int, optional
        Batch size B of f-INE's Algorithm 1; default the net's ``batch_size`` (all rows for -1;
        ``min(200, n_samples)`` for an MLP's ``"auto"``), else 32.
    twin_gradients : {"test", "all"}, default="test"
        f-INE: the auxiliary twin supplies the test gradient of ``O_hat`` (Algorithm 1, line 20
        as printed), or its row gradients too (line 13). Line 20 measured better (see
        :func:`skinfluence.influence.trajectory.fine_signals`).
    device : str or torch.device, default="auto"
        Where gradients are computed: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the training runs (initialisation and minibatch order) and f-INE's batch draws.
    verbose : int, default=0
        Print one line per training run.

    Attributes
    ----------
    estimator_ : estimator
        The model trained in the first run.
    trajectories_ : list of Trajectory
        The recorded checkpoints of each run.
    auxiliary_trajectories_ : list of Trajectory
        f-INE only: those of each run's auxiliary twin.
    batches_ : list of ndarray of shape (n_checkpoints, 2, B + 1)
        f-INE only: each run's minibatch draws ``B_t, B'_t`` (Algorithm 1, lines 4-5; see
        :func:`skinfluence.influence.trajectory.draw_batches`).
    mu_ : ndarray of shape (n_samples,)
        f-INE only: each row's self-influence ``mu`` in the paper's sign, averaged over runs.
    null_quantile_ : float
        f-INE only: the 95% quantile of ``|mu_|`` for a row with no effect, for this run's number
        of checkpoints and runs (simulated).
    significant_ : ndarray of shape (n_samples,), bool
        f-INE only: ``|mu_| > null_quantile_``.
    n_features_in_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import SGDClassifier
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import TrajectoryInfluence
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> sgd = SGDClassifier(loss="log_loss", max_iter=5, tol=None)
    >>> inf = TrajectoryInfluence(sgd, method="tracin", random_state=0).fit(X, y)
    >>> inf.self_influence().shape
    (569,)
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [HasMethods(["fit"])],
        "method": [StrOptions({"tracin", "fine"})],
        "checkpoints": [StrOptions({"epoch"}), Interval(numbers.Integral, 1, None,
                                                        closed="left")],
        "n_runs": [Interval(numbers.Integral, 1, None, closed="left")],
        "projection_dim": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "similarity": [StrOptions({"dot", "cosine"})],
        "batch_size": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "twin_gradients": [StrOptions({"test", "all"})],
        "device": [DeviceOption()],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator, *, method="tracin", checkpoints="epoch", n_runs=1,
                 projection_dim=None, similarity="dot", batch_size=None, twin_gradients="test",
                 device="auto", random_state=None, verbose=0):
        self.estimator = estimator
        self.method = method
        self.checkpoints = checkpoints
        self.n_runs = n_runs
        self.projection_dim = projection_dim
        self.similarity = similarity
        self.batch_size = batch_size
        self.twin_gradients = twin_gradients
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Train ``n_runs`` clones of the estimator while recording their trajectories.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Kept in float32 when given so (skorch nets train in their module's precision).
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : TrajectoryInfluence
        """
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2)
        check_classifier_target(self.estimator, y)
        rng = check_random_state(self.random_state)
        fine_method = self.method == "fine"
        self.trajectories_, self.auxiliary_trajectories_, self.batches_ = [], [], []
        self._seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_runs)
        for run, seed in enumerate(self._seeds):
            if self.verbose:
                print(f"[TrajectoryInfluence] training run {run + 1}/{self.n_runs}")
            model, trajectory = record_training(self.estimator, X, y,
                                                checkpoints=self.checkpoints, seed=seed)
            if run == 0:
                self.estimator_ = model
            self.trajectories_.append(trajectory)
            if fine_method:
                twin_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max)
                twin = record_training(self.estimator, X, y, checkpoints=self.checkpoints,
                                       seed=twin_seed)[1]
                if torch.equal(twin.thetas, trajectory.thetas):
                    raise ValueError(
                        "f-INE's auxiliary twin trained exactly like the main run, so their "
                        "difference is zero. Make training random: give skorch the module "
                        "class (not an instance) and iterator_train__shuffle=True, or an "
                        "estimator with shuffle=True.")
                self.auxiliary_trajectories_.append(twin)
                self.batches_.append(draw_batches(rng, len(X), self._batch_size(len(X)),
                                                  len(trajectory)))
        self._training_data = X.astype(np.float64), y
        self._objective = self._build_objective()
        if fine_method:
            self.mu_ = self._average(None)[:, 0]
            self.null_quantile_ = null_quantile(len(self.trajectories_[0]), self.n_runs)
            self.significant_ = np.abs(self.mu_) > self.null_quantile_
        return self

    def _build_objective(self):
        """The training objective of ``estimator_``."""
        return make_objective(self.estimator_, *self._training_data,
                              device=resolve_device(self.device), check_convergence=False)

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: it may be this instance's __dict__
        state.pop("_objective", None)  # built from closures: rebuilt by __setstate__
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_training_data" in state:
            self._objective = self._build_objective()

    def _batch_size(self, n_rows):
        if self.batch_size is not None:
            return self.batch_size
        size = getattr(self.estimator, "batch_size", DEFAULT_BATCH_SIZE)
        if size == "auto":  # scikit-learn's MLPs
            return min(200, n_rows)
        return n_rows if size == -1 else size

    def _average(self, tests):
        """Mean over runs of the method's raw score (TracIn, or f-INE's mu): (n, m) numpy."""
        objective = self._objective
        total = 0.0
        for run, seed in enumerate(self._seeds):
            projection = None if self.projection_dim is None else random_projection(
                objective.n_params, self.projection_dim, seed, objective.theta.device,
                objective.theta.dtype)
            if self.method == "tracin":
                score = tracin(objective, self.trajectories_[run], tests,
                               similarity=self.similarity, projection=projection)
            else:
                score = fine(objective, self.trajectories_[run],
                             self.auxiliary_trajectories_[run], self.batches_[run], tests,
                             twin_gradients=self.twin_gradients, projection=projection)
            total = total + score.detach().cpu().numpy()
        return total / self.n_runs

    def influence(self, X_test, y_test, *, target="loss"):
        """Removal effect of each training row on each test row's loss, or on their mean.

        Parameters
        ----------
        X_test : array-like of shape (n_test, n_features)
        y_test : array-like of shape (n_test,)
        target : {"loss", "mean_loss"}, default="loss"
            Each test row's loss, or the mean test loss (for f-INE not the mean of the per-row
            scores: Algorithm 1 then uses the gradient of the mean loss).

        Returns
        -------
        ndarray of shape (n_samples, n_test), or (n_samples,) for ``target="mean_loss"``
            Positive: the row helps (TracIn's score, or ``-mu`` for f-INE).
        """
        if target not in ("loss", "mean_loss"):
            raise ValueError(f"target={target!r} is not supported; use 'loss' or 'mean_loss'.")
        check_is_fitted(self)
        X_test, y_test = check_test_data(X_test, y_test, self.n_features_in_, self)
        if y_test is None:
            raise ValueError("influence needs y_test: the scores are effects on test losses.")
        check_targets(self._objective, y_test, "y_test")
        score = self._average(Target(self._objective, X_test, y_test, target))
        score = -score if self.method == "fine" else score
        return score[:, 0] if target == "mean_loss" else score

    def self_influence(self):
        """Removal effect of each training row on its own loss.

        Returns
        -------
        ndarray of shape (n_samples,)
            TracIn's self-influence (>= 0), or ``-mu_`` for f-INE. Rows with large values
            are those the training bent towards (mislabelled rows, outliers).
        """
        check_is_fitted(self)
        return -self.mu_ if self.method == "fine" else self._average(None)[:, 0]

    def _checked(self, X):
        """``X`` with the fitted columns (names and order) and feature count."""
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
