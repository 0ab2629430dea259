import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import skinfluence
from skinfluence.backend import CGSolver, CholeskySolver, LanczosSolver
from skinfluence.backend.diagnostics import DiagnosticWarning


@pytest.fixture
def spd():
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(30, 30, generator=gen, dtype=torch.float64)
    H = A @ A.T / 30 + torch.eye(30, dtype=torch.float64)  # condition number ~ 10
    V = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    return H, V


def test_solvers_agree_with_exact(spd):
    H, V = spd
    exact = torch.linalg.solve(H, V)
    hvp = lambda B: H @ B
    for solver in (CholeskySolver(H), CGSolver(hvp), LanczosSolver(hvp, 30, rank=30)):
        rel = (solver.solve(V) - exact).norm() / exact.norm()
        assert rel < 1e-6, (type(solver).__name__, rel.item())
        assert solver.solve(V[:, 0]).shape == (30,)


def test_low_rank_keeps_the_top_of_the_spectrum(spd):
    H, _ = spd
    evals, evecs = torch.linalg.eigh(H)
    top = evecs[:, -5:]
    solver = LanczosSolver(lambda B: H @ B, 30, rank=20)
    np.testing.assert_allclose(solver.eigenvalues[-3:], evals[-3:], rtol=1e-6)
    # in the span of the leading eigenvectors the low-rank inverse is exact
    exact = top / evals[-5:]
    assert (solver.solve(top) - exact).norm() / exact.norm() < 1e-3


def test_damping_shifts_the_spectrum(spd):
    H, V = spd
    eye = torch.eye(30, dtype=H.dtype)
    torch.testing.assert_close(CholeskySolver(H, damping=0.5).solve(V),
                               torch.linalg.solve(H + 0.5 * eye, V))
    torch.testing.assert_close(CGSolver(lambda B: H @ B, damping=0.5).solve(V),
                               torch.linalg.solve(H + 0.5 * eye, V))


def test_indefinite_hessian_warns_with_figure_and_damps():
    H = torch.diag(torch.tensor([2.0, 1.0, -0.5], dtype=torch.float64))
    with pytest.warns(RuntimeWarning, match=r"smallest eigenvalue -0\.5"):
        solver = CholeskySolver(H)
    assert solver.damping > 0.5
    x = solver.solve(torch.ones(3, dtype=torch.float64))
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("solver", ["cg", "lowrank"])
def test_public_influence_with_each_solver(breast_cancer, solver):
    """31 parameters: CG converges and the default Lanczos rank (50) covers the whole space."""
    Xtr, Xte, ytr, yte = breast_cancer
    model = LogisticRegression(C=0.1, solver="newton-cholesky", tol=1e-12).fit(Xtr, ytr)
    exact = skinfluence.influence(model, Xtr, ytr, Xte[:10], yte[:10])
    other = skinfluence.influence(model, Xtr, ytr, Xte[:10], yte[:10], solver=solver)
    assert np.linalg.norm(other - exact) / np.linalg.norm(exact) < 1e-6


def test_largest_leverage_of_multiclass_rows_matches_the_general_eigensolver():
    # the leverage warning's eigenvalue of A_i M_i, taken from a symmetric form: the general
    # eigensolver failed to converge on a network's rows with probabilities near 1e-200
    from skinfluence.influence.newton import _largest_leverage

    rng = np.random.default_rng(0)
    p = np.vstack([rng.dirichlet(np.ones(4), 20), [[0.6, 0.4 - 1e-9, 1e-9 - 1e-105, 1e-105]],
                   [[1 - 1e-12, 1e-12 - 1e-200, 1e-200, 0.0]]])
    A = np.einsum("ck,kl->ckl", p, np.eye(4)) - p[:, :, None] * p[:, None, :]
    J = rng.normal(size=(len(p), 4, 6))
    M = np.einsum("ckp,clp->ckl", J, J) * np.logspace(-9, 0, len(p))[:, None, None]
    expected = np.linalg.eigvals(A @ M).real.max(1)
    found = _largest_leverage(torch.from_numpy(A), torch.from_numpy(M)).numpy()
    np.testing.assert_allclose(found, expected, rtol=1e-6, atol=1e-14)


def test_cg_damps_an_indefinite_hessian_and_says_so():
    """Negative curvature used to turn every CG solution into NaN."""
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    H = torch.as_tensor(Q @ np.diag([3.0, 2.0, 1.0, 0.5, 0.2, -0.4]) @ Q.T)
    V = torch.as_tensor(rng.normal(size=(6, 3)))
    solver = CGSolver(lambda B: H @ B)
    with pytest.warns(DiagnosticWarning, match="not positive definite .* damping raised to"):
        X = solver.solve(V)
    assert solver.damping > 0.4  # past the negative eigenvalue
    shifted = H + solver.damping * torch.eye(6, dtype=H.dtype)
    torch.testing.assert_close(X, torch.linalg.solve(shifted, V), rtol=1e-7, atol=1e-9)
