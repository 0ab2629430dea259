"""versatile_influence: decomposable losses, sign against retraining, Cox closed form."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from skinfluence.influence.versatile import versatile_influence
from skinfluence.survival import CoxRegression
from skinfluence.survival._partial_likelihood import RiskSets, cox_derivatives
from skinfluence.survival._removal import RemovalTerms


@pytest.fixture(scope="module")
def logistic_problem():
    rng = np.random.default_rng(0)
    n, d, lam = 80, 4, 1.0
    X = torch.tensor(rng.normal(size=(n, d)))
    y = torch.tensor((rng.random(n) < 0.5).astype(float))

    def loss(theta, mask):
        z = X @ theta
        per_row = torch.nn.functional.softplus(z) - y * z
        return (mask * per_row).sum() + 0.5 * lam * (theta**2).sum()

    def fit(keep):
        def objective(t):
            theta = torch.tensor(t, requires_grad=True)
            value = loss(theta, torch.tensor(keep, dtype=torch.float64))
            (g,) = torch.autograd.grad(value, theta)
            return value.item(), g.numpy()

        return minimize(objective, np.zeros(d), jac=True, method="BFGS", tol=1e-12).x

    theta = fit(np.ones(n))
    return X, y, loss, fit, theta, lam


def test_decomposable_loss_gives_the_classical_influence_function(logistic_problem):
    """Appendix D: with L = sum_i b_i l_i, VIF = H^-1 grad l_i exactly (removal sign)."""
    X, y, loss, _, theta, lam = logistic_problem
    t = torch.tensor(theta)
    p = torch.sigmoid(X @ t)
    per_row_grad = (p - y)[:, None] * X
    H = X.T @ ((p * (1 - p))[:, None] * X) + lam * torch.eye(X.shape[1], dtype=X.dtype)
    classical = torch.linalg.solve(H, per_row_grad.T).T.numpy()
    estimate = versatile_influence(loss, theta, X.shape[0], batch_size=16)
    np.testing.assert_allclose(estimate, classical, atol=1e-10, rtol=0)


def test_sign_and_scale_against_retraining(logistic_problem):
    X, _, loss, fit, theta, _ = logistic_problem
    rows = np.arange(0, X.shape[0], 4)
    estimate = versatile_influence(loss, theta, X.shape[0], objects=rows)
    truth = []
    for i in rows:
        keep = np.ones(X.shape[0])
        keep[i] = 0
        truth.append(fit(keep) - theta)
    truth = np.array(truth)
    assert np.corrcoef(estimate.ravel(), truth.ravel())[0, 1] > 0.98
    slope = (estimate * truth).sum() / (estimate**2).sum()
    assert 0.9 < slope < 1.2


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_closed_form_equals_autodiff(ties):
    rng = np.random.default_rng(2)
    n, d = 50, 3
    X = rng.normal(size=(n, d))
    time, event = np.ceil(rng.exponential(5.0, size=n)), rng.random(n) < 0.6
    coef = CoxRegression(alpha=0.2, ties=ties).fit(X, np.column_stack([time, event])).coef_
    Xt, theta, alpha = torch.tensor(X), torch.tensor(coef), torch.full((d,), 0.2)
    risk_sets = RiskSets(time, event, ties, torch.device("cpu"))

    def loss(params, mask):
        return risk_sets.masked_loss(Xt @ params, mask) + 0.5 * (alpha * params**2).sum()

    autodiff = versatile_influence(loss, coef, n)
    drops = RemovalTerms(Xt, theta, risk_sets).gradient_drop()
    _, _, hessian = cox_derivatives(Xt, theta, risk_sets, alpha)
    closed = versatile_influence(
        loss, coef, n, gradient_drop=lambda rows: drops[rows], hessian_matrix=hessian
    )
    np.testing.assert_allclose(closed, autodiff, atol=1e-12)
    assert np.abs(autodiff).max() > 1e-3
