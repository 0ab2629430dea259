"""InfluenceTrimmer: trimming that helps, scikit-learn / imbalanced-learn integration."""


import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import skinfluence.trim as trim_module
from skinfluence.trim import InfluenceTrimmer

MODEL = LogisticRegression(solver="newton-cholesky", tol=1e-10)


@pytest.fixture(scope="module")
def noisy_cancer():
    """Standardised breast_cancer, 20% of training labels flipped."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=0)
    scaler = StandardScaler().fit(X_train)
    flipped = np.random.default_rng(0).random(len(y_train)) < 0.2
    return (scaler.transform(X_train), np.where(flipped, 1 - y_train, y_train), flipped,
            scaler.transform(X_test), y_test)


@pytest.mark.parametrize("method", ["loo_loss", "self"])
def test_default_methods_remove_flipped_rows_and_help(noisy_cancer, method):
    X, y, flipped, X_test, y_test = noisy_cancer
    untrimmed = clone(MODEL).fit(X, y).score(X_test, y_test)
    trimmer = InfluenceTrimmer(MODEL, method=method, budget=0.1, random_state=0).fit(X, y)
    assert flipped[trimmer.removed_].mean() > 0.8  # 20% of all rows are flipped
    assert trimmer.score(X_test, y_test) > untrimmed
    assert trimmer.support_.sum() == len(X) - round(0.1 * len(X))
    assert np.isfinite(trimmer.scores_).all()


def test_validation_removal_effects_match_retraining(noisy_cancer):
    """Removing the rows with the most negative predicted effect really lowers the loss."""
    X, y, _, X_test, y_test = noisy_cancer
    X_val, y_val = X_test[:80], y_test[:80]
    trimmer = InfluenceTrimmer(MODEL, method="newton", budget=15).fit(X, y, X_val, y_val)
    # scores_ are suspiciousness: minus the predicted removal effect on the validation loss
    assert np.all(trimmer.scores_[trimmer.removed_] > 0)

    def val_loss(model):
        p = model.predict_proba(X_val)[np.arange(len(y_val)), y_val]
        return -np.log(p).mean()

    before = val_loss(clone(MODEL).fit(X, y))
    after = val_loss(trimmer.estimator_)
    predicted = -trimmer.scores_[trimmer.removed_].sum()
    assert after - before < 0.5 * predicted < 0  # the effects add up, at least half realised


def test_cross_fitting_and_carved_validation(noisy_cancer):
    X, y = noisy_cancer[:2]
    carved = InfluenceTrimmer(MODEL, method="influence", budget=0.05, random_state=0).fit(X, y)
    assert np.isnan(carved.scores_).sum() == round(0.2 * len(X))
    assert carved.support_[np.isnan(carved.scores_)].all()  # validation rows are kept
    crossed = InfluenceTrimmer(MODEL, method="iv", budget=0.05, cv=3, random_state=0).fit(X, y)
    assert np.isfinite(crossed.scores_).all()


def test_grid_search_over_budget_in_pipeline_caches_scores(noisy_cancer, tmp_path,
                                                           monkeypatch):
    X, y = noisy_cancer[:2]
    calls = []
    original = trim_module.SCORERS["loo_loss"]
    monkeypatch.setitem(trim_module.SCORERS, "loo_loss",
                        lambda split: calls.append(1) or original(split))
    pipe = Pipeline([("scale", StandardScaler()),
                     ("trim", InfluenceTrimmer(LogisticRegression(), memory=str(tmp_path),
                                               random_state=0))])
    search = GridSearchCV(pipe, {"trim__budget": [0, 0.05, 0.1]}, cv=3).fit(X, y)
    assert search.best_params_["trim__budget"] in (0, 0.05, 0.1)
    assert len(calls) == 3 + 1  # once per fold and once for the refit, not once per budget
    trimmer = search.best_estimator_["trim"]
    assert trimmer.scores_.shape == (len(X),)
    # the trimmer scored the pipeline's transformed features
    scaled = StandardScaler().fit_transform(X)
    direct = InfluenceTrimmer(LogisticRegression(), random_state=0).fit(scaled, y)
    np.testing.assert_allclose(trimmer.scores_, direct.scores_, rtol=1e-6)


def test_imbalanced_learn_pipeline(noisy_cancer):
    from imblearn.pipeline import Pipeline as ImbPipeline

    X, y = noisy_cancer[:2]
    pipe = ImbPipeline([("trim", InfluenceTrimmer(MODEL, budget=25)),
                        ("knn", KNeighborsClassifier())]).fit(X, y)
    assert pipe["knn"].n_samples_fit_ == len(X) - 25
    assert pipe.predict(X[:5]).shape == (5,)
    X_kept, y_kept = InfluenceTrimmer(MODEL, budget=25).fit_resample(X, y)
    assert X_kept.shape == (len(X) - 25, X.shape[1]) and y_kept.shape == (len(X) - 25,)


def test_sample_weight_subset_and_delegation(noisy_cancer):
    X, y = noisy_cancer[:2]
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    trimmer = InfluenceTrimmer(MODEL, budget=10).fit(X, y, sample_weight=weights)
    keep = trimmer.support_
    expected = clone(MODEL).fit(X[keep], y[keep], sample_weight=weights[keep])
    np.testing.assert_allclose(trimmer.estimator_.coef_, expected.coef_, rtol=1e-6)
    assert hasattr(trimmer, "predict_proba") and not hasattr(trimmer, "transform")
    np.testing.assert_array_equal(trimmer.classes_, [0, 1])


@pytest.mark.parametrize("method", sorted(set(trim_module.SCORERS) - {"tracin", "fine"}))
def test_regressor_methods(method):
    X, y = load_diabetes(return_X_y=True)
    trimmer = InfluenceTrimmer(Ridge(alpha=1.0), method=method, budget=0.05,
                               random_state=0).fit(X, y)
    assert len(trimmer.removed_) == round(0.05 * len(X))
    assert trimmer.score(X, y) > 0.4


def test_fi_subsample_tracks_exact_ranks(noisy_cancer):
    X, y = noisy_cancer[:2]
    exact = InfluenceTrimmer(MODEL, method="fi", random_state=0).fit(X, y)
    approx = InfluenceTrimmer(MODEL, method="fi", subsample=0.3, random_state=0).fit(X, y)
    scored = ~np.isnan(exact.scores_)
    # measured 0.50 from 95 exact rows; an unrelated ranking gives about 0
    assert spearmanr(exact.scores_[scored], approx.scores_[scored])[0] > 0.4


def test_bad_input():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match="method='fi'"):
        InfluenceTrimmer(MODEL, subsample=0.5).fit(X, y)
    with pytest.raises(ValueError, match="smaller budget"):
        InfluenceTrimmer(MODEL, budget=len(X)).fit(X, y)
    with pytest.raises(ValueError, match="method"):
        InfluenceTrimmer(MODEL, method="shapley_values").fit(X, y)
    with pytest.raises(ValueError, match="X_val and y_val"):
        InfluenceTrimmer(MODEL).fit(X, y, X_val=X)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("params", ["all", "last"])
def test_float32_skorch_net_is_trimmed_in_its_own_dtype(breast_cancer, params):
    skorch = pytest.importorskip("skorch")
    import torch

    Xtr, _, ytr, _ = breast_cancer
    X = Xtr.astype(np.float32)
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    net = skorch.NeuralNetClassifier(module, criterion=torch.nn.CrossEntropyLoss, max_epochs=10,
                                     lr=0.1, train_split=None, verbose=0)
    trimmer = InfluenceTrimmer(net, budget=0.05, params=params, random_state=0).fit(X, ytr)
    assert len(trimmer.removed_) == round(0.05 * len(X))
    assert trimmer.support_.sum() == len(X) - len(trimmer.removed_)


@pytest.mark.parametrize("method", ["banzhaf", "shapley", "downsampling"])
def test_retraining_values_trim_against_trusted_validation(noisy_cancer, method):
    X, y, flipped, X_test, y_test = noisy_cancer
    rows = np.arange(60)  # a small problem: these methods refit thousands of times
    trimmer = InfluenceTrimmer(LogisticRegression(), method=method, budget=6, random_state=0)
    trimmer.fit(X[rows], y[rows], X_val=X_test[:80], y_val=y_test[:80])
    assert np.isfinite(trimmer.scores_).all()
    # 20% of the rows are flipped: a random choice of 6 holds 1.2 of them on average
    assert flipped[rows][trimmer.removed_].sum() >= 4


def test_skorch_nets_default_to_tracin_and_it_finds_flipped_rows(noisy_cancer):
    skorch = pytest.importorskip("skorch")
    import torch

    X, y, flipped, _, _ = noisy_cancer
    X = X.astype(np.float32)
    net = skorch.NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)),
        criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=0.01,
        max_epochs=15, batch_size=32, train_split=None, verbose=0, callbacks="disable")
    trimmer = InfluenceTrimmer(net, budget=0.1, random_state=0).fit(X, y)
    assert trimmer.method_ == "tracin"
    assert flipped[trimmer.removed_].mean() > 0.6  # 20% of all rows are flipped
    # a constant, modest step: sklearn's default "optimal" schedule starts at steps of ~8 that
    # leave the first checkpoints' gradients saturated and the ranking close to random
    sgd = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01, max_iter=20,
                        tol=None, random_state=0)
    trimmer = InfluenceTrimmer(sgd, method="tracin", budget=0.1, random_state=0).fit(X, y)
    assert flipped[trimmer.removed_].mean() > 0.6


def test_pipeline_estimator_gets_sample_weight_in_its_last_step(noisy_cancer):
    X, y, _, _, _ = noisy_cancer
    weights = np.random.default_rng(0).uniform(0.5, 2, len(y))
    pipe = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    trimmer = InfluenceTrimmer(pipe, budget=10, random_state=0).fit(X, y, sample_weight=weights)
    keep = trimmer.support_
    by_hand = clone(pipe).fit(X[keep], y[keep], model__sample_weight=weights[keep])
    unweighted = clone(pipe).fit(X[keep], y[keep])
    np.testing.assert_allclose(trimmer.estimator_[-1].coef_, by_hand[-1].coef_, rtol=1e-8)
    assert not np.allclose(unweighted[-1].coef_, by_hand[-1].coef_, rtol=1e-3)


def test_a_pipeline_takes_a_data_frame_with_text_columns():
    # the trimmer hands the frame to the Pipeline, whose ColumnTransformer encodes it; with the
    # preprocessing fitted on all rows the scores are those of the bare model on encoded rows
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=240), "b": rng.normal(size=240),
                          "c": rng.choice(["x", "y", "z"], 240)})
    y = (frame.a + (frame.c == "x") + 0.5 * rng.normal(size=240) > 0.5).astype(int).to_numpy()
    y[:12] = 1 - y[:12]
    encode = make_column_transformer((StandardScaler(), ["a", "b"]),
                                     (OneHotEncoder(drop="first"), ["c"]))
    model = LogisticRegression(tol=1e-10)
    frame_val, y_val = frame.iloc[200:], y[200:]
    frame, y = frame.iloc[:200], y[:200]
    encoded = clone(encode).fit(frame)
    for method, val in (("loo_loss", {}), ("newton", {"X_val": frame_val, "y_val": y_val})):
        piped = InfluenceTrimmer(make_pipeline(encode, model), method=method, budget=10,
                                 random_state=0).fit(frame, y, **val)
        numeric_val = ({} if not val else
                       {"X_val": encoded.transform(frame_val), "y_val": y_val})
        bare = InfluenceTrimmer(model, method=method, budget=10, random_state=0).fit(
            encoded.transform(frame), y, **numeric_val)
        np.testing.assert_allclose(piped.scores_, bare.scores_, rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(piped.removed_, bare.removed_)
        np.testing.assert_array_equal(piped.predict(frame_val),
                                      bare.predict(encoded.transform(frame_val)))
    assert list(piped.feature_names_in_) == ["a", "b", "c"]

    auto = InfluenceTrimmer(make_pipeline(encode, model), random_state=0).fit(frame, y)
    assert auto.budget_ == len(auto.removed_) and auto.score(frame_val, y_val) > 0.7
    with pytest.raises(ValueError, match="feature names"):
        auto.predict(frame_val.rename(columns={"c": "d"}))
    # an all-numeric frame reaches a Pipeline as a frame too: its columns are picked by name
    by_name = make_pipeline(make_column_transformer((StandardScaler(), ["b", "a"])), model)
    numeric = InfluenceTrimmer(by_name, budget=5).fit(frame[["a", "b"]], y)
    bare = InfluenceTrimmer(model, budget=5).fit(
        StandardScaler().fit_transform(frame[["b", "a"]]), y)
    np.testing.assert_allclose(numeric.scores_, bare.scores_, rtol=1e-6, atol=1e-9)


def test_a_pipeline_on_a_numeric_frame_with_array_validation_rows_and_fi_subsample():
    """Validation rows given as an array join a frame's columns; FI's random forest regresses
    on the Pipeline's scaled rows (it indexed the raw frame's columns)."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(80, 3))
    frame = pd.DataFrame(values[:60], columns=["a", "b", "c"])
    y = (values[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    for options in ({"method": "newton"}, {"method": "fi", "subsample": 0.5}):
        from_frame = InfluenceTrimmer(pipe, budget=3, random_state=0, **options).fit(
            frame, y[:60], X_val=pd.DataFrame(values[60:], columns=frame.columns),
            y_val=y[60:])
        from_array = InfluenceTrimmer(pipe, budget=3, random_state=0, **options).fit(
            frame, y[:60], X_val=values[60:], y_val=y[60:])
        from_numpy = InfluenceTrimmer(pipe, budget=3, random_state=0, **options).fit(
            values[:60], y[:60], X_val=values[60:], y_val=y[60:])
        for other in (from_array, from_numpy):
            np.testing.assert_allclose(other.scores_, from_frame.scores_, rtol=1e-9)
