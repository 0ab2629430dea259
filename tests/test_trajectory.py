"""Training-trajectory influence: TracIn and f-INE against explicit loops and repeated retraining."""

import itertools

import numpy as np
import pytest
import torch
from scipy.special import ndtri
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import scale

from skinfluence import (
    InfluenceTrimmer,
    TorchModel,
    TrajectoryInfluence,
    make_objective,
    repeated_leave_one_out,
)
from skinfluence.backend.trajectory import record_partial_fit, record_torch
from skinfluence.influence.trajectory import gaussian_mu, null_quantile, tracin
from skinfluence.metrics import consistency_score, mean_coefficient_of_variation

skorch = pytest.importorskip("skorch")
NeuralNetClassifier = skorch.NeuralNetClassifier
from skinfluence.backend.skorch_recorder import TrajectoryRecorder


class Tiny(torch.nn.Module):
    def __init__(self, hidden=4):
        super().__init__()
        self.body = torch.nn.Linear(3, hidden, dtype=torch.float64)
        self.head = torch.nn.Linear(hidden, 2, dtype=torch.float64)

    def forward(self, X):
        return self.head(torch.tanh(self.body(X)))


def _tiny_net(module=Tiny, **kw):
    # a module class: each training run initialises afresh from its seed
    params = {"criterion": torch.nn.CrossEntropyLoss, "optimizer": torch.optim.SGD, "lr": 0.3,
              "batch_size": 4, "max_epochs": 5, "train_split": None, "verbose": 0,
              "iterator_train__shuffle": True}
    return NeuralNetClassifier(module, **{**params, **kw})


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(14, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=14) > 0).astype(np.int64)
    X_test = rng.normal(size=(3, 3))
    y_test = (X_test[:, 0] > 0).astype(np.int64)
    return X, y, X_test, y_test


def _explicit_grad(module, theta, x, y):
    """Gradient of one row's cross-entropy by plain autograd at flattened parameters theta."""
    torch.nn.utils.vector_to_parameters(theta.clone(), module.parameters())
    loss = torch.nn.functional.cross_entropy(module(torch.as_tensor(x)[None]),
                                             torch.as_tensor([int(y)]))
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, module.parameters())])


def _explicit_mu(O, O_prime):
    """Algorithm 2 with plain loops over thresholds (observed values and midpoints)."""
    T = len(O)
    values = sorted(list(O) + list(O_prime))
    thresholds = sorted(values + [(a + b) / 2 for a, b in itertools.pairwise(values)])
    clip = 1 / (2 * T)
    best = 0.0
    for th in thresholds:
        alpha = min(max(sum(o >= th for o in O) / T, clip), 1 - clip)
        beta = min(max(sum(o <= th for o in O_prime) / T, clip), 1 - clip)
        mu = ndtri(1 - alpha) - ndtri(beta)
        if abs(mu) > abs(best):
            best = mu
    return best


def _explicit_fine(inf, X, y, pairs, twin_gradients):
    """Algorithm 1 for each (row i, test row) pair (S = {i}), then Algorithm 2: the paper's -mu.

    ``O_hat`` pairs the twin's test gradient with the main run's row gradients (line 20,
    ``"test"``) or with the twin's (line 13, ``"all"``).
    """
    main, aux = inf.trajectories_[0], inf.auxiliary_trajectories_[0]
    net = clone(inf.estimator_).initialize().module_
    # every row's gradient at every checkpoint of both runs, by plain autograd
    rows = [[_explicit_grad(net, theta, x, t) for x, t in zip(X, y)] for theta in main.thetas]
    rows_hat = [[_explicit_grad(net, theta, x, t) for x, t in zip(X, y)] for theta in aux.thetas]
    out = []
    for i, (x_test, y_test) in pairs:
        O, O_prime, O_hat = [], [], []
        for t, (b, b_prime) in enumerate(inf.batches_[0]):
            B = len(b) - 1
            batch = [j for j in b if j != i][:B] + [i]                  # B_t u S
            batch_prime = [j for j in b_prime if j != i][:B]            # B'_t
            g_test = _explicit_grad(net, main.thetas[t], x_test, y_test)
            g_test_hat = _explicit_grad(net, aux.thetas[t], x_test, y_test)
            hat_rows = rows[t] if twin_gradients == "test" else rows_hat[t]
            O.append(np.mean([float(g_test @ rows[t][j]) for j in batch]))
            O_prime.append(np.mean([float(g_test @ rows[t][j]) for j in batch_prime]))
            O_hat.append(np.mean([float(g_test_hat @ hat_rows[j]) for j in batch]))
        O_tilde = np.subtract(O, O_hat)
        O_tilde_prime = np.subtract(O_prime, O_hat)
        out.append(-_explicit_mu(O_tilde, O_tilde_prime))
    return np.array(out)


@pytest.mark.parametrize("twin_gradients", ["test", "all"])
def test_fine_equals_explicit_loop_of_algorithms_1_and_2(tiny, twin_gradients):
    X, y, X_test, y_test = tiny
    net = _tiny_net()
    inf = TrajectoryInfluence(net, method="fine", batch_size=3, twin_gradients=twin_gradients,
                              device="cpu", random_state=0).fit(X, y)
    assert len(inf.trajectories_[0]) == 5
    assert not np.allclose(inf.trajectories_[0].thetas, inf.auxiliary_trajectories_[0].thetas)
    ours = inf.influence(X_test, y_test)
    pairs = list(itertools.product(range(len(X)), zip(X_test, y_test)))
    explicit = _explicit_fine(inf, X, y, pairs, twin_gradients).reshape(ours.shape)
    np.testing.assert_allclose(ours, explicit, atol=1e-10)
    assert len(np.unique(np.round(ours, 8))) > 3
    own = _explicit_fine(inf, X, y, [(i, (X[i], y[i])) for i in range(len(X))], twin_gradients)
    np.testing.assert_allclose(inf.self_influence(), own, atol=1e-10)
    np.testing.assert_allclose(inf.mu_, -own, atol=1e-10)


def test_tracin_equals_explicit_sum_over_checkpoints(tiny):
    X, y, X_test, y_test = tiny
    net = _tiny_net(optimizer=torch.optim.Adam, lr=0.05)
    inf = TrajectoryInfluence(net, method="tracin", device="cpu", random_state=1).fit(X, y)
    traj = inf.trajectories_[0]
    np.testing.assert_allclose(traj.learning_rates, 0.05)
    expected = np.zeros((len(X), len(X_test)))
    expected_cos = np.zeros_like(expected)
    expected_self = np.zeros(len(X))
    module = clone(net).initialize().module_
    for theta, lr in traj:
        G = torch.stack([_explicit_grad(module, theta, X[j], y[j]) for j in range(len(X))])
        T = torch.stack([_explicit_grad(module, theta, a, b) for a, b in zip(X_test, y_test)])
        expected += lr * (G @ T.T).numpy()
        cos = (G / G.norm(dim=1, keepdim=True)) @ (T / T.norm(dim=1, keepdim=True)).T
        expected_cos += lr * cos.numpy()
        expected_self += lr * (G * G).sum(1).numpy()
    np.testing.assert_allclose(inf.influence(X_test, y_test), expected, atol=1e-10)
    np.testing.assert_allclose(inf.self_influence(), expected_self, atol=1e-10)
    cosine = clone(inf).set_params(similarity="cosine").fit(X, y)
    np.testing.assert_allclose(cosine.influence(X_test, y_test), expected_cos, atol=1e-10)
    with pytest.raises(ValueError, match="cosine"):
        cosine.self_influence()
    # the last checkpoint is the trained model
    final = torch.nn.utils.parameters_to_vector(inf.estimator_.module_.parameters())
    np.testing.assert_allclose(traj.thetas[-1], final.detach(), atol=0)


def test_sign_agrees_with_repeated_retraining_on_sgd_logistic(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    # small constant steps: the SGD noise (~ sqrt(eta)) does not drown the 1/n removal effects
    sgd = SGDClassifier(loss="log_loss", alpha=1e-3, learning_rate="constant", eta0=0.002,
                        max_iter=40, tol=None)
    rows = np.random.default_rng(0).choice(len(Xtr), 40, replace=False)
    truth = repeated_leave_one_out(sgd, Xtr, ytr, Xte, yte, indices=rows, n_repeats=10,
                                   target="mean_loss", random_state=0)
    assert truth.effect.shape == truth.stderr.shape == truth.mu.shape == (40,)
    assert (truth.stderr > 0).all()
    # measured: Spearman 0.65 (TracIn), 0.68 (f-INE); Definition 2.1's mu 0.97
    for method in ("tracin", "fine"):
        inf = TrajectoryInfluence(sgd, method=method, device="cpu", random_state=0)
        estimate = inf.fit(Xtr, ytr).influence(Xte, yte, target="mean_loss")[rows]
        rho, p = spearmanr(truth.effect, estimate)
        assert rho > 0.4 and p < 0.01, (method, rho, p)
    assert spearmanr(truth.effect, truth.mu)[0] > 0.8


def test_gaussian_mu_clipping_is_symmetric_and_null_is_calibrated():
    T = 30
    low = torch.arange(T, dtype=torch.float64)[:, None]
    bound = 2 * ndtri(1 - 1 / (2 * T))
    # P above Q: the paper's mu is negative (a helpful row); swapped, the same bound positive
    assert float(gaussian_mu(low + 100, low)[0]) == pytest.approx(-bound, abs=1e-12)
    assert float(gaussian_mu(low, low + 100)[0]) == pytest.approx(bound, abs=1e-12)
    assert np.isfinite(float(gaussian_mu(low, low)[0]))
    # with no effect |mu| is far from 0 at this T: median ~0.75, 95% quantile ~1.11 (T = 60)
    assert null_quantile(60) == pytest.approx(1.11, abs=0.05)
    assert null_quantile(60, level=0.5) == pytest.approx(0.75, abs=0.05)
    assert null_quantile(30) == pytest.approx(1.29, abs=0.05)
    assert null_quantile(30, n_runs=4) < null_quantile(30) * 0.7


def test_fine_flags_significance_against_the_null_quantile(tiny):
    X, y, _, _ = tiny
    inf = TrajectoryInfluence(_tiny_net(max_epochs=8), method="fine", device="cpu",
                              random_state=0).fit(X, y)
    assert inf.null_quantile_ == null_quantile(8)
    np.testing.assert_array_equal(inf.significant_, np.abs(inf.mu_) > inf.null_quantile_)


def test_consistency_and_variation_against_numpy():
    rng = np.random.default_rng(0)
    runs = rng.normal(size=(4, 50)) + np.linspace(0, 3, 50)
    tops = [set(np.argsort(-r)[:10]) for r in runs]
    jaccard = [len(a & b) / len(a | b) for a, b in itertools.combinations(tops, 2)]
    assert consistency_score(runs, top=0.2) == pytest.approx(np.mean(jaccard))
    assert consistency_score(np.tile(runs[:1], (3, 1))) == 1.0
    cv = np.mean(runs.std(0) / np.abs(runs.mean(0)))
    assert mean_coefficient_of_variation(runs) == pytest.approx(cv)
    best = np.argsort(-runs.mean(0))[:5]
    cv_top = np.mean(runs[:, best].std(0) / np.abs(runs[:, best].mean(0)))
    assert mean_coefficient_of_variation(runs, top=0.1) == pytest.approx(cv_top)
    with pytest.raises(ValueError, match="at least two"):
        consistency_score(runs[:1])


def test_recorder_every_k_steps_and_record_torch(tiny):
    X, y, _, _ = tiny
    recorder = TrajectoryRecorder(every=3)
    net = _tiny_net(callbacks=[recorder]).fit(X, y)  # 4 steps per epoch, 20 steps
    assert len(recorder.trajectory_) == 6
    np.testing.assert_allclose(recorder.trajectory_.learning_rates, 0.3)
    assert not torch.equal(recorder.trajectory_.thetas[-1], torch.nn.utils.parameters_to_vector(
        net.module_.parameters()).detach())  # step 18 of 20
    model = TorchModel(torch.nn.Linear(3, 2).double(), loss="cross_entropy")
    trained, traj = record_torch(model, X, y, epochs=4, batch_size=5, lr=0.1, random_state=0)
    assert len(traj) == 4
    final = torch.nn.utils.parameters_to_vector(trained.module.parameters()).detach()
    np.testing.assert_allclose(traj.thetas[-1], final)
    assert not torch.equal(traj.thetas[0], final)
    objective = make_objective(trained, X, y, device="cpu", check_convergence=False)
    scores = tracin(objective, traj)
    assert scores.shape == (len(X), 1) and (scores >= 0).all()
    with pytest.raises(ValueError, match="checkpoints"):
        TrajectoryRecorder(every=0).initialize()


def test_partial_fit_learning_rates_and_errors(breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    sgd = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.02, max_iter=3,
                        tol=None)
    inf = TrajectoryInfluence(sgd, random_state=0).fit(Xtr, ytr)
    np.testing.assert_allclose(inf.trajectories_[0].learning_rates, 0.02)
    assert inf.score(Xtr, ytr) > 0.9
    assert inf.predict_proba(Xtr).shape == (len(Xtr), 2)
    self_tracin = inf.self_influence()
    assert self_tracin.shape == (len(Xtr),) and (self_tracin >= 0).all()
    fine = TrajectoryInfluence(sgd, method="fine", random_state=0).fit(Xtr, ytr)
    np.testing.assert_array_equal(fine.self_influence(), -fine.mu_)
    assert fine.null_quantile_ == null_quantile(3)
    optimal = TrajectoryInfluence(clone(sgd).set_params(learning_rate="optimal", alpha=1e-2),
                                  random_state=0).fit(Xtr, ytr)
    rates = optimal.trajectories_[0].learning_rates
    assert (np.diff(rates) < 0).all()
    # eta = 1 / (alpha (t0 + t - 1)), t0 = alpha^-3/4 / alpha: mean over the first epoch
    t = np.arange(1, len(Xtr) + 1)
    expected = np.mean(1 / (1e-2 * (1e-2 ** -0.75 + t - 1)))
    assert rates[0] == pytest.approx(expected)
    with pytest.raises(ValueError, match="checkpoints='epoch'"):
        TrajectoryInfluence(sgd, checkpoints=5).fit(Xtr, ytr)
    with pytest.raises(TypeError, match="partial_fit"):
        TrajectoryInfluence(LogisticRegression()).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="method"):
        TrajectoryInfluence(sgd, method="trak").fit(Xtr, ytr)
    with pytest.raises(ValueError, match="twin"):  # no shuffling: the twin equals the main run
        TrajectoryInfluence(clone(sgd).set_params(shuffle=False), method="fine").fit(Xtr, ytr)


def _mlp_layout(model):
    """Independent flattening: per layer the weight as torch's (out, in), then the bias."""
    return np.concatenate([np.concatenate([W.T.ravel(), b])
                           for W, b in zip(model.coefs_, model.intercepts_)])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_partial_fit_records_mlp_checkpoints_and_learning_rates(breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    Xtr = scale(Xtr)
    adam = MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, batch_size=50, random_state=3)
    trained, trajectory = record_partial_fit(adam, Xtr, ytr, random_state=1)
    assert len(trajectory) == 4 and trained.t_ == 4 * len(Xtr)
    theta = make_objective(trained, Xtr, ytr, check_convergence=False).theta
    np.testing.assert_allclose(trajectory.thetas[-1].numpy(), theta.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(trajectory.thetas[-1].numpy(), _mlp_layout(trained), atol=1e-12)
    np.testing.assert_allclose(trajectory.learning_rates, 1e-3)  # Adam: the base rate
    assert trained.random_state == 1 and not torch.equal(trajectory.thetas[0],
                                                         trajectory.thetas[1])
    # without shuffling the epochs are exactly those of fit(max_iter=4)
    plain = clone(adam).set_params(shuffle=False, random_state=1, tol=0, n_iter_no_change=10)
    fitted = plain.fit(Xtr, ytr)
    replayed = record_partial_fit(plain, Xtr, ytr)[1]
    np.testing.assert_allclose(replayed.thetas[-1].numpy(), _mlp_layout(fitted), atol=1e-12)
    # solver="sgd", invscaling: eta_init / (t + 1)^power_t for t rows seen before the epoch
    y_reg = Xtr[:, 0] - Xtr[:, 1]
    sgd = MLPRegressor(hidden_layer_sizes=(3,), solver="sgd", learning_rate="invscaling",
                       learning_rate_init=0.1, power_t=0.5, max_iter=3, random_state=0)
    trained, trajectory = record_partial_fit(sgd, Xtr, y_reg)
    expected = 0.1 / (np.arange(3) * len(Xtr) + 1) ** 0.5
    np.testing.assert_allclose(trajectory.learning_rates, expected, rtol=1e-12)
    theta = make_objective(trained, Xtr, y_reg, check_convergence=False).theta
    np.testing.assert_allclose(trajectory.thetas[-1].numpy(), theta.numpy(), rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="partial_fit"):
        TrajectoryInfluence(MLPClassifier(solver="lbfgs")).fit(Xtr, ytr)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_tracin_self_influence_finds_flipped_labels():
    X, y = load_breast_cancer(return_X_y=True)
    X = scale(X)
    rng = np.random.default_rng(0)
    flipped = np.zeros(len(y), dtype=bool)
    flipped[rng.choice(len(y), size=len(y) // 5, replace=False)] = True
    y_noisy = np.where(flipped, 1 - y, y)
    mlp = MLPClassifier(hidden_layer_sizes=(16,), solver="adam", max_iter=30, random_state=0)
    inf = TrajectoryInfluence(mlp, method="tracin", random_state=0).fit(X, y_noisy)
    assert len(inf.trajectories_[0]) == 30
    # measured 0.875 (the trained MLP's in-sample loss: 0.968)
    assert roc_auc_score(flipped, inf.self_influence()) > 0.8
    # f-INE reads the MLP's batch_size="auto" as min(200, n)
    small = clone(mlp).set_params(hidden_layer_sizes=(4,), max_iter=3)
    fine = TrajectoryInfluence(small, method="fine", random_state=0).fit(X, y_noisy)
    assert fine.batches_[0].shape == (3, 2, 201)
    trimmer = InfluenceTrimmer(small, method="tracin", budget=0.2, random_state=0).fit(X, y_noisy)
    assert trimmer.method_ == "tracin" and trimmer.scores_.shape == (len(X),)


class TinyFloat32(torch.nn.Module):
    """``Tiny`` in torch's default precision, as most users build their modules."""

    def __init__(self):
        super().__init__()
        self.body, self.head = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)

    def forward(self, X):
        return self.head(torch.tanh(self.body(X)))


def test_repeated_retraining_of_nets_float32_and_threads(tiny):
    """A float32 net retrains on its own precision's rows; threads sharing torch's generator
    give the serial seeds' results exactly."""
    from joblib import parallel_config

    X, y, X_test, y_test = tiny
    options = {"indices": [0, 3], "n_repeats": 3, "random_state": 0}
    single = _tiny_net(module=TinyFloat32)
    effect = repeated_leave_one_out(single, X.astype(np.float32), y, X_test.astype(np.float32),
                                    y_test, **options).effect
    assert effect.shape == (2, 3) and np.isfinite(effect).all() and np.abs(effect).max() > 0
    serial = repeated_leave_one_out(_tiny_net(), X, y, X_test, y_test, **options).effect
    with parallel_config(backend="threading"):
        threaded = repeated_leave_one_out(_tiny_net(), X, y, X_test, y_test, n_jobs=2,
                                          **options).effect
    np.testing.assert_array_equal(threaded, serial)


def test_influence_names_test_labels_outside_the_classes(tiny):
    X, y, X_test, _ = tiny
    fitted = TrajectoryInfluence(_tiny_net(), random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"y_test holds class indices \[2(\.0)?\] outside"):
        fitted.influence(X_test, [0, 1, 2])


@pytest.mark.parametrize("method", ["tracin", "fine"])
def test_fitted_trajectory_influence_survives_pickling(tiny, method):
    """The training objective is built from closures: a pickle round trip (or a joblib worker)
    rebuilds it and gives the same scores, for a partial_fit model and a skorch net."""
    import pickle

    X, y, X_test, y_test = tiny
    sgd = SGDClassifier(loss="log_loss", max_iter=5, learning_rate="constant", eta0=0.01)
    for estimator in (sgd, _tiny_net()):
        fitted = TrajectoryInfluence(estimator, method=method, random_state=0).fit(X, y)
        restored = pickle.loads(pickle.dumps(fitted))
        np.testing.assert_array_equal(restored.self_influence(), fitted.self_influence())
        np.testing.assert_array_equal(restored.influence(X_test, y_test),
                                      fitted.influence(X_test, y_test))
