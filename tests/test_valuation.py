"""Retraining-based valuation against exact enumeration and leave-one-out retraining."""

import math
import os

import numpy as np
import pytest
from scipy.stats import betabinom
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skinfluence
from skinfluence.valuation import valuation_scores
from skinfluence.valuation._downsampling import target_values
from skinfluence.valuation._semivalues import BETA
from skinfluence.valuation._utility import fit_and_score

N = 10  # rows of the enumerated problem: 2**10 subsets


@pytest.fixture(scope="module")
def small():
    """Ten scaled breast-cancer rows (two labels flipped) and 100 validation rows."""
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    rows = np.random.RandomState(0).choice(200, N, replace=False)
    y_train = y[rows].copy()
    y_train[:2] = 1 - y_train[:2]
    return X[rows, :5], y_train, X[200:300, :5], y[200:300]


class TableMemory:
    """A ``memory`` that answers every utility from a table of all subsets' utilities."""

    def __init__(self, utility):
        self.utility = utility

    def cache(self, func):
        del func

        def lookup(*args):
            return self.utility[int(np.sum(args[-1] << np.arange(N)))]
        return lookup


def mask_of(bits):
    return np.array([(bits >> i) & 1 for i in range(N)], bool)


def by_enumeration(utility, subset_weights):
    """``sum over S not containing i of weight(|S|) (U(S + i) - U(S))`` for every row i."""
    values = np.zeros(N)
    for i in range(N):
        without = np.array([b for b in range(2**N) if not (b >> i) & 1])
        sizes = np.array([int(b).bit_count() for b in without])
        values[i] = np.sum(np.take(subset_weights, sizes)
                           * (utility[without | 1 << i] - utility[without]))
    return values


SHAPLEY_WEIGHTS = [1 / N / math.comb(N - 1, k) for k in range(N)]


@pytest.fixture(scope="module")
def exact(small):
    """Exact Shapley, Banzhaf and Beta-Shapley values by enumerating every subset."""
    model = LogisticRegression()
    utility = np.array([fit_and_score(model, *small, None, mask_of(b)) for b in range(2**N)])
    alpha, beta = BETA
    beta_weights = [betabinom.pmf(k, N - 1, beta, alpha) / math.comb(N - 1, k)
                    for k in range(N)]
    values = {"shapley": by_enumeration(utility, SHAPLEY_WEIGHTS),
              "banzhaf": by_enumeration(utility, [1 / 2 ** (N - 1)] * N),
              "beta": by_enumeration(utility, beta_weights)}
    return values, utility


def test_exact_shapley_is_efficient(exact):
    values, utility = exact
    # efficiency: the Shapley values share out U(all rows) - U(no row)
    assert values["shapley"].sum() == pytest.approx(utility[-1] - utility[0], abs=1e-12)
    assert values["banzhaf"][:2].max() < np.median(values["banzhaf"])  # flipped labels hurt


@pytest.mark.parametrize("method, min_r", [("shapley", 0.99), ("banzhaf", 0.99),
                                           ("beta", 0.95)])
def test_monte_carlo_reaches_exact_values(small, exact, method, min_r):
    # the utilities were all computed by the enumeration: look them up instead of refitting
    result = skinfluence.data_values(LogisticRegression(), *small, method=method, budget=2000,
                                     random_state=0, memory=TableMemory(exact[1]))
    truth = exact[0][method]
    assert result.n_evaluations <= 2000
    assert np.corrcoef(result.values, truth)[0, 1] >= min_r
    z = np.abs(result.values - truth) / result.stderr
    assert np.mean(z < 2) >= 0.8 and z.max() < 4  # the standard errors cover the error
    frame = result.to_frame()
    assert list(frame.columns) == ["value", "stderr"] and len(frame) == N


def test_tolerance_stops_early(small, exact):
    result = skinfluence.data_values(LogisticRegression(), *small, budget=100_000,
                                     tolerance=0.01, random_state=0, memory=TableMemory(exact[1]))
    assert result.converged and result.stderr.max() < 0.01
    assert 1000 < result.n_evaluations < 100_000


FITS = []


class CountingRidge(Ridge):
    """A ridge model that records its fits (module level, so that joblib can hash it)."""

    def fit(self, X, y, sample_weight=None):
        FITS.append(len(X))
        return super().fit(X, y, sample_weight)


def test_memory_resumes_without_refitting(small, tmp_path, capsys):
    X, y, X_val, y_val = small
    y, y_val = y.astype(float), y_val.astype(float)
    first = skinfluence.data_values(CountingRidge(), X, y, X_val, y_val, budget=64,
                                    random_state=1, memory=str(tmp_path), verbose=1)
    assert len(FITS) > 0 and "banzhaf values" in capsys.readouterr().err  # progress bar
    FITS.clear()
    again = skinfluence.data_values(CountingRidge(), X, y, X_val, y_val, budget=64,
                                    random_state=1, memory=str(tmp_path))
    assert FITS == []  # every utility came from the cache
    np.testing.assert_array_equal(first.values, again.values)


def _knn_utility(X, y, X_val, y_val, k, mask):
    if not mask.any():
        return 0.0
    rows = np.flatnonzero(mask)
    total = 0.0
    for x, label in zip(X_val, y_val):
        nearest = rows[np.argsort(np.linalg.norm(X[rows] - x, axis=1), kind="stable")[:k]]
        total += np.sum(y[nearest] == label) / k
    return total / len(X_val)


def test_knn_shapley_closed_form_equals_enumeration():
    rng = np.random.RandomState(1)
    X, y = rng.normal(size=(N, 3)), rng.randint(3, size=N)
    X_val, y_val = rng.normal(size=(15, 3)), rng.randint(3, size=15)
    k = 3
    utility = np.array([_knn_utility(X, y, X_val, y_val, k, mask_of(b)) for b in range(2**N)])
    exact = by_enumeration(utility, SHAPLEY_WEIGHTS)
    result = skinfluence.data_values(KNeighborsClassifier(n_neighbors=k), X, y, X_val, y_val,
                                     method="knn")
    np.testing.assert_allclose(result.values, exact, rtol=0, atol=1e-10)
    assert result.n_evaluations == 0 and result.values.sum() == pytest.approx(utility[-1])


def test_downsampling_matches_leave_one_out():
    X, y = load_diabetes(return_X_y=True)
    X_train, y_train, X_test, y_test = X[:150], y[:150], X[300:340], y[300:340]
    model = Ridge(alpha=0.1).fit(X_train, y_train)
    loo = skinfluence.leave_one_out(model, X_train, y_train, X_test, y_test)
    result = skinfluence.downsampling_influence(Ridge(alpha=0.1), X_train, y_train, X_test,
                                                y_test, random_state=0)
    assert result.effects.shape == result.stderr.shape == (150, 40)
    assert np.corrcoef(result.effects.ravel(), loo.ravel())[0, 1] >= 0.9
    # a row's own loss rises most when it is left out: memorisation is positive on average
    assert result.memorization.mean() > 0
    assert np.mean(result.memorization > 2 * result.memorization_stderr) > 0.5


def test_downsampling_prediction_of_a_binary_model_without_decision_function():
    """The log-odds from predict_proba: for naive Bayes, the joint log-likelihoods' difference."""
    X, y = load_breast_cancer(return_X_y=True)
    model = GaussianNB().fit(X[:100], y[:100])
    joint = model.predict_joint_log_proba(X[100:120])
    np.testing.assert_allclose(target_values(model, X[100:120], None, "prediction"),
                               joint[:, 1] - joint[:, 0], rtol=1e-6)
    result = skinfluence.downsampling_influence(GaussianNB(), X[:60], y[:60], X[100:103],
                                                target="prediction", n_models=40,
                                                random_state=0)
    assert result.effects.shape == (60, 3) and np.isfinite(result.effects).all()


@pytest.mark.parametrize("model, three_classes", [
    (Ridge(alpha=3.0), False),
    (LogisticRegression(C=0.1, tol=1e-12, solver="newton-cholesky"), False),
    (LogisticRegression(C=0.1, tol=1e-12, solver="newton-cholesky"), True),
])
def test_representer_points_reconstruct_the_prediction(model, three_classes):
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    if three_classes:
        y = np.digitize(X[:, 0], [-0.5, 0.5])
    model.fit(X[:300], y[:300])
    rep = skinfluence.representer_points(model, X[:300], y[:300], X[300:320], y[300:320])
    if isinstance(model, Ridge):
        output = model.predict(X[300:320])
    else:
        output = model.decision_function(X[300:320])
    if three_classes:
        output = output[np.arange(20), y[300:320]]
    np.testing.assert_allclose(rep.prediction, output, atol=1e-8)
    reconstructed = rep.contributions.sum(axis=0) + rep.intercept
    np.testing.assert_allclose(reconstructed, output, atol=1e-6)
    assert np.abs(rep.residual).max() < 1e-6
    assert np.abs(rep.contributions).max() > 1e-2  # not trivially zero


def test_representer_points_of_a_pipeline_decompose_its_output():
    """The test rows go through the Pipeline's scaler, as the Pipeline's own output does."""
    X, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(solver="newton-cholesky", tol=1e-12))
    pipe.fit(X[:300], y[:300])
    rep = skinfluence.representer_points(pipe, X[:300], y[:300], X[300:320])
    np.testing.assert_allclose(rep.prediction, pipe.decision_function(X[300:320]), atol=1e-8)
    np.testing.assert_allclose(rep.contributions.sum(axis=0) + rep.intercept, rep.prediction,
                               atol=1e-6)


def test_representer_points_of_a_network_last_layer():
    torch = pytest.importorskip("torch")
    X, y = load_breast_cancer(return_X_y=True)
    X = torch.as_tensor((X - X.mean(0)) / X.std(0))[:, :6]
    y = torch.as_tensor(y, dtype=torch.float64)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    net = net.double()
    decay = 0.05
    head = net[2]
    optimizer = torch.optim.LBFGS(head.parameters(), tolerance_grad=1e-12, tolerance_change=0,
                                  max_iter=2000, history_size=50,
                                  line_search_fn="strong_wolfe")

    def closure():  # the last layer to a stationary point of mean loss + 0.5 decay ||theta||^2
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(X[:200])[:, 0], y[:200])
        loss = loss + 0.5 * decay * sum((p**2).sum() for p in head.parameters())
        loss.backward()
        return loss

    optimizer.step(closure)
    model = skinfluence.TorchModel(net, loss="bce_with_logits", weight_decay=decay,
                                   params="last")
    rep = skinfluence.representer_points(model, X[:200].numpy(), y[:200].numpy(),
                                         X[200:210].numpy())
    with torch.no_grad():
        logits = net(X[200:210])[:, 0].numpy()
    np.testing.assert_allclose(rep.contributions.sum(axis=0), logits, atol=1e-6)
    assert np.abs(rep.intercept).max() == 0  # weight decay penalises the bias too


def test_representer_points_need_an_l2_penalty():
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="no L2 penalty"):
        skinfluence.representer_points(LinearRegression().fit(X, y), X, y, X[:3])


def test_flipped_labels_get_low_values():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    X_train, y_train = X[:40, :5], y[:40].copy()
    y_train[:6] = 1 - y_train[:6]
    X_val, y_val = X[200:400, :5], y[200:400]
    banzhaf = skinfluence.data_values(LogisticRegression(), X_train, y_train, X_val, y_val,
                                      budget=256, random_state=0).values
    downsampling = skinfluence.downsampling_influence(
        LogisticRegression(), X_train, y_train, X_val, y_val, n_models=128,
        random_state=0).effects.mean(axis=1)
    knn = valuation_scores(KNeighborsClassifier(n_neighbors=5), X_train, y_train, X_val, y_val,
                           method="knn")
    assert banzhaf[:6].mean() < 0 < banzhaf[6:].mean()
    for scores in (banzhaf, downsampling, knn):  # positive = helps
        assert scores.shape == (40,) and scores[:6].mean() < scores[6:].mean()


def test_bad_input():
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(TypeError, match="KNeighborsClassifier"):
        skinfluence.data_values(Ridge(), X[:20], y[:20], X[20:30], y[20:30], method="knn")
    with pytest.raises(ValueError, match="truncation"):
        skinfluence.data_values(Ridge(), X[:20], y[:20], X[20:30], y[20:30], truncation=0.01)
    with pytest.raises(ValueError, match="method"):
        skinfluence.data_values(Ridge(), X[:20], y[:20], X[20:30], y[20:30], method="loo")
    with pytest.raises(ValueError, match="at least 41"):
        skinfluence.data_values(Ridge(), X[:20], y[:20], X[20:30], y[20:30], method="shapley",
                                budget=30)
    with pytest.raises(ValueError, match="method"):
        valuation_scores(Ridge(), X[:20], y[:20], X[20:30], y[20:30], method="loo")
    # a subset holding two of three classes: its model has no column for the third
    rng = np.random.RandomState(1)
    X3, y3 = rng.randn(12, 3), np.arange(12) % 3
    with pytest.raises(ValueError, match="rows holding 2 of the 3 classes"):
        skinfluence.data_values(LogisticRegression(), X3, y3, X3, y3, method="banzhaf",
                                scoring="neg_log_loss", budget=100, random_state=0)


def test_dask_cluster_gives_the_local_values(small):
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    local = skinfluence.data_values(LogisticRegression(), *small, budget=256, random_state=3)
    # forked workers inherit the imported library: seconds to start instead of half a minute
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, parallel_config(backend="dask"), \
            distributed.get_task_stream(client) as stream:
        remote = skinfluence.data_values(LogisticRegression(), *small, budget=256,
                                         random_state=3, n_jobs=2)
        workers = client.run(os.getpid)
    assert len(set(workers.values()) - {os.getpid()}) == 2  # two separate worker processes
    assert len(stream.data) >= 2  # the utility evaluations ran on the cluster
    np.testing.assert_allclose(remote.values, local.values, rtol=0, atol=1e-12)
    assert remote.n_evaluations == local.n_evaluations == 256
