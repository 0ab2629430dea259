"""Each model adapter states its estimator's exact objective and matches real retraining.

Two checks per model: the fitted parameters are a stationary point of the stated objective
(a wrong regulariser, scale or intercept treatment fails this), and the Newton-step estimate
correlates with brute-force leave-one-out refits (acceptance: Pearson r >= 0.99; 0.95 for the
active-set approximation of L1 fits).
"""

import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import (
    ElasticNet,
    GammaRegressor,
    HuberRegressor,
    Lasso,
    LassoCV,
    LogisticRegression,
    LogisticRegressionCV,
    PoissonRegressor,
    RidgeClassifier,
    RidgeCV,
    TweedieRegressor,
)
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skinfluence
from skinfluence.backend import make_objective

N = 120
ROWS = np.arange(0, N, 3)  # rows refitted without, to keep the suite fast


def _data(loader, n_features=None, n=N, shuffle=False):
    X, y = loader(return_X_y=True)
    rows = np.random.default_rng(0).permutation(len(y))[:n] if shuffle else np.arange(n)
    X = StandardScaler().fit_transform(X)[rows, :n_features]
    return X, y[rows]


def _standardised_target(X, y):
    return X, (y - y.mean()) / y.std()


DATA = {
    "diabetes": lambda: _data(load_diabetes),
    "cancer": lambda: _data(load_breast_cancer, 10),
    "wine": lambda: _data(load_wine, shuffle=True),  # sorted by class: draw all three
    # the networks: 150 rows (as measured)
    "cancer-150": lambda: _data(load_breast_cancer, 10, n=150),
    "wine-150": lambda: _data(load_wine, n=150),
    "diabetes-150": lambda: _standardised_target(*_data(load_diabetes, n=150)),
}

GLM = {"solver": "newton-cholesky", "tol": 1e-12, "max_iter": 1000}
SAGA = {"solver": "saga", "tol": 1e-12, "max_iter": 100000}

CASES = [
    ("poisson", PoissonRegressor(alpha=0.01, **GLM), "diabetes", 0.99),
    ("gamma", GammaRegressor(alpha=0.01, **GLM), "diabetes", 0.99),
    ("tweedie", TweedieRegressor(power=1.5, alpha=0.01, **GLM), "diabetes", 0.99),
    ("tweedie-identity", TweedieRegressor(power=0, alpha=0.01, tol=1e-12, max_iter=1000),
     "diabetes", 0.99),
    ("huber", HuberRegressor(alpha=0.01, tol=1e-12, max_iter=1000), "diabetes", 0.99),
    ("ridge-cv", RidgeCV(alphas=[0.1, 1.0, 10.0]), "diabetes", 0.99),
    ("ridge-classifier", RidgeClassifier(alpha=1.0), "cancer", 0.99),
    ("ridge-classifier-3", RidgeClassifier(alpha=1.0), "wine", 0.99),
    ("logistic-cv", LogisticRegressionCV(Cs=[0.1, 1.0], l1_ratios=(0.0,), cv=3,
                                         scoring="neg_log_loss", use_legacy_attributes=False,
                                         solver="newton-cholesky", tol=1e-12), "cancer", 0.99),
    ("lasso", Lasso(alpha=1.0, tol=1e-14, max_iter=100000), "diabetes", 0.95),
    ("lasso-cv", LassoCV(alphas=[0.5, 1.0], cv=3, tol=1e-14, max_iter=100000), "diabetes",
     0.95),
    ("elastic-net", ElasticNet(alpha=0.5, l1_ratio=0.5, tol=1e-14, max_iter=100000),
     "diabetes", 0.95),
    ("logistic-l1", LogisticRegression(l1_ratio=1.0, C=0.5, **SAGA), "cancer", 0.95),
    ("logistic-elastic-net", LogisticRegression(l1_ratio=0.5, C=0.5, **SAGA), "cancer", 0.95),
    ("logistic-l1-multinomial", LogisticRegression(l1_ratio=1.0, C=0.5, **SAGA), "wine", 0.95),
]


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FutureWarnings of deprecated defaults
        return model.fit(X, y)


@pytest.mark.parametrize("name, model, data, threshold", CASES, ids=[c[0] for c in CASES])
def test_newton_estimate_matches_refits(name, model, data, threshold):
    X, y = DATA[data]()
    _fit(model, X, y)
    assert make_objective(model, X, y, check_convergence=False).gradient_norm() < 5e-5
    Xte, yte = X[-30:], y[-30:]
    estimate = skinfluence.influence(model, X, y, Xte, yte, method="newton",
                                     target="mean_loss")[ROWS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = skinfluence.leave_one_out(model, X, y, Xte, yte, target="mean_loss",
                                          indices=ROWS)
    assert pearsonr(estimate, refit)[0] >= threshold
    # the scale too, not only the ranking
    assert 0.8 < np.linalg.norm(estimate) / np.linalg.norm(refit) < 1.25


@pytest.mark.parametrize("model, wrong", [
    (PoissonRegressor(alpha=0.01, **GLM), {"alpha": 0.02}),
    (TweedieRegressor(power=1.5, alpha=0.01, **GLM), {"power": 1.2}),
    (HuberRegressor(alpha=0.01, tol=1e-12, max_iter=1000), {"epsilon": 2.0}),
    (Lasso(alpha=1.0, tol=1e-14, max_iter=100000), {"alpha": 0.5}),
], ids=["poisson-alpha", "tweedie-power", "huber-epsilon", "lasso-alpha"])
def test_a_wrong_objective_is_not_stationary(model, wrong):
    X, y = DATA["diabetes"]()
    _fit(model, X, y)
    model.set_params(**wrong)
    assert make_objective(model, X, y, check_convergence=False).gradient_norm() > 1e-4


def test_active_set_holds_zero_coefficients():
    X, y = DATA["diabetes"]()
    model = _fit(Lasso(alpha=2.0, tol=1e-14, max_iter=100000), X, y)
    n_active = np.count_nonzero(model.coef_)
    assert 0 < n_active < X.shape[1]
    objective = make_objective(model, X, y)
    assert objective.n_params == n_active + 1  # active coefficients and the intercept


def test_huber_prediction_target_is_the_regression_output():
    X, y = DATA["diabetes"]()
    model = _fit(HuberRegressor(alpha=0.01, tol=1e-12, max_iter=1000), X, y)
    effects = skinfluence.influence(model, X, y, X[:5], target="prediction", method="newton")
    refit = skinfluence.leave_one_out(model, X, y, X[:5], target="prediction", indices=ROWS)
    assert effects.shape == (N, 5)
    assert pearsonr(effects[ROWS].ravel(), refit.ravel())[0] > 0.99


MLP = {"hidden_layer_sizes": (8,), "activation": "tanh", "solver": "lbfgs", "tol": 1e-14,
       "max_iter": 20000, "random_state": 0}
MLP_CASES = [
    ("mlp-binary", MLPClassifier(alpha=1.0, **MLP), "cancer-150", "newton"),
    ("mlp-multiclass", MLPClassifier(alpha=5.0, **MLP), "wine-150", "influence"),
    ("mlp-regressor", MLPRegressor(alpha=10.0, **MLP), "diabetes-150", "influence"),
]


@pytest.mark.parametrize("name, model, data, method", MLP_CASES, ids=[c[0] for c in MLP_CASES])
def test_mlp_tracks_warm_started_retraining(name, model, data, method):
    """scikit-learn's MLP objective, exactly: stationary, and Spearman >= 0.9 on 50 rows."""
    X, y = DATA[data]()
    _fit(model, X, y)
    assert make_objective(model, X, y, check_convergence=False).gradient_norm() < 1e-4
    Xte, yte = X[-40:], y[-40:]
    rows = np.arange(50)
    estimate = skinfluence.influence(model, X, y, Xte, yte, method=method,
                                     target="mean_loss")[rows]
    model.set_params(max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = skinfluence.leave_one_out(model, X, y, Xte, yte, target="mean_loss",
                                          indices=rows, warm_start=True)
    assert spearmanr(estimate, refit)[0] >= 0.9


def test_last_layer_of_a_network_inside_a_pipeline_and_a_search():
    """params='last' reaches the network at the end of a Pipeline or a search."""
    X, y = DATA["cancer-150"]()
    raw = X * 10 + 5
    pipe = _fit(make_pipeline(StandardScaler(), MLPClassifier(alpha=1.0, **MLP)), raw, y)
    bare = pipe[-1]
    search = _fit(GridSearchCV(MLPClassifier(**MLP), {"alpha": [1.0]}, cv=2), X, y)
    expected = skinfluence.self_influence(bare, pipe[0].transform(raw), y, params="last")
    np.testing.assert_allclose(skinfluence.self_influence(pipe, raw, y, params="last"),
                               expected, rtol=1e-8)
    np.testing.assert_allclose(skinfluence.self_influence(search, X, y, params="last"),
                               skinfluence.self_influence(search.best_estimator_, X, y,
                                                          params="last"), rtol=1e-8)


def test_mlp_penalty_scale_is_checked():
    """alpha enters as alpha / (2 n) ||W||^2: doubling it leaves the fit far from stationary."""
    X, y = DATA["cancer-150"]()
    model = _fit(MLPClassifier(alpha=1.0, **MLP), X, y)
    model.set_params(alpha=2.0)
    assert make_objective(model, X, y, check_convergence=False).gradient_norm() > 1e-3
    model.set_params(alpha=1.0)
    assert make_objective(model, X, y, params="last").n_params == 8 + 1


def test_multiclass_ridge_classifier_has_no_prediction_target():
    X, y = DATA["wine"]()
    assert len(np.unique(y)) == 3
    model = RidgeClassifier(alpha=1.0).fit(X, y)
    with pytest.raises(ValueError, match="target='loss'"):
        skinfluence.influence(model, X, y, X[:3], y[:3], target="prediction")


@pytest.mark.parametrize("model, data", [
    (PoissonRegressor(alpha=0.01, **GLM), "diabetes"),
    (HuberRegressor(alpha=0.01, tol=1e-12, max_iter=1000), "diabetes"),
    (Lasso(alpha=1.0, tol=1e-14, max_iter=100000), "diabetes"),
    (RidgeClassifier(alpha=1.0), "wine"),
    (MLPClassifier(alpha=1.0, **MLP), "cancer"),
], ids=["poisson", "huber", "lasso", "ridge-classifier", "mlp"])
def test_sample_weights_enter_the_objective(model, data):
    X, y = DATA[data]()
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y, sample_weight=weights)
    assert make_objective(model, X, y, weights, check_convergence=False).gradient_norm() < 5e-5
    # ignoring the weights is detectably wrong
    assert make_objective(model, X, y, check_convergence=False).gradient_norm() > 1e-3
