"""CoxRegression against scikit-survival and lifelines; survival-target validation."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skinfluence.survival import (
    CoxRegression,
    check_survival_target,
    concordance_index,
    split_survival_frame,
)

sksurv = pytest.importorskip("sksurv")
lifelines = pytest.importorskip("lifelines")


@pytest.fixture(scope="module")
def whas500():
    from sksurv.column import encode_categorical
    from sksurv.datasets import load_whas500

    X, y = load_whas500()
    X = encode_categorical(X).to_numpy(float)
    return (X - X.mean(0)) / X.std(0), y


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_matches_sksurv_coefficients(whas500, ties):
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    X, y = whas500
    ours = CoxRegression(alpha=2.0, ties=ties).fit(X, y)
    theirs = CoxPHSurvivalAnalysis(alpha=2.0, ties=ties).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.predict(X), X @ ours.coef_)


def test_efron_and_breslow_differ_with_ties(whas500):
    X, y = whas500
    efron = CoxRegression(ties="efron").fit(X, y).coef_
    breslow = CoxRegression(ties="breslow").fit(X, y).coef_
    assert np.abs(efron - breslow).max() > 1e-4


def test_matches_lifelines_penalty_semantics():
    """lifelines minimises -loglik + n * penalizer / 2 * ||coef * std||^2 (l1_ratio=0)."""
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi

    rossi = load_rossi()
    X, y = split_survival_frame(rossi, "week", "arrest")
    fitter = CoxPHFitter(penalizer=0.05).fit(
        rossi, "week", "arrest", fit_options={"precision": 1e-12, "max_steps": 200}
    )
    alpha = len(X) * 0.05 * X.std(ddof=1).to_numpy() ** 2
    ours = CoxRegression(alpha=alpha).fit(X, y)
    np.testing.assert_allclose(ours.coef_, fitter.params_.to_numpy(), atol=1e-8)
    assert list(ours.feature_names_in_) == list(X.columns)


def test_score_is_sksurv_concordance(whas500):
    from sksurv.metrics import concordance_index_censored

    X, y = whas500
    model = CoxRegression().fit(X, y)
    expected = concordance_index_censored(y["fstat"], y["lenfol"], model.predict(X))[0]
    assert model.score(X, y) == pytest.approx(expected, abs=1e-12)
    assert concordance_index(y["lenfol"], y["fstat"], -model.predict(X)) < 0.5


def test_two_column_target_and_clone(whas500):
    X, y = whas500
    two_columns = np.column_stack([y["lenfol"], y["fstat"]])
    model = CoxRegression(alpha=0.5)
    a = model.fit(X, y).coef_
    b = clone(model).fit(X, two_columns).coef_
    np.testing.assert_array_equal(a, b)
    assert clone(model).get_params()["alpha"] == 0.5


def test_fit_does_not_modify_inputs(whas500):
    X, y = whas500
    X_copy, y_copy = X.copy(), y.copy()
    CoxRegression().fit(X, y)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)


@pytest.mark.parametrize(
    "time, event, message",
    [
        ([1.0, 0.0, 2.0], [1, 0, 1], "strictly positive"),
        ([1.0, np.nan, 2.0], [1, 0, 1], "finite"),
        ([1.0, np.inf, 2.0], [1, 0, 1], "finite"),
        ([1.0, 2.0, 3.0], [0, 0, 0], "censored"),
        ([1.0, 2.0, 3.0], [1, 2, 0], "boolean"),
    ],
)
def test_bad_targets(time, event, message):
    with pytest.raises(ValueError, match=message):
        check_survival_target(np.column_stack([time, event]))


def test_bad_inputs_name_the_problem(whas500):
    X, y = whas500
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        CoxRegression().fit(X[:-1], y)
    with pytest.raises(ValueError, match="two columns"):
        CoxRegression().fit(X, y["lenfol"])
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CoxRegression().fit(X_nan, y)
    with pytest.raises(ValueError, match="ties"):
        CoxRegression(ties="exact").fit(X, y)


def test_separating_binary_feature_warns():
    rng = np.random.default_rng(0)
    group = np.r_[np.ones(10), np.zeros(40)]
    X = np.column_stack([group, rng.normal(size=50)])
    event = np.r_[np.zeros(10), rng.random(40) < 0.8].astype(bool)
    y = np.column_stack([rng.exponential(size=50) + 0.1, event])
    with pytest.warns(ConvergenceWarning, match="Feature 0 separates"):
        CoxRegression().fit(X, y)


def test_alpha_of_the_wrong_length_is_named():
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.column_stack([np.arange(1.0, 21.0), np.ones(20)])
    with pytest.raises(ValueError, match=r"alpha has shape \(2,\) but X has 3 features"):
        CoxRegression(alpha=[1.0, 2.0]).fit(X, y)


def test_flchain_is_ready_for_a_cox_model():
    """flchain had missing values (NaN columns once standardised) and its cause of death
    ``chapter``, recorded for the deaths only: dropping rows with it would leave events only."""
    from skinfluence.survival import load_survival_dataset

    X, y = load_survival_dataset("flchain")
    assert X.shape == (6521, 23)
    assert np.isfinite(X).all()
    np.testing.assert_allclose(X.std(0), 1.0)
    _, event = check_survival_target(y, X.shape[0])  # positive times
    assert 0.25 < event.mean() < 0.35
