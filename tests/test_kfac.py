"""K-FAC solver and the KFSVD approximation of FI^util (trimming paper, section 5)."""

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.linear_model import LogisticRegression

from skinfluence.backend import CholeskySolver, TorchModel, make_objective
from skinfluence.backend.kfac import KFACSolver
from skinfluence.influence.local import fi_util
from skinfluence.influence.targets import Target
from skinfluence.trim import InfluenceTrimmer


def _data(n=120, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + X[:, 1] ** 2 + 0.5 * rng.normal(size=n) > 1).astype(int)
    y[X[:, 2] > 1] = 2
    return X, y


def _fit(module, X, y, loss, decay):
    """Full-batch L-BFGS to a tight minimum of the mean loss plus 0.5 * decay * ||theta||^2."""
    torch.manual_seed(0)
    module = module.double()
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    opt = torch.optim.LBFGS(module.parameters(), max_iter=200, tolerance_grad=1e-10,
                            tolerance_change=0, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        out = module(Xt)
        data = (torch.nn.functional.cross_entropy(out, yt) if loss == "cross_entropy"
                else ((out[:, 0] - yt) ** 2).mean())
        value = data + 0.5 * decay * sum((p ** 2).sum() for p in module.parameters())
        value.backward()
        return value

    opt.step(closure)
    return TorchModel(module, loss=loss, weight_decay=decay)


def _mlp(d=4, hidden=12, k=3):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Tanh(),
                               torch.nn.Linear(hidden, k))


def test_kfac_is_exact_for_one_linear_layer_with_one_output():
    X, _ = _data()
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3
    model = _fit(torch.nn.Linear(4, 1), X, y, "mse", 1e-2)
    objective = make_objective(model, X, y)
    V = torch.randn(objective.n_params, 3, dtype=torch.float64)
    exact = CholeskySolver(objective.hessian()).solve(V)
    kfac = KFACSolver(objective).solve(V)
    assert torch.allclose(kfac, exact, rtol=1e-8, atol=1e-10)
    assert torch.allclose(KFACSolver(objective).solve(V[:, 0]), exact[:, 0], rtol=1e-8)


def test_kfac_is_the_block_gauss_newton_of_a_deep_linear_net():
    # one MSE output through linear layers: each layer's output curvature is the same for every
    # row, so K-FAC equals the Gauss-Newton matrix restricted to its per-layer diagonal blocks
    X, _ = _data()
    y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1))
    model = _fit(net, X, y, "mse", 1e-2)
    objective = make_objective(model, X, y)
    J, _, A = objective.output_factors(objective.X, objective.y)
    c = objective.row_scale * objective.weights
    H = torch.einsum("n,nkp,nkl,nlq->pq", c, J, A, J) + 1e-2 * torch.eye(objective.n_params)
    blocks = torch.block_diag(H[:15, :15], H[15:, 15:])  # [W1 b1] has 15 entries, [W2 b2] 4
    V = torch.randn(objective.n_params, 2, dtype=torch.float64)
    kfac = KFACSolver(objective).solve(V)
    ref = torch.linalg.solve(blocks, V)
    assert (kfac - ref).abs().max() <= 1e-6 * ref.abs().max()  # measured 2e-8 (conditioning)


def test_kfac_influence_on_mlp_tracks_exact():
    X, y = _data()
    model = _fit(_mlp(), X, y, "cross_entropy", 1e-2)
    objective = make_objective(model, X, y)
    G = objective.train_grads(slice(None)).T
    exact, kfac = CholeskySolver(objective.hessian()), KFACSolver(objective)
    # self-influence g_i^T H^-1 g_i: measured Pearson 0.96 between K-FAC and exact
    assert pearsonr((G * exact.solve(G)).sum(0), (G * kfac.solve(G)).sum(0))[0] > 0.9
    # influence on a query q^T H^-1 g_i: cross-layer curvature matters more, measured 0.75
    query = objective.row_grads(objective.X[:20], objective.y[:20]).mean(0)
    assert pearsonr(G.T @ exact.solve(query), G.T @ kfac.solve(query))[0] > 0.6


def test_kfac_rejects_non_networks_and_other_layers():
    X, y = _data()
    logistic = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="exact"):
        KFACSolver(make_objective(logistic, X, y))

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)
            self.scale = torch.nn.Parameter(torch.ones(3))

        def forward(self, x):
            return self.linear(x) * self.scale

    model = TorchModel(Scaled().double(), loss="cross_entropy")
    with pytest.warns(RuntimeWarning):
        objective = make_objective(model, X, y)
    with pytest.raises(ValueError, match="scale"):
        KFACSolver(objective)


def test_full_rank_svd_equals_exact_fi():
    X, y = _data()
    model = _fit(torch.nn.Linear(4, 3), X[:90], y[:90], "cross_entropy", 1e-2)
    objective = make_objective(model, X[:90], y[:90])
    solver = CholeskySolver(objective.hessian())
    target = Target(objective, X[90:], y[90:], "mean_loss")
    exact = fi_util(objective, solver, target)
    full = fi_util(objective, solver, target, svd_rank=4)
    assert torch.allclose(full, exact, rtol=1e-6, atol=1e-12 * exact.max())
    # rank 1 of 4 is a real approximation, not the same numbers
    assert not torch.allclose(fi_util(objective, solver, target, svd_rank=1), exact, rtol=1e-3)


@pytest.mark.filterwarnings("ignore:.*does not look converged")
def test_trimmer_kfsvd_ranks_like_exact_fi():
    skorch = pytest.importorskip("skorch")
    X, y = _data(n=150)

    def trimmer(approximation):
        net = skorch.NeuralNetClassifier(
            _mlp().double(), criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
            optimizer__weight_decay=1e-2, lr=0.05, max_epochs=300, batch_size=-1, train_split=None, verbose=0)
        torch.manual_seed(0)
        return InfluenceTrimmer(net, method="fi", budget=10, approximation=approximation,
                                svd_rank=2, random_state=0).fit(X, y)

    exact, approx = trimmer(None), trimmer("kfsvd")
    scored = ~np.isnan(exact.scores_)
    assert np.array_equal(scored, ~np.isnan(approx.scores_))
    # measured Spearman against exact FI^util: 0.72 (K-FAC, rank 2 of 4); 0.78 at rank 4 (K-FAC
    # alone), 0.66 at rank 1
    assert spearmanr(exact.scores_[scored], approx.scores_[scored])[0] > 0.6


class _Declared(torch.nn.Module):
    """A tanh MLP whose output layer may be declared before its hidden layer."""

    def __init__(self, output_first, d=4, k=3):
        super().__init__()
        if output_first:
            self.fc2, self.fc1 = torch.nn.Linear(d, k), torch.nn.Linear(d, d)
        else:
            self.fc1, self.fc2 = torch.nn.Linear(d, d), torch.nn.Linear(d, k)

    def forward(self, X):
        return self.fc2(torch.tanh(self.fc1(X)))


def test_kfac_pairs_each_layer_with_its_own_inputs_whatever_the_declaration_order():
    """Equal widths: pairing layers with inputs by position was silently wrong."""
    torch.manual_seed(0)
    first, second = _Declared(False).double(), _Declared(True).double()
    second.load_state_dict(first.state_dict())
    X, y = _data(n=40)
    solves = []
    for module in (first, second):
        objective = make_objective(TorchModel(module, "cross_entropy", 0.01), X, y,
                                   check_convergence=False)
        names = [n for n, _ in module.named_parameters()]
        sizes = [p.numel() for _, p in module.named_parameters()]
        V = torch.cat([torch.full((s,), float(i + 1), dtype=torch.float64)
                       for i, s in zip(map(sorted(names).index, names), sizes)])
        parts = torch.split(KFACSolver(objective).solve(V[:, None])[:, 0], sizes)
        solves.append(torch.cat([parts[names.index(n)] for n in sorted(names)]))
    torch.testing.assert_close(solves[0], solves[1], rtol=1e-10, atol=1e-12)
