"""skorch nets: a linear net equals its scikit-learn twin; an MLP tracks warm-started retraining."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression, Ridge

import skinfluence
from skinfluence.backend import make_objective
from skinfluence.influence.targets import Target

skorch = pytest.importorskip("skorch")  # the optional extra skinfluence[skorch]
NeuralNetBinaryClassifier = skorch.NeuralNetBinaryClassifier
NeuralNetClassifier = skorch.NeuralNetClassifier
NeuralNetRegressor = skorch.NeuralNetRegressor


def _full_batch(net_cls, module, wd, epochs, lr, **kw):
    torch.manual_seed(0)
    return net_cls(module, optimizer=torch.optim.SGD, lr=lr, optimizer__momentum=0.9,
                   optimizer__weight_decay=wd, batch_size=-1, train_split=None,
                   max_epochs=epochs, verbose=0, callbacks="disable", **kw)


def test_linear_regressor_net_equals_ridge(diabetes):
    Xtr, Xte, ytr, yte = diabetes
    mu, sd = Xtr.mean(0), Xtr.std(0)
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    ytr, yte = (ytr - ytr.mean()) / ytr.std(), (yte - ytr.mean()) / ytr.std()
    wd, n = 0.05, len(Xtr)
    net = _full_batch(NeuralNetRegressor, torch.nn.Linear(10, 1, bias=False).double(), wd,
                      epochs=600, lr=0.1)
    net.fit(Xtr, ytr.reshape(-1, 1))
    # (1/n) sum (y - f)^2 + wd/2 ||w||^2  is  Ridge(alpha = wd n / 2) divided by n
    ridge = Ridge(alpha=0.5 * wd * n, fit_intercept=False).fit(Xtr, ytr)
    np.testing.assert_allclose(net.module_.weight.detach().numpy().ravel(), ridge.coef_,
                               rtol=1e-7)
    ours = skinfluence.influence(net, Xtr, ytr, Xte, yte)
    twin = skinfluence.influence(ridge, Xtr, ytr, Xte, yte)
    assert np.linalg.norm(ours - twin) / np.linalg.norm(twin) < 1e-5


def test_linear_binary_net_equals_logistic(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    wd, n = 0.01, len(Xtr)
    net = _full_batch(NeuralNetBinaryClassifier, torch.nn.Linear(30, 1, bias=False).double(),
                      wd, epochs=1500, lr=0.5)
    net.fit(Xtr, ytr.astype(np.float64))
    model = LogisticRegression(C=1 / (wd * n), fit_intercept=False, solver="newton-cholesky",
                               tol=1e-12).fit(Xtr, ytr)
    ours = skinfluence.influence(net, Xtr, ytr, Xte, yte, method="newton")
    twin = skinfluence.influence(model, Xtr, ytr, Xte, yte, method="newton")
    assert np.linalg.norm(ours - twin) / np.linalg.norm(twin) < 1e-5


class MLP(torch.nn.Module):
    def __init__(self, d=10, hidden=16):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Tanh())
        self.head = torch.nn.Linear(hidden, 2)

    def forward(self, X):
        return self.head(self.body(X))


@pytest.fixture(scope="module")
def mlp(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    Xtr, Xte, ytr = Xtr[:150, :10], Xte[:, :10], ytr[:150]
    torch.manual_seed(0)
    net = NeuralNetClassifier(MLP().double(), criterion=torch.nn.CrossEntropyLoss,
                              optimizer=torch.optim.SGD, lr=0.1, optimizer__momentum=0.9,
                              optimizer__weight_decay=1e-2,
                              batch_size=-1, train_split=None, max_epochs=3000, verbose=0,
                              callbacks="disable")
    net.fit(Xtr, ytr)
    return net, Xtr, Xte, ytr, yte


def test_mlp_tracks_warm_started_retraining(mlp):
    net, Xtr, Xte, ytr, yte = mlp
    assert make_objective(net, Xtr, ytr).gradient_norm() < 1e-4  # trained to convergence
    rows = np.arange(50)
    net.set_params(max_epochs=200)
    loo = skinfluence.leave_one_out(net, Xtr, ytr, Xte, yte, target="mean_loss",
                                    indices=rows, warm_start=True)
    est = skinfluence.influence(net, Xtr, ytr, Xte, yte, target="mean_loss")
    rho = spearmanr(est[rows], loo)[0]
    assert rho >= 0.6, rho  # measured: 0.92 (Pearson 0.985); newton 0.98


def test_last_layer_mode_equals_a_head_on_frozen_features(mlp):
    net, Xtr, Xte, ytr, yte = mlp
    assert make_objective(net, Xtr, ytr, params="last").n_params == 16 * 2 + 2
    est = skinfluence.influence(net, Xtr, ytr, Xte, yte, params="last")
    with torch.no_grad():
        features = [net.module_.body(torch.as_tensor(A)).numpy() for A in (Xtr, Xte)]
    head = skinfluence.TorchModel(net.module_.head, loss="cross_entropy", weight_decay=1e-2)
    np.testing.assert_allclose(
        est, skinfluence.influence(head, features[0], ytr, features[1], yte), rtol=1e-9)


def test_torch_model_matches_skorch(mlp):
    net, Xtr, Xte, ytr, yte = mlp
    plain = skinfluence.TorchModel(net.module_, loss="cross_entropy", weight_decay=1e-2)
    np.testing.assert_allclose(
        skinfluence.influence(plain, Xtr, ytr, Xte, yte, target="mean_loss"),
        skinfluence.influence(net, Xtr, ytr, Xte, yte, target="mean_loss"), rtol=1e-10)


def test_last_layer_objective_is_linear_with_the_exact_hessian(mlp):
    """With only the output layer variable the outputs are linear in it: explicit Jacobian."""
    from torch.func import hessian

    net, Xtr, _, ytr, _ = mlp
    objective = make_objective(net, Xtr, ytr, params="last")
    assert objective.linear
    torch.testing.assert_close(objective.hessian(), hessian(objective.objective)(objective.theta),
                               rtol=1e-10, atol=1e-10)
    G = objective.train_grads(slice(0, 20))
    single = [torch.func.grad(lambda t, i=i: objective.row_scale * objective.loss(
        t, objective.X[i:i + 1], objective.y[i:i + 1])[0])(objective.theta) for i in range(20)]
    torch.testing.assert_close(G, torch.stack(single), rtol=1e-10, atol=1e-12)
    whole = make_objective(net, Xtr, ytr)
    assert not whole.linear


def test_a_label_is_the_index_of_the_nets_output():
    """skorch feeds labels to the criterion as output indices: a net trained on labels {0, 1, 3}
    of its four outputs scores label 3 with output 3, as its own cross-entropy does."""
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    y = np.where(X[:, 0] > 0, 3, np.where(X[:, 1] > 0, 1, 0))
    X_test, y_test = rng.randn(5, 3), np.array([0, 1, 3, 3, 2])
    net = _full_batch(NeuralNetClassifier, torch.nn.Linear(3, 4).double(), 1e-2, epochs=50,
                      lr=0.2, criterion=torch.nn.CrossEntropyLoss).fit(X, y)
    assert net.classes_.tolist() == [0, 1, 3]
    objective = make_objective(net, X, y, check_convergence=False)
    ours = Target(objective, X_test, y_test, "loss")
    own = torch.nn.functional.cross_entropy(net.forward(X_test), torch.as_tensor(y_test),
                                            reduction="none")
    np.testing.assert_allclose(ours.values(objective.theta).detach().numpy(),
                               own.detach().numpy(), rtol=1e-10)


def test_nll_loss_reads_probabilities_and_refuses_logits():
    """skorch's default criterion, NLLLoss, on a softmax module is the cross-entropy of the same
    logits; a module that outputs logits under NLLLoss is refused, not scored as NaN."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    y = (X[:, 0] + 0.3 * rng.randn(40) > 0).astype(np.int64)
    logits = _full_batch(NeuralNetClassifier, torch.nn.Linear(3, 2).double(), 1e-2, epochs=30,
                         lr=0.2, criterion=torch.nn.CrossEntropyLoss).fit(X, y)
    softmax = torch.nn.Sequential(logits.module_, torch.nn.Softmax(dim=1))
    probabilities = _full_batch(NeuralNetClassifier, softmax, 1e-2, epochs=0, lr=0.2).fit(X, y)
    assert isinstance(probabilities.criterion_, torch.nn.NLLLoss)
    np.testing.assert_allclose(skinfluence.self_influence(probabilities, X, y, damping=1e-3),
                               skinfluence.self_influence(logits, X, y, damping=1e-3),
                               rtol=1e-5)
    # the Newton step's leave-one-out Hessian too (taken in logit space, not on probabilities)
    np.testing.assert_allclose(
        skinfluence.influence(probabilities, X, y, X[:5], y[:5], method="newton", damping=1e-3),
        skinfluence.influence(logits, X, y, X[:5], y[:5], method="newton", damping=1e-3),
        rtol=1e-5, atol=1e-10)
    raw = _full_batch(NeuralNetClassifier, logits.module_, 1e-2, epochs=0, lr=0.2).fit(X, y)
    with pytest.raises(ValueError, match="reads the module's outputs as class probabilities"):
        skinfluence.self_influence(raw, X, y)
