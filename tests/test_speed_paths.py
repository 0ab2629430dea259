"""Speed paths give the generic answers: closed-form linear derivatives, no torch.func on the
linear path, float32, chunked rows, sparse input, the thread policy."""

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier

from skinfluence.backend import Objective, make_objective
from skinfluence.backend.diagnostics import DiagnosticWarning
from skinfluence.backend.linear import LinearObjective

ROOT = str(Path(__file__).resolve().parents[1])


def _generic_twin(obj):
    """The same objective differentiated by torch.func (no closed forms)."""
    return Objective(obj.theta, obj.X, obj.y, obj.weights, obj.row_scale, outputs=obj.outputs,
                     output_loss=obj.output_loss, penalty=obj.penalty,
                     is_classifier=obj.is_classifier, log_proba=obj._log_proba)


def _models(breast_cancer, wine, diabetes):
    Xb, _, yb, _ = breast_cancer
    Xw, _, yw, _ = wine
    Xd, _, yd, _ = diabetes
    return [
        (LogisticRegression(C=0.5, tol=1e-12, solver="newton-cholesky").fit(Xb, yb), Xb, yb),
        (LogisticRegression(C=1.0, tol=1e-12, max_iter=5000).fit(Xw, yw), Xw, yw),
        (Ridge(alpha=2.0, fit_intercept=False).fit(Xd, yd), Xd, yd),
    ]


def test_closed_form_derivatives_match_torch_func(breast_cancer, wine, diabetes):
    for model, X, y in _models(breast_cancer, wine, diabetes):
        fast = make_objective(model, X, y, device="cpu")
        assert isinstance(fast, LinearObjective)
        slow = _generic_twin(fast)
        rows = slice(3, 40)
        V = torch.randn(fast.n_params, 4, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(0))
        pairs = [
            (fast.hessian(), slow.hessian()),
            (fast.hessian(data_only=True), slow.hessian(data_only=True)),
            (fast.gradient(), slow.gradient()),
            (fast.train_grads(rows), slow.train_grads(rows)),
            (fast.train_grads_times(rows, V), slow.train_grads_times(rows, V)),
            (fast.hvp(V), slow.hvp(V)),
            (fast.hessian_diagonal(), slow.hessian().diagonal()),
        ]
        for got, want in pairs:
            # the gradient vanishes at the fit: compare it on the scale of one row's gradient
            scale = max(want.abs().max().item(), 1e-3)
            assert (got - want).abs().max() <= 1e-10 * scale


def test_linear_influence_never_sets_up_torch_func():
    """A fresh process computing a linear model's influence never imports torch._dynamo (the
    one-time transform set-up that made the first call cost a second)."""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        import skinfluence
        rng = np.random.default_rng(0)
        X = rng.standard_normal((300, 5))
        y = (X[:, 0] + rng.standard_normal(300) > 0).astype(int)
        model = LogisticRegression(tol=1e-10).fit(X, y)
        skinfluence.influence(model, X, y, X[:4], y[:4])
        skinfluence.influence(model, X, y, X[:4], y[:4], target="mean_loss")
        skinfluence.influence(model, X, y, X[:4], y[:4], method="newton")
        skinfluence.self_influence(model, X, y)
        print("torch._dynamo" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT})
    assert out.stdout.split()[-1] == "False"


# ------------------------------------------------------------------ thread policy
def _entry_points(breast_cancer):
    """Every public entry point, each on a small problem."""
    import skinfluence
    from skinfluence.multitask import MultitaskInfluence, MultitaskRidge
    from skinfluence.survival import CoxInfluence

    X, Xte, y, yte = breast_cancer
    X, y, Xte, yte = X[:120, :6], y[:120], Xte[:10, :6], yte[:10]
    model = LogisticRegression(tol=1e-10).fit(X, y)
    rng = np.random.default_rng(0)
    Xs = rng.normal(size=(40, 3))
    ys = np.column_stack([rng.exponential(np.exp(-Xs[:, 0])), rng.random(40) < 0.7])
    Xm, tasks = rng.normal(size=(60, 3)), np.repeat([0, 1, 2], 20)
    ym = Xm @ [1.0, 2.0, 0.0] + rng.normal(size=60)
    unlabelled = np.where(np.arange(len(y)) % 10 == 0, y, np.nan)
    return {
        "ActiveLearningSelector": lambda: skinfluence.ActiveLearningSelector(
            LogisticRegression(), batch_size=2, random_state=0).query(X, unlabelled),
        "influence": lambda: skinfluence.influence(model, X, y, Xte, yte),
        "newton": lambda: skinfluence.influence(model, X, y, Xte, yte, method="newton"),
        "self_influence": lambda: skinfluence.self_influence(model, X, y),
        "influence_value": lambda: skinfluence.influence_value(model, X, y, Xte, yte),
        "leave_one_out": lambda: skinfluence.leave_one_out(model, X, y, Xte, yte,
                                                           indices=range(4), n_jobs=2),
        "InfluenceTrimmer": lambda: skinfluence.InfluenceTrimmer(
            LogisticRegression(), budget=5, random_state=0).fit(X, y),
        "CoxInfluence": lambda: CoxInfluence(method="loo", n_jobs=2).fit(Xs[:20], ys[:20]),
        "MultitaskInfluence": lambda: MultitaskInfluence(MultitaskRidge(lam=0.5)).fit(
            Xm, ym, tasks),
    }


def test_a_users_single_thread_is_respected_everywhere(breast_cancer, monkeypatch):
    """With torch.set_num_threads(1) set by the user, no entry point ever raises the count."""
    from joblib import parallel_config

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    calls = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n)))
    try:
        with parallel_config(backend="threading"):  # workers share this process's torch
            for name, run in _entry_points(breast_cancer).items():
                run()
                assert torch.get_num_threads() == 1, name
                assert set(calls) <= {1}, (name, calls)
    finally:
        real(previous)


def test_small_problems_run_on_one_thread_and_restore(breast_cancer, monkeypatch):
    import skinfluence
    from skinfluence.backend import solvers
    from skinfluence.backend.threads import SMALL_WORK, thread_policy

    X, Xte, y, yte = breast_cancer
    model = LogisticRegression(tol=1e-10).fit(X, y)
    seen = []
    real_solve = solvers.CholeskySolver.solve
    monkeypatch.setattr(solvers.CholeskySolver, "solve",
                        lambda self, V: (seen.append(torch.get_num_threads()),
                                         real_solve(self, V))[1])
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        skinfluence.influence(model, X, y, Xte, yte)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
        monkeypatch.setattr("skinfluence.backend.threads.machine_is_loaded", lambda: False)
        with thread_policy(SMALL_WORK):  # large enough and an idle machine: left alone
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("target", ["loss", "mean_loss", "prediction"])
def test_fast_newton_and_self_influence_match_the_generic_paths(breast_cancer, wine, diabetes,
                                                                target):
    from skinfluence.backend import CholeskySolver
    from skinfluence.influence.first_order import self_influence
    from skinfluence.influence.newton import newton_effects
    from skinfluence.influence.targets import Target

    for model, X, y in _models(breast_cancer, wine, diabetes):
        fast = make_objective(model, X, y, device="cpu")
        slow = _generic_twin(fast)
        solver = CholeskySolver(fast.hessian())
        got = newton_effects(fast, solver, Target(fast, X[:7], y[:7], target))
        want = newton_effects(slow, solver, Target(slow, X[:7], y[:7], target))
        assert (got - want).abs().max() <= 1e-9 * want.abs().max()
        got, want = self_influence(fast, solver), self_influence(slow, solver)
        assert (got >= 0).all()
        assert (got - want).abs().max() <= 1e-10 * want.abs().max()


def test_float32_option_is_close_to_float64(breast_cancer):
    import skinfluence

    X, Xte, y, yte = breast_cancer
    model = LogisticRegression(tol=1e-12, solver="newton-cholesky").fit(X, y)
    exact = skinfluence.influence(model, X, y, Xte, yte)
    single = skinfluence.influence(model, X, y, Xte, yte, dtype="float32")
    assert single.dtype == np.float32
    assert np.abs(single - exact).max() < 1e-4 * np.abs(exact).max()
    with pytest.raises(ValueError, match="dtype='float16' is not supported"):
        skinfluence.influence(model, X, y, Xte, yte, dtype="float16")


# ------------------------------------------------------------------ sparse input
def _sparse_problem(n=400, d=1500, nnz=15, seed=0):
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), nnz)
    cols = rng.integers(0, d, size=n * nnz)
    X = sp.csr_matrix((rng.random(n * nnz), (rows, cols)), shape=(n, d))
    w = rng.standard_normal(d)
    y = (X @ w + 0.3 * rng.standard_normal(n) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("solver", ["auto", "cg"])
def test_sparse_input_matches_the_dense_exact_answer(solver):
    import skinfluence

    X, y = _sparse_problem()
    model = LogisticRegression(C=2.0, tol=1e-12, solver="newton-cholesky").fit(X, y)
    test = slice(0, 20)
    before = X.copy()
    sparse = skinfluence.influence(model, X, y, X[test], y[test], solver=solver)
    dense = skinfluence.influence(model, X.toarray(), y, X[test].toarray(), y[test],
                                  solver="cholesky")
    assert (X != before).nnz == 0  # the user's matrix is untouched
    r = np.corrcoef(sparse.ravel(), dense.ravel())[0, 1]
    assert r >= 0.999
    assert np.abs(sparse - dense).max() < 1e-6 * np.abs(dense).max()
    self_sparse = skinfluence.self_influence(model, X, y)
    self_dense = skinfluence.self_influence(model, X.toarray(), y)
    assert np.allclose(self_sparse, self_dense, rtol=1e-8, atol=1e-12)


def test_sparse_hvp_never_densifies(monkeypatch):
    """Hessian-vector products run on the CSR matrix: toarray() is never called on it."""
    import scipy.sparse as sp

    X, y = _sparse_problem()
    model = LogisticRegression(tol=1e-10).fit(X, y)
    objective = make_objective(model, X, y)
    assert sp.issparse(objective.X)

    def forbidden(self, *args, **kwargs):
        raise AssertionError("densified")

    monkeypatch.setattr(sp.csr_matrix, "toarray", forbidden)
    V = torch.randn(objective.n_params, 3, dtype=torch.float64)
    HV = objective.hvp(V)
    monkeypatch.undo()
    # the columns no row uses are dropped (their coefficients are zero and never move)
    used = np.flatnonzero(X.getnnz(axis=0))
    assert len(used) < X.shape[1] and np.array_equal(objective.columns, used)
    kept = torch.as_tensor(np.r_[used, X.shape[1]])  # and the intercept
    H = make_objective(model, X.toarray(), y).hessian()[kept][:, kept]
    assert torch.allclose(HV, H @ V, rtol=1e-10, atol=1e-12)


def test_sparse_x_for_a_network_is_a_clear_error():
    from skinfluence.backend.device import as_tensor

    X, _ = _sparse_problem(n=5, d=4, nnz=1)
    with pytest.raises(TypeError, match="only the scikit-learn linear models take sparse X"):
        as_tensor(X, "cpu")


def test_jacobi_preconditioned_cg_is_exact_on_badly_scaled_curvature():
    from skinfluence.backend import CGSolver

    gen = torch.Generator().manual_seed(0)
    A = torch.randn(60, 40, generator=gen, dtype=torch.float64)
    scales = torch.logspace(-3, 3, 40, dtype=torch.float64)
    H = scales[:, None] * (A.T @ A + 0.1 * torch.eye(40, dtype=torch.float64)) * scales
    V = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    exact = torch.linalg.solve(H, V)
    solver = CGSolver(lambda B: H @ B, diagonal=H.diagonal(), max_iter=200)
    assert (solver.solve(V) - exact).norm() <= 1e-6 * exact.norm()


def test_all_row_influence_streams_rows_and_never_forms_per_row_gradients(breast_cancer,
                                                                          monkeypatch):
    """Scores only: rows go through in chunks, and no n x p gradient matrix is ever formed."""
    import skinfluence
    from skinfluence.backend import objective as objective_module

    X, Xte, y, yte = breast_cancer
    model = LogisticRegression(tol=1e-12, solver="newton-cholesky").fit(X, y)
    whole = skinfluence.influence(model, X, y, Xte, yte)
    newton = skinfluence.influence(model, X, y, Xte, yte, method="newton")
    gradients, products = [], []
    for name, seen in (("jacobian_transpose_times", gradients), ("jacobian_times", products)):
        real = getattr(LinearObjective, name)
        monkeypatch.setattr(LinearObjective, name, lambda self, X, M, real=real, seen=seen: (
            seen.append(X.shape[0]), real(self, X, M))[1])
    monkeypatch.setattr(objective_module, "CHUNK_BYTES", 8 * 31 * 40)  # ~40 rows a chunk
    chunked = skinfluence.influence(model, X, y, Xte, yte)
    assert np.allclose(chunked, whole, rtol=1e-12, atol=1e-15)
    chunked = skinfluence.influence(model, X, y, Xte, yte, method="newton")
    assert np.allclose(chunked, newton, rtol=1e-10, atol=1e-15)
    assert gradients == [len(Xte), len(Xte)]  # per-row gradients of the test rows only
    assert sum(products) == 3 * len(X) and max(products) <= 40  # training rows in chunks


def test_threadpoolctl_limit_is_respected_and_workers_run_one_thread(breast_cancer,
                                                                     monkeypatch):
    from joblib import parallel_config
    from threadpoolctl import threadpool_limits

    import skinfluence
    from skinfluence.influence import loo

    X, Xte, y, yte = breast_cancer
    model = LogisticRegression(tol=1e-10).fit(X, y)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with threadpool_limits(limits=1):
            skinfluence.influence(model, X, y, Xte, yte)
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        seen = []
        real = loo.refit_without
        monkeypatch.setattr(loo, "refit_without", lambda *a, **k: (
            seen.append(torch.get_num_threads()), real(*a, **k))[1])
        with parallel_config(backend="threading"):
            skinfluence.leave_one_out(model, X, y, Xte[:3], yte[:3], indices=range(4),
                                      n_jobs=2)
        assert seen == [1, 1, 1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_linear_fast_paths_on_the_gpu_match_the_cpu(breast_cancer):
    import skinfluence

    X, Xte, y, yte = breast_cancer
    model = LogisticRegression(tol=1e-12, solver="newton-cholesky").fit(X, y)
    for run in (lambda device: skinfluence.influence(model, X, y, Xte, yte, device=device),
                lambda device: skinfluence.influence(model, X, y, Xte, yte, device=device,
                                                     method="newton"),
                lambda device: skinfluence.self_influence(model, X, y, device=device)):
        cpu, gpu = run("cpu"), run("cuda")  # float32 by default on the GPU
        assert np.linalg.norm(gpu - cpu) <= 1e-3 * np.linalg.norm(cpu)


def test_linear_objective_reads_the_users_x_without_copying_or_changing_it(breast_cancer):
    import skinfluence

    X, Xte, y, yte = breast_cancer
    X = np.ascontiguousarray(X)
    before = X.copy()
    model = LogisticRegression(tol=1e-12, solver="newton-cholesky").fit(X, y)
    assert np.shares_memory(make_objective(model, X, y).X.numpy(), X)
    skinfluence.influence(model, X, y, Xte, yte)
    skinfluence.influence(model, X, y, Xte, yte, method="newton")
    skinfluence.self_influence(model, X, y)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("model", [
    LinearRegression(),
    LogisticRegression(C=np.inf, tol=1e-10, max_iter=5000),
    SGDClassifier(loss="log_loss", penalty=None, max_iter=50, tol=None, random_state=0),
])
def test_unpenalised_models_on_sparse_x_match_dense_values_and_diagnostics(model):
    """The constant/duplicated-column check runs on the CSR matrix: same effects and the same
    warnings as on the dense array, the all-zero columns the sparse path drops included."""
    import scipy.sparse as sp

    import skinfluence

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)) * (rng.random((60, 4)) < 0.6)
    X = np.c_[X, np.ones(60), X[:, 1], np.zeros(60)]  # constant, duplicated and zero columns
    y = X[:, 0] + rng.normal(size=60)
    y = y if isinstance(model, LinearRegression) else (y > 0).astype(int)
    model.fit(X, y)

    def run(Z):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            values = (skinfluence.self_influence(model, Z, y, damping=1e-6),
                      skinfluence.influence(model, Z, y, Z[:3], y[:3], damping=1e-6))
        messages = [str(w.message) for w in record if issubclass(w.category, DiagnosticWarning)]
        return values, messages

    (dense, dense_warned), (sparse, sparse_warned) = run(X), run(sp.csr_matrix(X))
    assert sparse_warned == dense_warned
    assert any("constant columns (column 4, column 6)" in m for m in dense_warned)
    assert any("duplicated columns (column 5 repeat" in m for m in dense_warned)
    for a, b in zip(dense, sparse, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-10 * np.abs(a).max())
