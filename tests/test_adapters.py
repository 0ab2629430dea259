"""Each adapter states the objective its estimator minimised: the fit must be stationary."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from torch.func import hessian

import skinfluence
from skinfluence.backend import make_objective, supported_models


def _stationarity(model, X, y, sample_weight=None):
    return make_objective(model, X, y, sample_weight, check_convergence=False).gradient_norm()


@pytest.mark.parametrize("model", [
    LogisticRegression(C=0.3, solver="newton-cholesky", tol=1e-12),
    LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=200),
    LogisticRegression(C=2.0, fit_intercept=False, solver="newton-cholesky", tol=1e-12),
    LogisticRegression(C=0.5, solver="liblinear", tol=1e-12, intercept_scaling=3.0),
    LogisticRegression(C=0.5, class_weight={0: 3.0, 1: 1.0}, solver="newton-cholesky",
                       tol=1e-12),
], ids=["l2", "no-penalty", "no-intercept", "liblinear", "class-weight"])
def test_logistic_objectives_are_stationary(breast_cancer, model):
    Xtr, _, ytr, _ = breast_cancer
    Xs, ys = Xtr[:120, :5], ytr[:120]  # few features: the unpenalised fit stays finite
    model.fit(Xs, ys)
    assert _stationarity(model, Xs, ys) < 1e-7


def test_wrong_objective_is_not_stationary(breast_cancer):
    """The check can fail: a model fitted with another C is far from stationary here."""
    Xtr, _, ytr, _ = breast_cancer
    model = LogisticRegression(C=0.3, solver="newton-cholesky", tol=1e-12).fit(Xtr, ytr)
    model.C = 3.0
    assert _stationarity(model, Xtr, ytr) > 1e-3
    with pytest.warns(RuntimeWarning, match="does not look converged.*relative norm"):
        make_objective(model, Xtr, ytr)


def test_multinomial_and_sample_weight(wine, rng):
    Xtr, _, ytr, _ = wine
    sw = rng.uniform(0.2, 3.0, len(ytr))
    model = LogisticRegression(C=0.7, solver="newton-cholesky", tol=1e-12)
    model.fit(Xtr, ytr, sample_weight=sw)
    assert _stationarity(model, Xtr, ytr, sw) < 1e-7
    assert _stationarity(model, Xtr, ytr) > 1e-4  # ignoring the weights is detectably wrong


@pytest.mark.parametrize("model", [LinearRegression(), Ridge(alpha=3.0),
                                   Ridge(alpha=1.0, fit_intercept=False)])
def test_regression_objectives_are_stationary(diabetes, model):
    Xtr, _, ytr, _ = diabetes
    model.fit(Xtr, ytr)
    assert _stationarity(model, Xtr, ytr) < 1e-8


def test_sgd_objectives_are_near_stationary(breast_cancer, diabetes):
    Xtr, _, ytr, _ = breast_cancer
    clf = SGDClassifier(loss="log_loss", alpha=0.01, max_iter=5000, tol=None,
                        learning_rate="constant", eta0=1e-3, random_state=0).fit(Xtr, ytr)
    assert _stationarity(clf, Xtr, ytr) < 5e-3
    clf.alpha = 1.0
    assert _stationarity(clf, Xtr, ytr) > 5e-2
    Xd, _, yd, _ = diabetes
    Xd, yd = (Xd - Xd.mean(0)) / Xd.std(0), (yd - yd.mean()) / yd.std()
    reg = SGDRegressor(alpha=0.1, max_iter=5000, tol=None, learning_rate="constant",
                       eta0=1e-4, random_state=0).fit(Xd, yd)
    assert _stationarity(reg, Xd, yd) < 2e-3
    reg.alpha = 1.0
    assert _stationarity(reg, Xd, yd) > 0.1


@pytest.mark.parametrize("fixture", ["breast_cancer", "wine"])
def test_gauss_newton_hessian_equals_autodiff(request, fixture):
    Xtr, _, ytr, _ = request.getfixturevalue(fixture)
    model = LogisticRegression(solver="newton-cholesky").fit(Xtr, ytr)
    objective = make_objective(model, Xtr, ytr)
    exact = hessian(objective.objective)(objective.theta)
    torch.testing.assert_close(objective.hessian(), exact, rtol=1e-10, atol=1e-10)
    V = torch.randn(objective.n_params, 3, dtype=exact.dtype)
    torch.testing.assert_close(objective.hvp(V), exact @ V, rtol=1e-10, atol=1e-10)


def test_registry_lists_models_and_accepts_new_ones(breast_cancer):
    pytest.importorskip("skorch")  # its adapter registers once skorch is imported
    assert {"LogisticRegression", "Ridge", "NeuralNet", "TorchModel"} <= set(supported_models())

    class Wrapped:
        def __init__(self, inner):
            self.inner = inner

    with pytest.raises(TypeError, match="register_adapter"):
        make_objective(Wrapped(None), *breast_cancer[::2])
    from skinfluence.backend.registry import find_adapter

    skinfluence.register_adapter(Wrapped, lambda m, X, y, sw, device, dtype: find_adapter(
        m.inner)(m.inner, X, y, sw, device, dtype))
    Xtr, Xte, ytr, yte = breast_cancer
    inner = LogisticRegression(solver="newton-cholesky").fit(Xtr, ytr)
    np.testing.assert_allclose(
        skinfluence.influence(Wrapped(inner), Xtr, ytr, Xte, yte, target="mean_loss"),
        skinfluence.influence(inner, Xtr, ytr, Xte, yte, target="mean_loss"))


@pytest.mark.parametrize("model, message", [
    (SGDClassifier(loss="hinge"), "log_loss"),
    (SGDRegressor(penalty="l1"), "smooth"),
])
def test_non_smooth_models_are_rejected(breast_cancer, model, message):
    Xtr, _, ytr, _ = breast_cancer
    model.fit(Xtr, ytr)
    with pytest.raises(ValueError, match=message):
        make_objective(model, Xtr, ytr)


def test_mixed_partials_match_the_logistic_closed_form(breast_cancer):
    """d/dx d/dtheta of log loss: sigma'(z) [x; 1] w^T + (sigma(z) - y) [I; 0]."""
    Xtr, _, ytr, _ = breast_cancer
    model = LogisticRegression(solver="newton-cholesky").fit(Xtr, ytr)
    objective = make_objective(model, Xtr, ytr)
    M = objective.mixed_partials(objective.X[:7], objective.y[:7]).numpy()
    w, b = model.coef_.ravel(), model.intercept_[0]
    d = len(w)
    for i in range(7):
        z = Xtr[i] @ w + b
        s = 1 / (1 + np.exp(-z))
        expected = s * (1 - s) * np.outer(np.r_[Xtr[i], 1.0], w)
        expected[:d] += (s - ytr[i]) * np.eye(d)
        np.testing.assert_allclose(M[i], expected, rtol=1e-10, atol=1e-12)
