"""Meta-estimators: Pipelines, searches and target transformers are seen through to their model."""

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skinfluence
from skinfluence.backend import ModelView, register_wrapper, unwrap_model


def _logistic():
    return LogisticRegression(solver="newton-cholesky", tol=1e-12)


@pytest.fixture(scope="module")
def unscaled():
    """Raw (unscaled) breast-cancer features: the Pipeline's scaler does real work."""
    X, y = load_breast_cancer(return_X_y=True)
    return X[:150, :8], y[:150], X[400:450, :8], y[400:450]


def test_pipeline_equals_bare_model_on_prescaled_data(unscaled):
    X, y, Xte, yte = unscaled
    pipe = make_pipeline(StandardScaler(), _logistic()).fit(X, y)
    scaler = pipe[0]
    bare = _logistic().fit(scaler.transform(X), y)
    for method in ("influence", "newton"):
        np.testing.assert_allclose(
            skinfluence.influence(pipe, X, y, Xte, yte, method=method),
            skinfluence.influence(bare, scaler.transform(X), y, scaler.transform(Xte), yte,
                                  method=method),
            rtol=0, atol=1e-8)
    np.testing.assert_allclose(skinfluence.self_influence(pipe, X, y),
                               skinfluence.self_influence(bare, scaler.transform(X), y),
                               rtol=0, atol=1e-8)


def test_pipeline_leave_one_out_refits_the_preprocessing(unscaled):
    """The estimate holds the scaler fixed; leave_one_out refits it. Both agree closely."""
    X, y, Xte, yte = unscaled
    pipe = make_pipeline(StandardScaler(), _logistic()).fit(X, y)
    scaler = pipe[0]
    bare = _logistic().fit(scaler.transform(X), y)
    estimate = skinfluence.influence(pipe, X, y, Xte, yte, method="newton", target="mean_loss")
    refit = skinfluence.leave_one_out(pipe, X, y, Xte, yte, target="mean_loss")
    fixed = skinfluence.leave_one_out(bare, scaler.transform(X), y, scaler.transform(Xte), yte,
                                      target="mean_loss")
    assert pearsonr(estimate, fixed)[0] > 0.998  # same objective: the Newton step is near exact
    assert pearsonr(estimate, refit)[0] > 0.99
    # refitting the scaler is a real, measurable difference (6% here)
    assert 0.01 < np.linalg.norm(refit - fixed) / np.linalg.norm(refit) < 0.2


def test_search_uses_best_estimator_and_keeps_its_hyperparameters(unscaled):
    X, y, Xte, yte = unscaled
    search = GridSearchCV(make_pipeline(StandardScaler(), _logistic()),
                          {"logisticregression__C": [0.01, 1.0]}, cv=3).fit(X, y)
    assert unwrap_model(search).estimator is search.best_estimator_[-1]
    np.testing.assert_allclose(
        skinfluence.influence(search, X, y, Xte, yte, target="mean_loss"),
        skinfluence.influence(search.best_estimator_, X, y, Xte, yte, target="mean_loss"))
    rows = np.arange(0, 150, 5)
    estimate = skinfluence.influence(search, X, y, Xte, yte, method="newton",
                                     target="mean_loss")[rows]
    refit = skinfluence.leave_one_out(search, X, y, Xte, yte, target="mean_loss", indices=rows)
    assert pearsonr(estimate, refit)[0] > 0.99


def test_transformed_target_regressor_on_the_transformed_scale():
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:150], y[:150]
    model = TransformedTargetRegressor(Ridge(alpha=0.1), func=np.log,
                                       inverse_func=np.exp).fit(X, y)
    estimate = skinfluence.influence(model, X, y, X[:20], y[:20], method="newton")
    refit = skinfluence.leave_one_out(model, X, y, X[:20], y[:20])
    np.testing.assert_allclose(estimate, refit, rtol=1e-8, atol=1e-10)  # ridge: Newton is exact
    bare = Ridge(alpha=0.1).fit(X, np.log(y))
    np.testing.assert_allclose(
        estimate, skinfluence.influence(bare, X, np.log(y), X[:20], np.log(y[:20]),
                                        method="newton"), atol=1e-10)


def test_imbalanced_learn_sampler_counts_drawn_rows(unscaled):
    from imblearn.over_sampling import SMOTE, RandomOverSampler
    from imblearn.pipeline import make_pipeline as make_imb_pipeline

    X, y, Xte, yte = unscaled
    pipe = make_imb_pipeline(StandardScaler(), RandomOverSampler(random_state=0),
                             _logistic()).fit(X, y)
    counts = np.bincount(pipe[1].sample_indices_, minlength=len(X)).astype(float)
    assert counts.max() > 1  # some rows were drawn twice
    Xs = pipe[0].transform(X)
    bare = _logistic().fit(Xs, y, sample_weight=counts)
    np.testing.assert_allclose(
        skinfluence.influence(pipe, X, y, Xte, yte, method="newton"),
        skinfluence.influence(bare, Xs, y, pipe[0].transform(Xte), yte, sample_weight=counts,
                              method="newton"),
        rtol=0, atol=1e-8)
    smote = make_imb_pipeline(StandardScaler(), SMOTE(random_state=0), _logistic()).fit(X, y)
    with pytest.raises(ValueError, match="creates new rows"):
        skinfluence.influence(smote, X, y, Xte, yte)


def test_passthrough_final_step_is_refused(unscaled):
    X, y, Xte, yte = unscaled
    pipe = make_pipeline(StandardScaler(), _logistic()).fit(X, y)
    pipe.steps[-1] = ("logisticregression", "passthrough")
    with pytest.raises(ValueError, match="passthrough"):
        skinfluence.influence(pipe, X, y, Xte, yte)


def test_user_wrappers_are_registered_and_composed(unscaled):
    X, y = unscaled[:2]

    class Holder:
        def __init__(self, inner):
            self.inner = inner

        def fit(self, X, y):
            return self

    register_wrapper(Holder, lambda model: ModelView(model.inner))
    pipe = make_pipeline(StandardScaler(), _logistic()).fit(X, y)
    view = unwrap_model(Holder(pipe))
    assert view.estimator is pipe[-1]
    np.testing.assert_allclose(view.transform(X), pipe[0].transform(X))


@pytest.mark.parametrize("method", ["self", "fi", "iv", "newton"])
def test_trimmer_accepts_a_pipeline(unscaled, method):
    from skinfluence import InfluenceTrimmer

    X, y = unscaled[:2]
    pipe = make_pipeline(StandardScaler(), _logistic())
    Xr, yr = InfluenceTrimmer(pipe, budget=0.1, method=method).fit_resample(X, y)
    assert len(Xr) == len(yr) < len(X)


@pytest.mark.parametrize("method", ["uncertainty", "fi", "iv"])
def test_active_learning_selector_accepts_a_pipeline(unscaled, method):
    from skinfluence import ActiveLearningSelector

    X, y = unscaled[:2]
    labels = np.full(len(y), np.nan)
    labels[:20] = y[:20]
    selector = ActiveLearningSelector(make_pipeline(StandardScaler(), _logistic()),
                                      method=method, batch_size=3, random_state=0)
    picked = selector.query(X, labels)
    assert picked.shape == (3,) and np.all(picked >= 20)


def test_leave_one_out_of_a_pipeline_passes_sample_weight_to_its_model(unscaled):
    X, y, Xte, yte = unscaled
    weights = np.random.default_rng(0).uniform(0.5, 2, len(X))
    pipe = make_pipeline(StandardScaler(), _logistic())
    pipe.fit(X, y, logisticregression__sample_weight=weights)
    rows = np.arange(5)
    by_pipeline = skinfluence.leave_one_out(pipe, X, y, Xte, yte, indices=rows,
                                            sample_weight=weights)
    expected = []
    for i in rows:  # by hand: the whole Pipeline refitted without row i, with the weights
        keep = np.arange(len(X)) != i
        refit = make_pipeline(StandardScaler(), _logistic()).fit(
            X[keep], y[keep], logisticregression__sample_weight=weights[keep])
        expected.append(_log_losses(refit, Xte, yte) - _log_losses(pipe, Xte, yte))
    np.testing.assert_allclose(by_pipeline, expected, rtol=1e-6, atol=1e-12)


def _log_losses(model, X, y):
    return -np.log(model.predict_proba(X)[np.arange(len(y)), y])


def _insurance_frame(n=150, seed=0):
    """A seeded frame like a user's: two string columns, two numeric ones, binary labels."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"sex": rng.choice(["female", "male"], n),
                          "smoker": rng.choice(["yes", "no", "former"], n),
                          "age": rng.normal(45, 12, n), "bmi": rng.normal(27, 4, n)})
    logit = (0.8 * (frame.sex == "male") + 1.2 * (frame.smoker == "yes")
             + 0.05 * (frame.age - 45) + 0.1 * (frame.bmi - 27) - 0.5)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).to_numpy().astype(int)
    return frame.iloc[:120], y[:120], frame.iloc[120:], y[120:]


def _frame_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    columns = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"),
                                  ["sex", "smoker"]),
                                 ("num", StandardScaler(), ["age", "bmi"])])
    return make_pipeline(columns, _logistic())


def test_influence_of_a_column_transformer_pipeline_on_a_data_frame():
    X, y, Xte, yte = _insurance_frame()
    pipe = _frame_pipeline().fit(X, y)
    effects = skinfluence.influence(pipe, X, y, Xte, yte)
    Z, Zte = pipe[:-1].transform(X), pipe[:-1].transform(Xte)
    on_matrices = skinfluence.influence(pipe[-1], Z, y, Zte, yte)
    assert effects.shape == (120, 30) and np.abs(on_matrices).max() > 1e-3
    np.testing.assert_allclose(effects, on_matrices, rtol=0, atol=1e-8)
    np.testing.assert_allclose(skinfluence.self_influence(pipe, X, y),
                               skinfluence.self_influence(pipe[-1], Z, y), rtol=0, atol=1e-8)


def test_leave_one_out_refits_a_column_transformer_pipeline_on_a_data_frame():
    X, y, Xte, yte = _insurance_frame()
    pipe = _frame_pipeline().fit(X, y)
    rows = [0, 1, 2]
    effects = skinfluence.leave_one_out(pipe, X, y, Xte, yte, indices=rows)
    expected = []
    for i in rows:  # by hand: the whole Pipeline (encoder, scaler, model) refitted without row i
        keep = np.arange(len(X)) != i
        refit = _frame_pipeline().fit(X[keep], y[keep])
        expected.append(_log_losses(refit, Xte, yte) - _log_losses(pipe, Xte, yte))
    assert np.abs(expected).max() > 1e-4
    np.testing.assert_allclose(effects, expected, rtol=1e-6, atol=1e-10)


def test_missing_value_in_a_data_frame_is_named_after_the_preprocessing():
    X, y, Xte, yte = _insurance_frame()
    pipe = _frame_pipeline().fit(X, y)
    missing = X.copy()
    missing.loc[X.index[3], "bmi"] = np.nan
    with pytest.raises(ValueError, match="Pipeline's preprocessing .* not finite.*SimpleImputer"):
        skinfluence.influence(pipe, missing, y, Xte, yte)
    with pytest.raises(ValueError, match="X_test has the same columns in another order"):
        skinfluence.influence(pipe, X, y, Xte[["bmi", "age", "sex", "smoker"]], yte)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        skinfluence.influence(pipe, X, y[:-1], Xte, yte)
    with pytest.raises(ValueError, match="X_test has no rows"):
        skinfluence.influence(pipe, X, y, Xte.iloc[:0], yte[:0])
    numbers = X[["age", "bmi"]].to_numpy()
    numeric = make_pipeline(StandardScaler(), _logistic()).fit(numbers, y)
    with pytest.raises(ValueError, match="X_test has 1 features but the training data has 2"):
        skinfluence.influence(numeric, numbers, y, Xte[["age"]].to_numpy(), yte)
    with pytest.raises(ValueError, match="X_test must be 2-D"):
        skinfluence.influence(numeric, numbers, y, Xte["age"].to_numpy(), yte)
