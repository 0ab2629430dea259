"""MTIF: block-arrow algebra against dense formulas, estimates against real retraining."""

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import InvalidParameterError
from torch.func import grad, hessian

from skinfluence.backend.block_arrow import BlockArrowSolver
from skinfluence.multitask import (
    MultitaskInfluence,
    MultitaskRidge,
    SharedBottomNetwork,
    leave_one_row_out,
    leave_one_task_out,
    make_multitask_regression,
    multitask_objective,
    plot_task_influence,
)


def split(K=6, d=10, n=60, seed=0, **kwargs):
    X, y, tasks, _ = make_multitask_regression(K, d, n, random_state=seed, **kwargs)
    return train_test_split(X, y, tasks, test_size=0.25, random_state=seed, stratify=tasks)


@pytest.fixture(scope="module")
def data():
    Xtr, Xva, ytr, yva, ttr, tva = split()
    return Xtr, ytr, ttr, Xva, yva, tva


def random_arrow(K=4, d=3, p=5, seed=0):
    """A positive definite block-arrow matrix: SPD task blocks and an SPD Schur complement."""
    gen = torch.Generator().manual_seed(seed)

    def spd(m):
        M = torch.randn(m, m, generator=gen, dtype=torch.float64)
        return M @ M.T + 0.5 * torch.eye(m, dtype=torch.float64)

    A = [spd(d) for _ in range(K)]
    B = [torch.randn(d, p, generator=gen, dtype=torch.float64) for _ in range(K)]
    D = spd(p) + sum(b.T @ torch.linalg.solve(a, b) for a, b in zip(A, B))
    H = torch.block_diag(*A, D)
    for k, b in enumerate(B):
        H[k * d:(k + 1) * d, K * d:] = b
        H[K * d:, k * d:(k + 1) * d] = b.T
    return H, A, B, D


@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_block_arrow_solve_equals_dense(damping):
    H, A, B, D = random_arrow()
    V = torch.randn(H.shape[0], 3, dtype=torch.float64)
    dense = torch.linalg.solve(H + damping * torch.eye(len(H), dtype=H.dtype), V)
    solver = BlockArrowSolver(torch.stack(A), torch.stack(B), D, damping=damping)
    assert torch.allclose(solver.solve(V), dense, atol=1e-10, rtol=0)
    assert torch.allclose(solver.solve(V[:, 0]), dense[:, 0], atol=1e-10, rtol=0)


def test_shared_influence_sign_of_equation_7():
    """d gamma / d sigma = -[H^-1 g]_gamma = N^-1 (H_{K+1,k} H_kk^-1 g_theta - g_gamma):
    the paper's (7) has a minus on its first term, which this test shows to be wrong."""
    K, d, p = 4, 3, 5
    H, A, B, D = random_arrow(K, d, p)
    k = 1
    g = torch.zeros(len(H), dtype=torch.float64)
    g[k * d:(k + 1) * d] = torch.randn(d, dtype=torch.float64)
    g[K * d:] = torch.randn(p, dtype=torch.float64)
    g_theta, g_gamma = g[k * d:(k + 1) * d], g[K * d:]
    dense = -torch.linalg.solve(H, g)[K * d:]
    N = D - sum(Bj.T @ torch.linalg.solve(Aj, Bj) for Aj, Bj in zip(A, B))
    first = torch.linalg.solve(N, B[k].T @ torch.linalg.solve(A[k], g_theta))
    second = torch.linalg.solve(N, g_gamma)
    assert torch.allclose(first - second, dense, atol=1e-10)
    assert not torch.allclose(-(first + second), dense, atol=1e-3)  # paper's (7)


def dense_scores(objective, X, y, tasks, X_val, y_val, tasks_val):
    """Removal effects from the dense Hessian of the whole objective, -H^-1 g."""
    K, d_t = objective.theta.shape
    pos = np.searchsorted(objective.classes, tasks)
    pos_val = np.searchsorted(objective.classes, tasks_val)
    X, y = objective.tensors(X, y)
    X_val, y_val = objective.tensors(X_val, y_val)

    def unpack(w):
        return w[: K * d_t].reshape(K, d_t), w[K * d_t:]

    def task_term(w, k, with_penalty=True, weights=None):
        theta, gamma = unpack(w)
        rows = np.flatnonzero(pos == k)
        losses = objective.loss(theta[k], gamma, X[rows], y[rows])
        value = losses.mean() if weights is None else (weights * losses).sum()
        return value + objective.penalty(k, theta[k], gamma) if with_penalty else value

    def total(w):
        return sum(task_term(w, k) for k in range(K))

    def val_loss(w, k):
        theta, gamma = unpack(w)
        rows = np.flatnonzero(pos_val == k)
        return objective.loss(theta[k], gamma, X_val[rows], y_val[rows]).mean()

    w = torch.cat([objective.theta.flatten(), objective.gamma])
    H = hessian(total)(w)
    G = torch.stack([grad(val_loss)(w, k) for k in range(K)], 1)  # (P, K)
    data = np.empty((len(X), K))
    for l in range(K):
        rows = np.flatnonzero(pos == l)
        for j, i in enumerate(rows):
            # removal of row i: task l's weights go from 1/n to 1/(n-1) on the others, 0 on i
            weights = torch.full((len(rows),), 1.0 / (len(rows) - 1), dtype=w.dtype)
            weights[j] = 0.0
            def change(v, l=l, weights=weights):
                return task_term(v, l, False, weights) - task_term(v, l, False)

            g = grad(change)(w)
            data[i] = (-torch.linalg.solve(H, g) @ G).numpy()
    task = np.stack([(torch.linalg.solve(H, grad(task_term)(w, l)) @ G).numpy()
                     for l in range(K)])
    np.fill_diagonal(task, np.nan)
    return data, task


@pytest.mark.parametrize("model", [
    MultitaskRidge(lam=0.3),
    MultitaskRidge(lam=0.3, fit_intercept=False),
    SharedBottomNetwork(hidden_layer_sizes=(3,), alpha=0.1, random_state=0),
    SharedBottomNetwork(hidden_layer_sizes=(3,), loss="log_loss", alpha=0.1, random_state=0),
])
def test_block_formulas_equal_dense(model):
    Xtr, Xva, ytr, yva, ttr, tva = split(K=3, d=4, n=16, seed=1)
    if getattr(model, "loss", None) == "log_loss":
        ytr, yva = (ytr > 1).astype(float), (yva > 1).astype(float)
    mtif = MultitaskInfluence(model, device="cpu").fit(Xtr, ytr, ttr, Xva, yva, tva)
    objective = multitask_objective(mtif.estimator_, torch.device("cpu"))
    data, task = dense_scores(objective, Xtr, ytr, ttr, Xva, yva, tva)
    np.testing.assert_allclose(mtif.data_influence_, data, atol=1e-8, rtol=0)
    np.testing.assert_allclose(mtif.task_influence_, task, atol=1e-8, rtol=0)


def test_ridge_solution_is_stationary(data):
    Xtr, ytr, ttr = data[:3]
    model = MultitaskRidge(lam={k: 0.05 * (k + 1) for k in range(6)}).fit(Xtr, ytr, ttr)
    objective = multitask_objective(model, torch.device("cpu"))
    X, y = objective.tensors(Xtr, ytr)
    pos = np.searchsorted(model.tasks_, ttr)
    (g_theta, g_gamma), _ = objective.task_gradients(X, y, pos, with_penalty=True)
    assert g_theta.abs().max() < 1e-10 and g_gamma.sum(0).abs().max() < 1e-10
    # gamma is the lam-weighted mean of the task coefficients
    np.testing.assert_allclose(model.shared_coef_, model.lam_ @ model.coef_ / model.lam_.sum())


def test_ridge_task_labels_not_positions(data):
    Xtr, ytr, ttr = data[:3]
    labels = np.array(["a", "b", "c", "d", "e", "f"])[ttr]
    full = MultitaskRidge().fit(Xtr, ytr, labels)
    without_b = MultitaskRidge().fit(Xtr[labels != "b"], ytr[labels != "b"], labels[labels != "b"])
    assert without_b.predict(Xtr[:3], ["c", "c", "f"]).shape == (3,)
    with pytest.raises(ValueError, match=r"\['b'\] were not seen"):
        without_b.predict(Xtr[:2], ["b", "c"])
    assert full.score(Xtr, ytr, labels) > 0.5
    with pytest.raises(ValueError, match="no value for the tasks"):
        MultitaskRidge(lam={"a": 1.0}).fit(Xtr, ytr, labels)


def test_parameter_validation_and_clone(data):
    Xtr, ytr, ttr = data[:3]
    with pytest.raises(InvalidParameterError):
        MultitaskRidge(lam=-1.0).fit(Xtr, ytr, ttr)
    with pytest.raises(InvalidParameterError):
        MultitaskInfluence(MultitaskRidge(), device="tpu").fit(Xtr, ytr, ttr)
    with pytest.raises(ValueError, match="tasks"):
        MultitaskRidge().fit(Xtr, ytr, None)
    with pytest.raises(ValueError, match="all of X_val"):
        MultitaskInfluence(MultitaskRidge()).fit(Xtr, ytr, ttr, X_val=Xtr)
    with pytest.raises(TypeError, match="not a registered multitask model"):
        MultitaskInfluence(Ridge()).fit(Xtr, ytr, ttr)
    mtif = MultitaskInfluence(MultitaskRidge(lam=0.2), n_jobs=1)
    assert clone(mtif).get_params()["estimator__lam"] == 0.2


def test_task_influence_tracks_leave_one_task_out(data):
    mtif = MultitaskInfluence(MultitaskRidge(lam=0.1)).fit(*data)
    truth = mtif.leave_one_task_out()
    np.testing.assert_array_equal(np.isnan(truth), np.eye(6, dtype=bool))
    rho = [spearmanr(np.delete(mtif.task_influence_[:, k], k), np.delete(truth[:, k], k))[0]
           for k in range(6)]
    assert np.mean(rho) >= 0.9, rho
    off = ~np.eye(6, dtype=bool)  # right scale: first order within 30% of the real effects
    slope = np.sum(mtif.task_influence_[off] * truth[off]) / np.sum(truth[off] ** 2)
    assert 0.7 < slope < 1.3, slope


def test_data_influence_tracks_leave_one_out(data):
    mtif = MultitaskInfluence(MultitaskRidge(lam=0.1)).fit(*data)
    rows = np.flatnonzero(data[2] == 0)
    truth = leave_one_row_out(MultitaskRidge(lam=0.1), *data, indices=rows)
    estimate = mtif.data_influence_[rows]
    between = [pearsonr(estimate[:, k], truth[:, k])[0] for k in range(1, 6)]
    assert min(between) >= 0.97, between
    assert pearsonr(estimate[:, 0], truth[:, 0])[0] >= 0.9  # within-task: leverage blurs it
    slope = np.sum(estimate * truth) / np.sum(truth ** 2)
    assert 0.5 < slope < 1.2, slope


def test_trim_removes_corrupted_rows():
    Xtr, Xva, ytr, yva, ttr, tva = split(K=4, d=5, n=80, seed=3, epsilon=0.0)
    rng = np.random.default_rng(0)
    bad = rng.choice(len(ytr), 10, replace=False)
    ytr = ytr.copy()
    ytr[bad] += rng.choice([-8.0, 8.0], size=10)
    mtif = MultitaskInfluence(MultitaskRidge(lam=0.1)).fit(Xtr, ytr, ttr, Xva, yva, tva)
    trimmed, removed = mtif.trim(fraction=0.05)
    assert len(removed) == round(0.05 * len(ytr))
    assert np.isin(bad, removed).mean() >= 0.7  # random removal would catch 5%
    before = np.mean((mtif.estimator_.predict(Xva, tva) - yva) ** 2)
    after = np.mean((trimmed.predict(Xva, tva) - yva) ** 2)
    assert after < before
    with pytest.raises(ValueError, match="fraction"):
        mtif.trim(1.5)


def test_leave_one_task_out_sign(data):
    """Removing an outlier task helps the related ones: positive effects mean 'helps'."""
    X, y, tasks, _coef = make_multitask_regression(5, 8, 60, delta=0.3, epsilon=0.0,
                                                  random_state=0)
    y = y.copy()
    y[tasks == 4] = -y[tasks == 4]  # task 4 now opposes the others
    effects = leave_one_task_out(MultitaskRidge(lam=1.0), X, y, tasks)
    assert (effects[4, :4] < 0).all()  # removing task 4 lowers the others' loss
    estimate = MultitaskInfluence(MultitaskRidge(lam=1.0)).fit(X, y, tasks).task_influence_
    assert (estimate[4, :4] < 0).all()


def test_network_converges_and_predicts():
    Xtr, Xva, ytr, yva, ttr, tva = split(K=3, d=4, n=40, seed=0)
    net = SharedBottomNetwork(hidden_layer_sizes=(4,), alpha=0.05, random_state=0)
    net.fit(Xtr, ytr, ttr)
    assert net.predict(Xva, tva).shape == yva.shape
    assert not hasattr(net, "predict_proba")
    clf = clone(net).set_params(loss="log_loss").fit(Xtr, (ytr > 0).astype(int), ttr)
    proba = clf.predict_proba(Xva, tva)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    with pytest.raises(ValueError, match="0/1 labels"):
        clone(clf).fit(Xtr, ytr, ttr)


def test_plot_task_influence(data):
    mtif = MultitaskInfluence(MultitaskRidge()).fit(*data)
    ax = plot_task_influence(mtif)
    assert ax.get_xlabel() == "target task k"
    assert len(ax.get_xticks()) == 6
    with pytest.raises(ValueError, match="square"):
        plot_task_influence(np.zeros((2, 3)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_network_accepts_a_random_state_instance():
    Xtr, _, ytr, _, ttr, _ = split(K=2, d=3, n=20, seed=0)
    options = {"hidden_layer_sizes": (3,), "max_iter": 5}
    seeded = SharedBottomNetwork(random_state=0, **options).fit(Xtr, ytr, ttr)
    drawn = SharedBottomNetwork(random_state=np.random.RandomState(0), **options)
    drawn.fit(Xtr, ytr, ttr)
    np.testing.assert_array_equal(drawn.shared_, seeded.shared_)
    np.testing.assert_array_equal(drawn.heads_, seeded.heads_)


@pytest.mark.parametrize("sizes", [(), [], (0,), (4, -2), (2.5,), (True,)])
def test_network_rejects_bad_hidden_layer_sizes(sizes):
    Xtr, _, ytr, _, ttr, _ = split(K=2, d=3, n=20, seed=0)
    with pytest.raises(ValueError, match=r"hidden_layer_sizes must hold the positive integer"):
        SharedBottomNetwork(hidden_layer_sizes=sizes).fit(Xtr, ytr, ttr)


def test_tasks_as_a_column_vector(data):
    Xtr, ytr, ttr = data[:3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        column = MultitaskRidge().fit(Xtr, ytr, ttr[:, None])
    np.testing.assert_array_equal(column.coef_, MultitaskRidge().fit(Xtr, ytr, ttr).coef_)
    with pytest.raises(ValueError, match=r"`tasks` must be 1-d, .* got shape \(\d+, 2\)"):
        MultitaskRidge().fit(Xtr, ytr, np.c_[ttr, ttr])


def test_leave_one_task_out_with_a_single_task():
    X, y, tasks, _ = make_multitask_regression(1, 3, 20, random_state=0)
    mtif = MultitaskInfluence(MultitaskRidge()).fit(X, y, tasks)
    np.testing.assert_array_equal(mtif.task_influence_, [[np.nan]])
    np.testing.assert_array_equal(leave_one_task_out(MultitaskRidge(), X, y, tasks), [[np.nan]])
    np.testing.assert_array_equal(mtif.leave_one_task_out(), [[np.nan]])


def test_influence_refits_on_its_own_copy_of_the_data(data):
    Xtr, ytr, ttr, Xva, yva, tva = (a.copy() for a in data)
    mtif = MultitaskInfluence(MultitaskRidge(lam=0.1)).fit(Xtr, ytr, ttr, Xva, yva, tva)
    truth = mtif.leave_one_task_out()
    trimmed = mtif.trim(fraction=0.05)[0]
    for array in (Xtr, ytr, ttr, Xva, yva, tva):  # the caller reuses its buffers
        array[:] = 0
    np.testing.assert_array_equal(mtif.leave_one_task_out(), truth)
    np.testing.assert_array_equal(mtif.trim(fraction=0.05)[0].coef_, trimmed.coef_)
