"""FI (local influence) against a plain per-row loop of the trimming paper's formulas."""

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, Ridge

from skinfluence.backend import make_objective, make_solver
from skinfluence.influence.local import fi_util, local_influence, local_influence_factors
from skinfluence.influence.targets import Target

C = 0.7


def _fit(n_classes, n=60, d=4, seed=0):
    X, y = make_classification(n_samples=n + 30, n_features=d, n_informative=d, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, flip_y=0.1,
                               random_state=seed)
    model = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12).fit(X[:n], y[:n])
    return model, X[:n], y[:n], X[n:], y[n:]


def _rows_binary(model, X, y):
    """Per row: gradient, mixed partial, d/dtheta and d/dx of log P(c), P(c), Hessian term."""
    w = model.coef_[0]
    for x, label in zip(X, y):
        xt = np.append(x, 1.0)
        p = expit(w @ x + model.intercept_[0])
        grad = (p - label) * xt
        mixed = p * (1 - p) * np.outer(xt, w) + (p - label) * np.vstack([np.eye(len(x)), 0 * x])
        dlogp_theta = [-p * xt, (1 - p) * xt]
        dlogp_x = [-p * w, (1 - p) * w]
        yield grad, mixed, dlogp_theta, dlogp_x, [1 - p, p], p * (1 - p) * np.outer(xt, xt)


def _rows_multinomial(model, X, y):
    """The same with parameters ordered class by class as [W_k, b_k]."""
    W, K = model.coef_, model.coef_.shape[0]
    for x, label in zip(X, y):
        xt = np.append(x, 1.0)
        P = softmax(W @ x + model.intercept_)
        A = np.diag(P) - np.outer(P, P)
        resid = P - np.eye(K)[label]
        grad = np.kron(resid, xt)
        dP_dx = A @ W  # (K, d)
        selector = np.vstack([np.eye(len(x)), 0 * x])  # d xt / dx
        mixed = np.concatenate([np.outer(xt, dP_dx[k]) + resid[k] * selector for k in range(K)])
        dlogp_theta = [np.kron(np.eye(K)[c] - P, xt) for c in range(K)]
        dlogp_x = [W.T @ (np.eye(K)[c] - P) for c in range(K)]
        yield grad, mixed, dlogp_theta, dlogp_x, P, np.kron(A, np.outer(xt, xt))


def _paper_fi_util(model, X, y, X_val, y_val, rows, rcond=1e-10):
    """Algorithm 1 as written: explicit H, M_i, G_i and its pseudo-inverse, row by row."""
    train = list(rows(model, X, y))
    p = train[0][0].size
    d = X.shape[1]
    n_out = p // (d + 1)
    penalty = np.diag(np.tile(np.append(np.ones(d), 0.0), n_out))  # 0.5 ||W||^2
    H = penalty + C * sum(row[5] for row in train)
    H_inv = np.linalg.pinv(H)  # the multinomial intercept shift is a null direction
    query = np.mean([row[0] for row in rows(model, X_val, y_val)], axis=0)
    fi = []
    for grad, mixed, dlogp_theta, dlogp_x, prob, _ in train:
        D = -C * H_inv @ mixed  # d theta / d omega (eq. A.7, the estimator's own scaling)
        S = [dt @ D + dx for dt, dx in zip(dlogp_theta, dlogp_x)]  # eq. 2.3
        G = sum(pc * np.outer(s, s) for pc, s in zip(prob, S))
        g_omega = query @ D  # eq. 2.2
        fi.append(g_omega @ np.linalg.pinv(G, rcond=rcond, hermitian=True) @ g_omega)
    return np.array(fi)


@pytest.mark.parametrize("n_classes, rows", [(2, _rows_binary), (3, _rows_multinomial)])
def test_fi_util_equals_paper_loop(n_classes, rows):
    model, X, y, X_val, y_val = _fit(n_classes)
    expected = _paper_fi_util(model, X, y, X_val, y_val, rows)
    objective = make_objective(model, X, y)
    solver = make_solver(objective, "cholesky")
    got = fi_util(objective, solver, Target(objective, X_val, y_val, "loss")).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=0)
    assert expected.std() > 0.1 * expected.mean()  # a non-trivial spread of values


def test_factors_shape_rows_and_queries():
    model, X, y, X_val, y_val = _fit(3)
    objective = make_objective(model, X, y)
    solver = make_solver(objective, "cholesky")
    N = local_influence_factors(objective, solver)
    assert N.shape == (len(X), objective.n_params, 2)  # rank K - 1
    Q = Target(objective, X_val, y_val, "loss").gradients()
    full = local_influence(objective, solver, Q)
    np.testing.assert_allclose(full.numpy(), (np.einsum("mp,npr->mnr", Q, N) ** 2).sum(2),
                               rtol=1e-12)
    picked = [5, 0, 17]
    np.testing.assert_allclose(local_influence(objective, solver, Q, rows=picked).numpy(),
                               full[:, picked].numpy(), rtol=1e-12)
    binary = _fit(2)
    obj2 = make_objective(binary[0], binary[1], binary[2])
    assert local_influence_factors(obj2, make_solver(obj2), rows=slice(0, 7)).shape == (
        7, obj2.n_params, 1)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_theorem1_feature_rescaling(n_classes):
    """Rescaling a feature is a reparametrisation of the perturbation omega (theorem 1)."""
    d = n_classes - 1  # G_i is then full rank, the setting of theorem 1
    _, X, y, X_val, y_val = _fit(n_classes, n=80, d=d, seed=3)
    scale = np.ones(d)
    scale[0] = 50.0

    def fi(X, X_val):
        model = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12).fit(X, y)
        objective = make_objective(model, X, y)
        # unpenalised multinomial weights have a null direction (a common shift of W's rows)
        # that no query or M_i touches; a tiny damping makes H invertible without changing FI
        solver = make_solver(objective, "cholesky", damping=1e-9)
        return fi_util(objective, solver, Target(objective, X_val, y_val, "loss")).numpy()

    base, rescaled = fi(X, X_val), fi(X * scale, X_val * scale)
    np.testing.assert_allclose(rescaled, base, rtol=1e-6)
    assert np.array_equal(np.argsort(rescaled), np.argsort(base))


def test_regressor_gaussian_metric():
    """Ridge: G_i = s s^T / sigma^2, so FI = (q^T D v)^2 sigma^2 / |v|^4 with v = d f / d omega."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=40)
    model = Ridge(alpha=2.0).fit(X, y)
    objective = make_objective(model, X, y)
    X_val, y_val = X[:10] + 0.1, y[:10]
    got = fi_util(objective, make_solver(objective), Target(objective, X_val, y_val, "loss"))
    w, b = model.coef_, model.intercept_
    Xt = np.hstack([X, np.ones((40, 1))])
    H = 2 * Xt.T @ Xt + np.diag([4.0, 4.0, 4.0, 0.0])  # objective ||y - f||^2 + alpha ||w||^2
    resid = Xt @ np.append(w, b) - y
    sigma2 = np.mean(resid**2)
    q = np.mean(2 * (np.hstack([X_val, np.ones((10, 1))]) @ np.append(w, b) - y_val)[:, None]
                * np.hstack([X_val, np.ones((10, 1))]), axis=0)
    expected = []
    for xt, r in zip(Xt, resid):
        mixed = 2 * np.outer(xt, w) + 2 * r * np.vstack([np.eye(3), np.zeros(3)])
        D = -np.linalg.solve(H, mixed)
        v = xt @ D + w
        expected.append((q @ D @ v) ** 2 * sigma2 / (v @ v) ** 2)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-8)
