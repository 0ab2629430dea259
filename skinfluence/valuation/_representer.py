"""Representer points (Yeh et al., 2018; survey section 5.1.2)."""

import numpy as np
import torch
from torch.func import hessian

from .._validation import (
    adapter_options,
    check_fitted,
    check_test_data,
    check_training_data,
    public,
)
from ..backend import make_objective


class Representers:
    """A decomposition of test predictions into per-training-row contributions.

    Attributes
    ----------
    contributions : ndarray of shape (n_samples, n_test)
        ``alpha_i k(x_i, x_test)``: how far training row i pushes each test row's output
        (positive = up). Not a removal effect.
    intercept : ndarray of shape (n_test,)
        The part of the output from unpenalised parameters (intercepts), which no row carries.
    prediction : ndarray of shape (n_test,)
        The model's output (regression value or logit) that is decomposed.
    """

    def __init__(self, contributions, intercept, prediction):
        self.contributions, self.intercept, self.prediction = contributions, intercept, prediction

    @property
    def residual(self):
        """``prediction - intercept - sum of contributions``: zero at a stationary point."""
        return self.prediction - self.intercept - self.contributions.sum(axis=0)


@public("X", "y", "X_test", "y_test", "sample_weight", "params", "device")
def representer_points(estimator, X, y, X_test, y_test=None, *, sample_weight=None,
                       params="all", device="cpu"):
    """Representer-point decomposition of each test prediction over the training rows.

    At a minimum of ``J = sum_i g_i-loss + 0.5 theta_S^T P theta_S`` (an L2 penalty ``P`` on the
    parameters ``S``), ``theta_S = -P^-1 sum_i g_i``, where ``g_i`` is row i's training gradient.
    For outputs linear in ``theta`` (linear models; a network's last layer) the output of a test
    row is therefore ``sum_i alpha_i k(x_i, x_test) + intercept`` with
    ``alpha_i k(x_i, x_test) = -J_test P^-1 g_i``: for a linear model with penalty ``l2``,
    ``alpha_i = -(row_scale * w_i / l2) d loss_i / d output`` and ``k`` the inner product of the
    inputs (of the last layer's features for a network).

    Parameters
    ----------
    estimator : fitted estimator
        An L2-regularised model with outputs linear in the variable parameters:
        ``LogisticRegression``, ``Ridge``, ``SGDClassifier``/``SGDRegressor`` with an l2
        penalty, or a skorch net with weight decay and ``params="last"``.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    X_test : array-like of shape (n_test, n_features)
    y_test : array-like of shape (n_test,), optional
        For a multiclass model, the class whose logit is decomposed (default the predicted one).
    sample_weight : array-like of shape (n_samples,), optional
    params : {"all", "last"}, default="all"
        ``"last"`` for networks: the last linear layer over frozen features.
    device : str, default="cpu"

    Returns
    -------
    Representers
        ``contributions`` (n_samples, n_test), ``intercept`` and ``prediction`` (n_test,).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import Ridge
    >>> from skinfluence import representer_points
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = Ridge(alpha=0.1).fit(X[:200], y[:200])
    >>> rep = representer_points(model, X[:200], y[:200], X[200:205])
    >>> bool(abs(rep.residual).max() < 1e-6)
    True
    """
    check_fitted(estimator)
    X, y, sample_weight = check_training_data(X, y, sample_weight, estimator)
    X_test, y_test = check_test_data(X_test, y_test, X.shape[1], estimator)
    options = adapter_options(estimator, params)
    objective = make_objective(estimator, X, y, sample_weight, device=device, **options)
    if not objective.linear:
        raise ValueError(
            f"Representer points need outputs linear in the variable parameters; "
            f"{type(estimator).__name__} with params={params!r} is not. For a network pass "
            "params='last' (its output must be the last nn.Linear layer's, no softmax after it)."
        )
    theta = objective.theta
    P = hessian(objective.penalty)(theta)
    penalised = torch.diagonal(P) > 0
    if not penalised.any():
        raise ValueError(
            f"{type(estimator).__name__} has no L2 penalty; the representer theorem needs one "
            "(e.g. LogisticRegression's C < inf, Ridge's alpha > 0, weight decay for a net)."
        )
    X_rows = objective.as_rows(objective.preprocess(X_test))  # through a Pipeline's steps
    outputs = objective.outputs(theta, X_rows)
    if outputs.shape[1] == 1:
        column = torch.zeros(len(X_test), dtype=torch.long)
    elif y_test is not None:
        column = torch.as_tensor(np.asarray(objective.encode(y_test)), dtype=torch.long)
    else:
        column = outputs.argmax(dim=1)
    rows = torch.arange(len(X_test))
    J = objective.jacobian(X_rows)[rows, column]  # (m, p)
    S = penalised.nonzero()[:, 0]
    V = torch.zeros(len(theta), len(X_test), dtype=theta.dtype, device=theta.device)
    V[S] = torch.linalg.solve(P[S][:, S], J[:, S].T)
    contributions = torch.cat([-objective.train_grads_times(s, V)
                               for s in objective.chunks(objective.n_rows, len(X_test))])
    intercept = objective.outputs(torch.where(penalised, 0.0, theta), X_rows)[rows, column]
    return Representers(contributions.detach().cpu().numpy(),
                        intercept.detach().cpu().numpy(),
                        outputs[rows, column].detach().cpu().numpy())
