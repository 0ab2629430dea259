"""Cox models through the registry: scikit-survival Pipelines and Coxnet, checked against refits."""

import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxnetSurvivalAnalysis, CoxPHSurvivalAnalysis

from skinfluence.backend import supported_models
from skinfluence.survival import CoxInfluence, as_cox_regression, load_survival_dataset

ROWS = np.arange(0, 200, 5)


@pytest.fixture(scope="module")
def whas():
    X, y = load_survival_dataset("whas500", standardize=False)
    return X[:200], y[:200], X[-30:]


def _refit_coefficients(model, X, y):
    """``coef_(without row i) - coef_`` for each row of ROWS, refitting ``model``, and whether
    each refit kept the same active set (non-zero coefficients)."""
    shifts, same_support = [], []
    for i in ROWS:
        keep = np.ones(len(X), dtype=bool)
        keep[i] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            refit = clone(model).fit(X[keep], y[keep])
        shifts.append(np.ravel(refit.coef_) - np.ravel(model.coef_))
        same_support.append(np.array_equal(np.ravel(refit.coef_) != 0,
                                           np.ravel(model.coef_) != 0))
    return np.array(shifts), np.array(same_support)


def test_sksurv_pipeline_equals_the_bare_model_on_prescaled_data(whas):
    X, y, Xte = whas
    pipe = make_pipeline(StandardScaler(), CoxPHSurvivalAnalysis(alpha=1.0)).fit(X, y)
    Xs, Xtes = pipe[0].transform(X), pipe[0].transform(Xte)
    bare = CoxPHSurvivalAnalysis(alpha=1.0).fit(Xs, y)
    ours = CoxInfluence(pipe, method="newton").fit(X, y)
    twin = CoxInfluence(bare, method="newton").fit(Xs, y)
    np.testing.assert_allclose(ours.parameter_influence_, twin.parameter_influence_,
                               rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.influence(Xte), twin.influence(Xtes), rtol=0, atol=1e-8)
    assert ours.top_influential(Xte[0]).equals(twin.top_influential(Xtes[0]))


def test_sksurv_pipeline_tracks_whole_pipeline_refits(whas):
    """The estimate holds the scaler fixed; refits of the whole Pipeline move it too."""
    X, y, Xte = whas
    pipe = make_pipeline(StandardScaler(), CoxPHSurvivalAnalysis(alpha=1.0)).fit(X, y)
    estimate = CoxInfluence(pipe, method="newton").fit(X, y).influence(Xte)[ROWS]
    base = pipe.predict(Xte)
    refits = []
    for i in ROWS:
        keep = np.ones(len(X), dtype=bool)
        keep[i] = False
        refits.append(clone(pipe).fit(X[keep], y[keep]).predict(Xte) - base)
    assert pearsonr(estimate.ravel(), np.ravel(refits))[0] > 0.98  # measured 0.985


@pytest.mark.parametrize("l1_ratio", [0.5, 1.0])
def test_coxnet_on_the_active_set_matches_refits(whas, l1_ratio):
    X, y, Xte = whas
    model = CoxnetSurvivalAnalysis(alphas=[0.02], l1_ratio=l1_ratio, tol=1e-12,
                                   max_iter=100000).fit(X, y)
    inactive = model.coef_[:, 0] == 0
    assert inactive.any()
    inf = CoxInfluence(model, method="newton").fit(X, y)
    assert np.all(inf.parameter_influence_[:, inactive] == 0)
    refit, same = _refit_coefficients(model, X, y)
    estimate = inf.parameter_influence_[ROWS]
    # log-risk shifts on the test rows (Coxnet's predict subtracts a refit-dependent offset)
    r = pearsonr((estimate @ Xte.T).ravel(), (refit @ Xte.T).ravel())[0]
    assert r >= 0.95  # the acceptance bar for L1 fits
    # where removal keeps the active set, the approximation is the exact local problem
    assert same.sum() >= 0.75 * len(ROWS)  # measured: 40 of 40 (l1_ratio 0.5), 31 of 40 (1.0)
    r_same = pearsonr((estimate[same] @ Xte.T).ravel(), (refit[same] @ Xte.T).ravel())[0]
    assert r_same >= 0.999
    np.testing.assert_allclose(np.linalg.norm(estimate[same]), np.linalg.norm(refit[same]),
                               rtol=0.1)


def test_coxnet_objective_is_stationary_only_with_the_l1_term(whas):
    X, y, _ = whas
    model = CoxnetSurvivalAnalysis(alphas=[0.02], l1_ratio=0.5, tol=1e-12,
                                   max_iter=100000).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CoxInfluence(model, method="vif").fit(X, y)
    model.set_params(l1_ratio=0.25)  # a wrong penalty split: no longer at the optimum
    with pytest.warns(RuntimeWarning, match="not at its optimum"):
        CoxInfluence(model, method="vif").fit(X, y)


def test_coxnet_refusals(whas):
    X, y, _ = whas
    path = CoxnetSurvivalAnalysis(n_alphas=5, l1_ratio=0.5).fit(X, y)
    with pytest.raises(ValueError, match=r"alphas=\[selected_alpha\]"):
        CoxInfluence(path).fit(X, y)
    one = CoxnetSurvivalAnalysis(alphas=[0.02], l1_ratio=0.5).fit(X, y)
    with pytest.raises(ValueError, match="method='loo'"):
        CoxInfluence(one, method="loo").fit(X, y)
    scaled = CoxnetSurvivalAnalysis(alphas=[0.02], l1_ratio=0.5, normalize=True).fit(X, y)
    with pytest.raises(ValueError, match="StandardScaler"):
        CoxInfluence(scaled).fit(X, y)


def test_cox_adapters_are_dispatched_by_the_registry(whas):
    X, y, _ = whas
    model = CoxPHSurvivalAnalysis(alpha=1.0).fit(X, y)
    assert as_cox_regression(model, X).alpha == 1.0
    assert {"CoxPHSurvivalAnalysis", "CoxRegression", "CoxnetSurvivalAnalysis"} <= set(
        supported_models(kind="cox"))
    with pytest.raises(TypeError, match='kind=.cox.'):
        CoxInfluence(StandardScaler().fit(X)).fit(X, y)


def test_coxnet_selected_by_grid_search_is_seen_through(whas):
    """scikit-survival's recipe: search over one-alpha Coxnet fits inside a Pipeline."""
    from sklearn.model_selection import GridSearchCV

    X, y, Xte = whas
    search = GridSearchCV(
        make_pipeline(StandardScaler(), CoxnetSurvivalAnalysis(l1_ratio=0.9, tol=1e-12,
                                                               max_iter=100000)),
        {"coxnetsurvivalanalysis__alphas": [[0.02], [0.1]]}, cv=3).fit(X, y)
    ours = CoxInfluence(search, method="newton").fit(X, y)
    best = CoxInfluence(search.best_estimator_, method="newton").fit(X, y)
    np.testing.assert_array_equal(ours.parameter_influence_, best.parameter_influence_)
    np.testing.assert_array_equal(ours.influence(Xte), best.influence(Xte))


def test_pipeline_gets_the_frame_as_given(whas):
    """Columns selected by name, a string column one-hot encoded: the Pipeline gets the frame,
    and the result is the bare model's on the preprocessed rows."""
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    X, y, _ = whas
    frame = pd.DataFrame(X[:, :4], columns=list("abcd")).assign(
        g=np.where(X[:, 4] > np.median(X[:, 4]), "u", "v"))
    pipe = make_pipeline(
        make_column_transformer((StandardScaler(), ["a", "b", "c", "d"]),
                                (OneHotEncoder(drop="first"), ["g"])),
        CoxPHSurvivalAnalysis(alpha=0.1)).fit(frame, y)
    Xs = pipe[0].transform(frame)
    bare = CoxPHSurvivalAnalysis(alpha=0.1).fit(Xs, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name warning from the scaler either
        ours = CoxInfluence(pipe, method="newton").fit(frame, y)
        effects = ours.influence(frame[:10])
        table = ours.top_influential(frame.iloc[3])
    twin = CoxInfluence(bare, method="newton").fit(Xs, y)
    np.testing.assert_allclose(ours.parameter_influence_, twin.parameter_influence_, atol=1e-10)
    np.testing.assert_allclose(effects, twin.influence(Xs[:10]), atol=1e-10)
    assert table.equals(twin.top_influential(Xs[3]))
    assert list(ours.feature_names_in_) == list("abcdg")


def test_unfitted_search_is_fitted_then_seen_through(whas):
    from sklearn.model_selection import GridSearchCV

    X, y, _ = whas
    search = GridSearchCV(CoxPHSurvivalAnalysis(), {"alpha": [0.1, 1.0]}, cv=3)
    ours = CoxInfluence(search, method="newton").fit(X, y)
    best = clone(search).fit(X, y).best_estimator_
    assert ours.estimator_.best_params_ == {"alpha": best.alpha}
    np.testing.assert_allclose(
        ours.parameter_influence_,
        CoxInfluence(best, method="newton").fit(X, y).parameter_influence_, atol=1e-12)
    assert not hasattr(search, "best_estimator_")


def test_coxnet_without_active_coefficients_has_zero_effects(whas):
    X, y, Xte = whas
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sksurv: every coefficient is zero
        model = CoxnetSurvivalAnalysis(alphas=[10.0], l1_ratio=1.0).fit(X, y)
    assert not model.coef_.any()
    for method in ("vif", "if", "newton"):
        inf = CoxInfluence(model, method=method).fit(X, y)
        np.testing.assert_array_equal(inf.parameter_influence_, 0.0)
        np.testing.assert_array_equal(inf.influence(Xte), 0.0)
