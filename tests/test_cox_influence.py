"""CoxInfluence: closed forms against autodiff, estimates against real leave-one-out refits."""

import numpy as np
import pytest
import torch
from torch.func import grad, hessian

from skinfluence.survival import (
    CoxInfluence,
    CoxRegression,
    load_survival_dataset,
    split_survival_frame,
)

sksurv = pytest.importorskip("sksurv")
lifelines = pytest.importorskip("lifelines")


def _pearson(a, b):
    ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    return np.corrcoef(a[ok].ravel(), b[ok].ravel())[0, 1]


def _slope(estimate, truth):
    """Least-squares slope through the origin: 1 when the scale is right, < 0 for a sign flip."""
    return float((estimate * truth).sum() / (estimate * estimate).sum())


# --- closed forms against an independent dense partial likelihood ----------------------------


def _dense_nll(theta, X, time, event, keep, ties, alpha):
    """Negative log partial likelihood written as plainly as possible (python loops)."""
    eta = X @ theta
    total = 0.5 * alpha * (theta**2).sum()
    for t in np.unique(time[event & keep]):
        tied = np.flatnonzero((time == t) & event & keep)
        at_risk = np.flatnonzero((time >= t) & keep)
        risk_sum = torch.exp(eta[at_risk]).sum()
        tied_sum = torch.exp(eta[tied]).sum()
        for slot in range(tied.size):
            share = slot / tied.size if ties == "efron" else 0.0
            total = total + torch.log(risk_sum - share * tied_sum)
        total = total - eta[tied].sum()
    return total


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_closed_forms_match_dense_newton_steps(ties):
    rng = np.random.default_rng(1)
    n, d, alpha = 22, 3, 0.5
    X = rng.normal(size=(n, d))
    time = np.ceil(rng.exponential(4.0, size=n))  # many tied times
    event = rng.random(n) < 0.7
    y = np.column_stack([time, event])
    model = CoxRegression(alpha=alpha, ties=ties, tol=1e-12).fit(X, y)
    theta, Xt = torch.tensor(model.coef_), torch.tensor(X)

    everyone = np.ones(n, dtype=bool)
    H = hessian(_dense_nll)(theta, Xt, time, event, everyone, ties, alpha)
    vif_ref, newton_ref = [], []
    for i in range(n):
        keep = everyone.copy()
        keep[i] = False
        g_i = grad(_dense_nll)(theta, Xt, time, event, keep, ties, alpha)
        H_i = hessian(_dense_nll)(theta, Xt, time, event, keep, ties, alpha)
        vif_ref.append(-torch.linalg.solve(H, g_i))
        newton_ref.append(-torch.linalg.solve(H_i, g_i))

    for method, reference in (("vif", vif_ref), ("newton", newton_ref)):
        estimate = CoxInfluence(model, method=method).fit(X, y).parameter_influence_
        np.testing.assert_allclose(estimate, torch.stack(reference).numpy(), atol=1e-9)


# --- accuracy against real retraining (acceptance thresholds of issue 6) --------------------

_THRESHOLDS = {"whas500": 0.96, "gbsg2": 0.99, "rossi": 0.99}


@pytest.fixture(scope="module", params=sorted(_THRESHOLDS))
def dataset_effects(request):
    """Removal effects on every row's log relative risk, each method, one dataset."""
    X, y = load_survival_dataset(request.param)
    model = CoxRegression().fit(X, y)
    effects = {
        method: CoxInfluence(model, method=method).fit(X, y).influence(X)
        for method in ("loo", "vif", "if", "newton")
    }
    return request.param, effects


def test_methods_track_leave_one_out(dataset_effects):
    name, effects = dataset_effects
    truth = effects["loo"]
    assert _pearson(effects["newton"], truth) >= 0.99
    assert _pearson(effects["vif"], truth) >= _THRESHOLDS[name]
    assert _pearson(effects["if"], truth) >= 0.95
    for method in ("vif", "newton"):
        assert 0.9 <= _slope(effects[method], truth) <= 1.25, method


def test_penalty_enters_the_influence():
    X, y = load_survival_dataset("whas500")
    X, y = X[:250], y[:250]
    model = CoxRegression(alpha=40.0).fit(X, y)
    truth = CoxInfluence(model, method="loo").fit(X, y).parameter_influence_
    newton = CoxInfluence(model, method="newton").fit(X, y).parameter_influence_
    unpenalised = CoxRegression(alpha=0.0).fit(X, y)
    wrong = CoxInfluence(unpenalised, method="newton").fit(X, y).parameter_influence_
    assert _pearson(newton, truth) >= 0.995
    assert 0.97 <= _slope(newton, truth) <= 1.03
    assert not 0.97 <= _slope(wrong, truth) <= 1.03


# --- targets --------------------------------------------------------------------------------


def _breslow_nll_terms(eta, time, event):
    """Per-row negative log partial likelihood terms (tie-free data)."""
    return np.array(
        [
            np.log(np.exp(eta[time >= t]).sum()) - e if d else 0.0
            for t, e, d in zip(time, eta, event)
        ]
    )


def test_risk_and_loss_targets_against_refits():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3))
    time = rng.exponential(np.exp(-X @ [0.8, -0.5, 0.0]))
    y = np.column_stack([time, rng.random(120) < 0.8])
    X_val, y_val = X[80:], y[80:]
    X_tr, y_tr = X[:80], y[:80]
    inf = CoxInfluence(CoxRegression(ties="breslow"), method="loo").fit(X_tr, y_tr)
    risk = inf.influence(X_val, target="risk")
    loss = inf.influence(X_val, target="loss", y_test=y_val)
    base = _breslow_nll_terms(X_val @ inf.coef_, y_val[:, 0], y_val[:, 1])
    for i in (0, 17, 55):
        keep = np.arange(80) != i
        coef = CoxRegression(ties="breslow").fit(X_tr[keep], y_tr[keep]).coef_
        np.testing.assert_allclose(
            risk[i], np.exp(X_val @ coef) - np.exp(X_val @ inf.coef_), atol=1e-7
        )
        refit = _breslow_nll_terms(X_val @ coef, y_val[:, 0], y_val[:, 1])
        np.testing.assert_allclose(loss[i], refit - base, atol=1e-7)
    assert np.all(loss[:, ~y_val[:, 1].astype(bool)] == 0)
    with pytest.raises(ValueError, match="y_test"):
        inf.influence(X_val, target="loss")
    with pytest.raises(ValueError, match="target"):
        inf.influence(X_val, target="hazard")


def test_top_influential_table():
    X, y = load_survival_dataset("rossi")
    inf = CoxInfluence().fit(X, y)
    table = inf.top_influential(X[0], k=5)
    effect = inf.influence(X[:1])[:, 0]
    assert list(table.columns) == ["index", "similarity", "time", "event", "effect"]
    assert table["index"].iloc[0] == np.argmax(np.abs(effect))
    assert np.all(np.diff(np.abs(table["effect"])) <= 0)
    assert np.all(np.abs(table["similarity"]) <= 1 + 1e-12)


# --- rows with no finite refit ----------------------------------------------------------------


def test_rows_without_finite_refit_are_flagged():
    rng = np.random.default_rng(0)
    n = 60
    group = np.zeros(n)
    group[:8] = 1
    X = np.column_stack([group, rng.normal(size=n)])
    time = rng.exponential(size=n) + 0.05
    event = rng.random(n) < 0.7
    event[:8] = False
    event[3] = True  # the only event of the binary group
    y = np.column_stack([time, event])
    with pytest.warns(RuntimeWarning, match="no finite leave-one-out refit"):
        inf = CoxInfluence(method="newton").fit(X, y)
    assert np.flatnonzero(~inf.finite_refit_).tolist() == [3]
    assert np.isnan(inf.parameter_influence_[3]).all()
    assert np.isfinite(np.delete(inf.parameter_influence_, 3, axis=0)).all()
    # the real refit indeed runs away: the group now separates the events
    with pytest.warns(Warning, match="separates"):
        CoxRegression().fit(np.delete(X, 3, axis=0), np.delete(y, 3, axis=0))


# --- fitted models from other libraries --------------------------------------------------------


def test_sksurv_model_is_used_as_fitted_or_cloned():
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    X, y = load_survival_dataset("gbsg2")
    reference = CoxInfluence(CoxRegression(alpha=3.0, ties="breslow")).fit(X, y)
    fitted = CoxPHSurvivalAnalysis(alpha=3.0, ties="breslow").fit(X, y)
    unfitted = CoxPHSurvivalAnalysis(alpha=3.0, ties="breslow")
    for estimator in (fitted, unfitted):
        inf = CoxInfluence(estimator).fit(X, y)
        np.testing.assert_allclose(
            inf.parameter_influence_, reference.parameter_influence_, atol=1e-7
        )
    assert not hasattr(unfitted, "coef_")


def test_reid_crepeau_is_minus_lifelines_delta_beta():
    """On standardised (ddof=1), tie-free data with penalizer p and l1_ratio=0, lifelines'
    ``delta_beta`` is ``r_i @ inv(H)`` with ``r_i`` the score residual and ``H`` the Hessian of
    ``-loglik + n p / 2 ||beta||^2``; it approximates ``theta - theta_-i``. Our removal effect
    (``method="if"``) is ``-H^-1 r_i``: exactly ``-delta_beta``."""
    import pandas as pd
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(7)
    n = 150
    X = rng.normal(size=(n, 3))
    X = (X - X.mean(0)) / X.std(0, ddof=1)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["T"] = rng.exponential(np.exp(-X @ [0.7, -0.4, 0.1]))
    frame["E"] = rng.random(n) < 0.75
    assert frame["T"].nunique() == n
    fitter = CoxPHFitter(penalizer=0.02).fit(
        frame, "T", "E", fit_options={"precision": 1e-12, "max_steps": 200}
    )
    delta_beta = fitter.compute_residuals(frame, kind="delta_beta").loc[frame.index]
    X_df, y = split_survival_frame(frame, "T", "E")
    inf = CoxInfluence(fitter, method="if").fit(X_df, y)
    np.testing.assert_allclose(inf.parameter_influence_, -delta_beta.to_numpy(), atol=1e-9)


def test_parameters_are_validated_and_cloneable():
    from sklearn.base import clone
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = load_survival_dataset("rossi")
    with pytest.raises(InvalidParameterError, match="method"):
        CoxInfluence(method="exact").fit(X, y)
    params = clone(CoxInfluence(method="newton", n_jobs=2)).get_params()
    assert params["method"] == "newton" and params["n_jobs"] == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu():
    X, y = load_survival_dataset("gbsg2")
    model = CoxRegression().fit(X, y)
    for method in ("vif", "newton"):
        cpu = CoxInfluence(model, method=method, device="cpu").fit(X, y).influence(X)
        gpu = CoxInfluence(model, method=method, device="cuda").fit(X, y).influence(X)
        assert _pearson(cpu, gpu) > 0.9999


# --- degenerate removals and inputs ------------------------------------------------------------


def _one_event_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = np.column_stack([rng.exponential(size=20), np.zeros(20)])
    y[5, 1] = 1
    return X, y


def test_removing_the_only_event_of_a_penalised_model():
    """The refit without the only event minimises the penalty alone: theta = 0."""
    X, y = _one_event_data()
    model = CoxRegression(alpha=1.0, tol=1e-12).fit(X, y)
    for method in ("newton", "loo"):
        effects = CoxInfluence(model, method=method).fit(X, y).parameter_influence_
        np.testing.assert_allclose(effects[5], -model.coef_, atol=1e-10)


@pytest.mark.parametrize("method", ["vif", "if", "newton", "loo"])
def test_removing_the_only_event_of_an_unpenalised_model_is_nan(method):
    X, y = _one_event_data()
    with pytest.warns(RuntimeWarning, match="no finite leave-one-out refit.*leaves no event"):
        inf = CoxInfluence(method=method).fit(X, y)
    assert np.isnan(inf.parameter_influence_[5]).all() and not inf.finite_refit_[5]


def test_collinear_features_are_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    X = np.column_stack([X, X[:, 0]])
    y = np.column_stack([rng.exponential(np.exp(-X[:, 0])), rng.random(40) < 0.7])
    model = CoxRegression()
    with pytest.warns(Warning), pytest.raises(ValueError, match="singular.*collinear.*alpha > 0"):
        CoxInfluence(model).fit(X, y)


def test_loss_of_a_test_set_without_events_is_zero():
    X, y = load_survival_dataset("rossi")
    inf = CoxInfluence().fit(X[:200], y[:200])
    censored = y[200:230].copy()
    censored["event"] = False
    np.testing.assert_array_equal(inf.influence(X[200:230], "loss", censored), 0.0)


def test_penalty_that_scales_with_n_is_held_at_its_full_data_value():
    """lifelines penalises ``n * penalizer * std^2``; "loo" refits keep that value (documented),
    so they equal CoxRegression refits with that alpha, not lifelines refits."""
    import pandas as pd
    from lifelines import CoxPHFitter

    X, y = load_survival_dataset("rossi")
    X, y = X[:80], y[:80]
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    fitter = CoxPHFitter(penalizer=0.5).fit(
        frame.assign(T=y["time"], E=y["event"]), "T", "E",
        fit_options={"precision": 1e-12, "max_steps": 200},
    )
    effects = CoxInfluence(fitter, method="loo").fit(frame, y).parameter_influence_
    alpha = len(X) * 0.5 * X.std(0, ddof=1) ** 2
    full = CoxRegression(alpha=alpha, tol=1e-12).fit(X, y).coef_
    for i in (0, 17, 55):
        keep = np.arange(len(X)) != i
        refit = CoxRegression(alpha=alpha, tol=1e-12).fit(X[keep], y[keep]).coef_
        np.testing.assert_allclose(effects[i], refit - full, atol=1e-6)


def test_versatile_influence_takes_numpy_and_lists():
    from skinfluence import versatile_influence

    x = torch.tensor([1.0, 2.0, 6.0], dtype=torch.float64)

    def loss(theta, mask):
        return 0.5 * (mask * (x - theta[0]) ** 2).sum()

    expected = versatile_influence(loss, [3.0], 3)
    for hessian_matrix in (np.array([[3.0]]), [[3.0]]):
        got = versatile_influence(loss, [3.0], 3, hessian_matrix=hessian_matrix,
                                  gradient_drop=lambda rows: (3.0 - x[rows, None]).numpy())
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_unfitted_lifelines_fitter_is_refused():
    from lifelines import CoxPHFitter
    from sklearn.exceptions import NotFittedError

    X, y = _one_event_data()
    with pytest.raises(NotFittedError, match="Fit the CoxPHFitter"):
        CoxInfluence(CoxPHFitter()).fit(X, y)
