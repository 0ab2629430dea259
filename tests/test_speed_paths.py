"""Speed paths give the generic answers: closed-form linear derivatives, no torch.func on the
linear path, float32, chunked rows, sparse input, the thread policy."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from sklearn.linear_model import LogisticRegression, Ridge

from skinfluence.backend import Objective, make_objective
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
