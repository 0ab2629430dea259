"""ActiveLearningSelector: FI^active against a per-pair loop of Algorithm 2, and the contract."""

import numpy as np
import pytest
import torch
from scipy.stats import trim_mean
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.func import grad, hessian, jacrev

from skinfluence import ActiveLearningSelector, active_learning_curve
from skinfluence.active import influence_sampling, learning_curve_area, plot_learning_curves
from skinfluence.backend import make_objective

METHODS = ["fi", "iv", "uncertainty", "bald", "random"]


def _pool(n=70, n_labeled=20, n_classes=3, d=5, seed=0):
    X, y_true = make_classification(n_samples=n, n_features=d, n_informative=d, n_redundant=0,
                                    n_classes=n_classes, n_clusters_per_class=1, flip_y=0.05,
                                    random_state=seed)
    rng = np.random.default_rng(seed)
    labeled = rng.choice(n, n_labeled, replace=False)
    y = np.full(n, np.nan)
    y[labeled] = y_true[labeled]
    return X, y, y_true


def _model():
    return LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000)


# --------------------------------------------------------- Algorithm 2, pair by pair
def _algorithm_2(model, X_lab, y_lab, X_unl, rcond=1e-10):
    """FI(z_u, z_j) for every (unlabeled u, labeled j), written as Algorithm 2 line by line."""
    obj = make_objective(model, X_lab, y_lab)
    theta = obj.theta
    X_l = torch.as_tensor(X_lab, dtype=torch.float64)
    y_l = torch.as_tensor(obj.encode(y_lab), dtype=torch.float64)
    H = hessian(obj.objective)(theta)  # line 4: Hessian of the objective the model minimised
    c = obj.row_scale  # each row's loss enters the objective as row_scale * loss

    def loss(t, x, label):
        return obj.loss(t, x[None], label[None])[0]

    def log_p(t, x):
        return obj.log_proba(t, x[None])[0]

    # line 10 depends on the labeled row only: D_j and G_j^+ once per labeled row
    D, G_pinv = [], []
    for x, label in zip(X_l, y_l):
        M = jacrev(grad(loss), argnums=1)(theta, x, label)  # d/dx d/dtheta L, (p, d)
        D.append(-c * torch.linalg.solve(H, M))  # d theta_hat / d omega (eq. A.7)
        P = log_p(theta, x).exp()
        s = jacrev(log_p)(theta, x) @ D[-1] + jacrev(log_p, argnums=1)(theta, x)  # eq. 2.3
        G = (P[:, None, None] * s[:, :, None] * s[:, None, :]).sum(0)
        G_pinv.append(np.linalg.pinv(G.numpy(), rcond=rcond, hermitian=True))
    y_hat = torch.as_tensor(obj.encode(model.predict(X_unl)), dtype=torch.float64)
    out = np.zeros((len(X_unl), len(X_lab)))
    for i, x_u in enumerate(torch.as_tensor(X_unl, dtype=torch.float64)):
        q = grad(loss)(theta, x_u, y_hat[i])  # line 7
        for j in range(len(X_lab)):  # line 9
            v = (q @ D[j]).numpy()  # line 11
            out[i, j] = v @ G_pinv[j] @ v  # line 12
    return out


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fi_active_equals_per_pair_loop(n_classes):
    X, y, _ = _pool(n=32, n_labeled=20, n_classes=n_classes)
    labeled = ~np.isnan(y)
    unlabeled = np.flatnonzero(~labeled)
    model = _model().fit(X[labeled], y[labeled].astype(int))
    fi = _algorithm_2(model, X[labeled], y[labeled].astype(int), X[unlabeled])
    assert fi.min() >= 0 and fi.max() > 0
    expected = {
        "trimmed_mean": trim_mean(fi, 0.1, axis=1),  # the paper's 10-90% trimmed mean
        "mean": fi.mean(1),
        "median": np.median(fi, axis=1),
        0.25: np.quantile(fi, 0.25, axis=1),
    }
    for aggregation, values in expected.items():
        selector = ActiveLearningSelector(_model(), method="fi", aggregation=aggregation,
                                          batch_size=3, random_state=0)
        chosen = selector.query(X, y)
        np.testing.assert_allclose(selector.utilities_[unlabeled], values, rtol=1e-8, atol=0)
        assert set(chosen) == set(unlabeled[np.argsort(-values)[:3]])
    # the trimmed mean differs from the plain mean here, so the test can tell them apart
    assert not np.allclose(expected["trimmed_mean"], expected["mean"], rtol=1e-3)


def test_iv_equals_explicit_formula():
    X, y, _ = _pool(n=40, n_labeled=20)
    labeled = ~np.isnan(y)
    selector = ActiveLearningSelector(_model(), method="iv", random_state=0)
    selector.query(X, y)
    model = selector.estimator_
    obj = make_objective(model, X[labeled], y[labeled].astype(int))
    H = hessian(obj.objective)(obj.theta)
    X_u = X[~labeled]
    y_hat = torch.as_tensor(obj.encode(model.predict(X_u)), dtype=torch.float64)
    G = obj.row_grads(torch.as_tensor(X_u), y_hat)  # (m, p)
    expected = (G @ torch.linalg.solve(H, G.mean(0))).numpy()
    np.testing.assert_allclose(selector.utilities_[~labeled], expected, rtol=1e-8)


@pytest.mark.parametrize("measure", ["least_confident", "margin", "entropy"])
def test_uncertainty_measures(measure):
    X, y, _ = _pool()
    selector = ActiveLearningSelector(_model(), method="uncertainty", uncertainty=measure)
    selector.query(X, y)
    P = selector.estimator_.predict_proba(X[np.isnan(y)])
    top = np.sort(P, axis=1)
    expected = {"least_confident": 1 - top[:, -1], "margin": top[:, -2] - top[:, -1],
                "entropy": -(P * np.log(P)).sum(1)}[measure]
    np.testing.assert_allclose(selector.utilities_[np.isnan(y)], expected, rtol=1e-10)


def test_bald_laplace_matches_second_order_expansion():
    # with a narrow posterior N(theta, H^-1), I(y; theta) ~ tr(F_x H^-1) / 2 where F_x is the
    # Fisher information of the prediction at x: a check of the posterior's covariance
    X, y, _ = _pool(n=150, n_labeled=120)
    selector = ActiveLearningSelector(_model(), method="bald", mc_samples=400, random_state=0)
    selector.query(X, y)
    bald = selector.utilities_[np.isnan(y)]
    assert bald.min() >= -1e-12  # mutual information is non-negative (Jensen)
    labeled = ~np.isnan(y)
    obj = make_objective(selector.estimator_, X[labeled], y[labeled].astype(int))
    H_inv = torch.linalg.inv(hessian(obj.objective)(obj.theta))
    expansion = []
    for x in torch.as_tensor(X[~labeled]):
        J = jacrev(lambda t, x=x: obj.log_proba(t, x[None])[0])(obj.theta)  # (K, p)
        P = obj.log_proba(obj.theta, x[None])[0].exp()
        fisher = J.T @ (P[:, None] * J)
        expansion.append(0.5 * torch.trace(fisher @ H_inv).item())
    assert np.corrcoef(bald, expansion)[0, 1] > 0.9


# ------------------------------------------------------------------- the contract
@pytest.mark.parametrize("method", METHODS)
def test_query_returns_distinct_unlabeled_rows(method):
    X, y, _ = _pool()
    y_before = y.copy()
    selector = ActiveLearningSelector(_model(), method=method, batch_size=7, random_state=0)
    chosen = selector.query(X, y)
    assert chosen.shape == (7,) and len(set(chosen)) == 7
    assert np.isnan(y[chosen]).all()
    assert np.isnan(selector.utilities_[~np.isnan(y)]).all()
    assert np.isfinite(selector.utilities_[np.isnan(y)]).all()
    np.testing.assert_array_equal(y, y_before)  # the user's array is untouched
    # best first: the chosen rows hold the largest utilities
    rest = np.setdiff1d(np.flatnonzero(np.isnan(y)), chosen)
    assert selector.utilities_[chosen].min() >= selector.utilities_[rest].max()


@pytest.mark.parametrize("method", METHODS)
def test_candidates_respected(method):
    X, y, _ = _pool()
    candidates = np.flatnonzero(np.isnan(y))[::3]
    selector = ActiveLearningSelector(_model(), method=method, random_state=0)
    chosen, utilities = selector.query(X, y, batch_size=4, candidates=candidates,
                                       return_utilities=True)
    assert set(chosen) <= set(candidates) and len(set(chosen)) == 4
    # skactiveml's layout: one row per pick, NaN outside the candidates and for earlier picks
    assert utilities.shape == (4, len(X))
    outside = np.setdiff1d(np.arange(len(X)), candidates)
    assert np.isnan(utilities[:, outside]).all() and np.isfinite(utilities[0, candidates]).all()
    for i in range(4):
        assert np.isnan(utilities[i, chosen[:i]]).all()
        assert utilities[i, chosen[i]] == np.nanmax(utilities[i])


@pytest.mark.parametrize("method, options", [("random", {}), ("bald", {}),
                                             ("fi", {"subsample": 0.5})])
def test_deterministic_under_random_state(method, options):
    X, y, _ = _pool()
    runs = [ActiveLearningSelector(_model(), method=method, batch_size=5, random_state=3,
                                   **options).query(X, y, return_utilities=True)
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = ActiveLearningSelector(_model(), method=method, batch_size=5, random_state=4,
                                   **options).query(X, y, return_utilities=True)
    assert not np.array_equal(np.nan_to_num(other[1]), np.nan_to_num(runs[0][1]))


@pytest.mark.parametrize("method", METHODS)
def test_pipeline_scores_the_rows_its_scaler_transforms(method):
    """A Pipeline(scaler, model) on raw rows scores as the bare model on the rows scaled by
    the same scaler (fitted on the labeled rows)."""
    X, y, _ = _pool()
    X = X * [10, 1, 5, 0.1, 3] + [50, 0, -3, 2, 1]
    labeled = ~np.isnan(y)
    scaled = StandardScaler().fit(X[labeled]).transform(X)
    runs = [ActiveLearningSelector(model, method=method, batch_size=5, random_state=0).query(
        rows, y, return_utilities=True)
        for model, rows in ((make_pipeline(StandardScaler(), _model()), X), (_model(), scaled))]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_allclose(runs[0][1], runs[1][1], rtol=1e-6, atol=1e-9)


def test_string_labels_and_custom_missing_label():
    X, y, y_true = _pool()
    names = np.array(["cat", "dog", "eel"], dtype=object)[y_true]
    names[np.isnan(y)] = "?"
    selector = ActiveLearningSelector(_model(), missing_label="?", batch_size=2)
    chosen = selector.query(X, names)
    assert (names[chosen] == "?").all()
    assert set(selector.estimator_.classes_) == {"cat", "dog", "eel"}


def test_subsample_tracks_exact_ranking():
    X, y, _ = _pool(n=400, n_labeled=40, d=6, seed=1)
    exact = ActiveLearningSelector(_model(), method="fi")
    exact.query(X, y)
    approx = ActiveLearningSelector(_model(), method="fi", subsample=0.3, random_state=0)
    approx.query(X, y)
    unl = np.isnan(y)
    rho = np.corrcoef(np.argsort(np.argsort(exact.utilities_[unl])),
                      np.argsort(np.argsort(approx.utilities_[unl])))[0, 1]
    assert rho > 0.5


def test_subsample_computes_exact_fi_on_alpha_of_the_pool(monkeypatch):
    """Under subsample, FI is computed for ceil(alpha * n_pool) candidates only, against a random
    alpha of the labeled rows, and equals Algorithm 2 on exactly those pairs."""
    from skinfluence import active

    X, y, _ = _pool(n=100, n_labeled=40, n_classes=3, d=4, seed=2)
    monkeypatch.setattr(active, "SUBSAMPLE_MIN_LABELED", 5)
    seen = {}

    def factors(objective, solver, rows=None):
        seen["rows"] = rows
        return local_influence_factors(objective, solver, rows=rows)

    def scorer(selector, X_lab, y_lab, w_lab, X_cand, rng):
        seen["X_cand"] = X_cand
        seen["scores"] = fi_scorer(selector, X_lab, y_lab, w_lab, X_cand, rng)
        return seen["scores"]

    local_influence_factors, fi_scorer = active.local_influence_factors, active._SCORERS["fi"]
    monkeypatch.setattr(active, "local_influence_factors", factors)
    monkeypatch.setitem(active._SCORERS, "fi", scorer)
    selector = ActiveLearningSelector(_model(), method="fi", subsample=0.25, random_state=0)
    selector.query(X, y)
    assert len(seen["X_cand"]) == 15  # ceil(0.25 * 60) of the 60 unlabeled rows
    assert len(seen["rows"]) == 10 and len(np.unique(seen["rows"])) == 10  # 0.25 * 40 labeled
    labeled = ~np.isnan(y)
    X_lab, y_lab = X[labeled], y[labeled].astype(int)
    pairs = _algorithm_2(selector.estimator_, X_lab, y_lab, seen["X_cand"])[:, seen["rows"]]
    np.testing.assert_allclose(seen["scores"], trim_mean(pairs, 0.1, axis=1), rtol=1e-8)


def test_bad_input():
    X, y, _ = _pool()
    labeled = np.flatnonzero(~np.isnan(y))
    selector = ActiveLearningSelector(_model())
    with pytest.raises(ValueError, match="labeled rows"):
        selector.query(X, y, candidates=labeled[:2])
    with pytest.warns(UserWarning, match="exceeds"):
        assert len(selector.query(X, y, batch_size=1000)) == np.isnan(y).sum()
    with pytest.raises(ValueError, match="repeated"):
        selector.query(X, y, candidates=np.flatnonzero(np.isnan(y))[[0, 0]])
    with pytest.raises(ValueError, match="No classifier"):
        ActiveLearningSelector().query(X, y)
    with pytest.raises(ValueError, match="method"):
        ActiveLearningSelector(_model(), method="nope").query(X, y)
    with pytest.raises(ValueError, match="subsample"):
        ActiveLearningSelector(_model(), subsample=1.5).query(X, y)
    with pytest.raises(ValueError, match="Every row"):
        selector.query(X, np.nan_to_num(y))
    with pytest.raises(ValueError, match="Ridge is not a classifier"):
        ActiveLearningSelector(Ridge(), method="bald").query(X, y)
    assert len(ActiveLearningSelector(Ridge(), method="random").query(X, y)) == 1


def test_clone_and_params():
    selector = ActiveLearningSelector(_model(), method="iv", batch_size=4, subsample=0.2)
    twin = clone(selector)
    assert twin.get_params()["batch_size"] == 4 and twin.method == "iv"
    assert not hasattr(twin, "estimator_")


# ------------------------------------------------------------ networks (skorch)
def _skorch_net(dropout):
    skorch = pytest.importorskip("skorch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(),
                                            torch.nn.Dropout(dropout))
            self.head = torch.nn.Linear(16, 3)

        def forward(self, x):
            return self.head(self.body(x))

    return skorch.NeuralNetClassifier(
        Net, criterion=torch.nn.CrossEntropyLoss, max_epochs=30, lr=0.05,
        optimizer__weight_decay=1e-3, train_split=None, verbose=0,
        callbacks=[("seed", skorch.callbacks.Initializer("*", lambda t: t))])


@pytest.mark.filterwarnings("ignore:.*does not look converged")
def test_skorch_last_layer_fi_and_mc_dropout_bald():
    X, y, _ = _pool()
    X = X.astype(np.float32)
    torch.manual_seed(0)
    fi = ActiveLearningSelector(_skorch_net(0.3), method="fi", batch_size=3)
    chosen = fi.query(X, y)
    assert fi._params() == "last" and np.isnan(y[chosen]).all()
    assert np.isfinite(fi.utilities_[np.isnan(y)]).all() and np.nanmax(fi.utilities_) > 0
    bald = ActiveLearningSelector(_skorch_net(0.3), method="bald", mc_samples=30,
                                  random_state=0)
    bald.query(X, y)
    # dropout masks differ between draws, so the mutual information is positive somewhere
    assert np.nanmin(bald.utilities_) >= -1e-7 and np.nanmax(bald.utilities_) > 1e-4
    # the module's train/eval mode is restored, dropout layers included
    assert len({m.training for m in bald.estimator_.module_.modules()}) == 1
    # random_state seeds the net's training too: the same query twice, torch's generator moved
    again = ActiveLearningSelector(_skorch_net(0.3), method="bald", mc_samples=30,
                                   random_state=0)
    torch.manual_seed(123)
    again.query(X, y)
    np.testing.assert_array_equal(again.utilities_, bald.utilities_)


# ------------------------------------------------------------ the simulated loop
def test_active_learning_curve():
    X, _, y_true = _pool(n=120)
    selector = ActiveLearningSelector(_model(), method="fi", batch_size=5, random_state=0)
    curve = active_learning_curve(selector, X[:90], y_true[:90], X[90:], y_true[90:],
                                  n_initial=10, n_rounds=3, random_state=0)
    np.testing.assert_array_equal(curve.n_labeled, [10, 15, 20, 25])
    assert curve.scores.shape == (4,) and ((0 <= curve.scores) & (curve.scores <= 1)).all()
    assert curve.query_times.shape == (3,) and curve.queried.shape == (3, 5)
    picked = np.concatenate([curve.initial, curve.queried.ravel()])
    assert len(set(picked)) == len(picked)
    assert curve.area == pytest.approx(learning_curve_area(curve.n_labeled, curve.scores))


def test_active_learning_curve_edge_cases():
    X, _, y_true = _pool(n=60)
    selector = ActiveLearningSelector(_model(), method="uncertainty", batch_size=1)
    # one initial row and no query: the final rows hold one class, scored NaN like a round
    curve = active_learning_curve(selector, X[:40], y_true[:40], X[40:], y_true[40:],
                                  n_initial=1, n_rounds=0, random_state=0)
    assert curve.n_labeled.tolist() == [1] and np.isnan(curve.scores).all()
    # the oracle's labels include the selector's missing_label: refused, not hidden
    with pytest.raises(ValueError, match="y_pool holds the selector's missing_label=0"):
        active_learning_curve(selector.set_params(missing_label=0), X[:40], y_true[:40], X[40:],
                              y_true[40:], n_initial=5, n_rounds=1)


def test_learning_curve_area_and_plot():
    assert learning_curve_area([0, 10, 20], [0.5, 0.7, 0.7]) == pytest.approx(0.65)
    import matplotlib

    matplotlib.use("Agg")
    runs = [{"n_labeled": np.array([0, 10]), "scores": np.array([0.5, 0.6]), "area": 0.55}] * 2
    ax = plot_learning_curves({"fi": runs, "random": runs[0]})
    assert len(ax.get_lines()) == 2 and "area 55.0" in ax.get_legend().get_texts()[0].get_text()


def test_modal_query_strategy():
    X, y, y_true = _pool()
    labeled = ~np.isnan(y)

    class Learner:  # the attributes modAL's ActiveLearner exposes to a query strategy
        estimator = _model()
        X_training, y_training = X[labeled], y_true[labeled]

    Learner.estimator.fit(Learner.X_training, Learner.y_training)
    chosen, utilities = influence_sampling(Learner(), X[~labeled], n_instances=4, method="fi")
    assert chosen.shape == (4,) and len(set(chosen)) == 4
    assert utilities.shape == (4,) and (np.diff(utilities) <= 0).all()
    assert chosen.min() >= 0 and chosen.max() < (~labeled).sum()
