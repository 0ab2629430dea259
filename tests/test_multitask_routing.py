"""`tasks` as per-row metadata: cross_val_score, Pipeline and GridSearchCV route it."""

import numpy as np
import pytest
import sklearn
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence.multitask import (
    MultitaskInfluence,
    MultitaskRidge,
    SharedBottomNetwork,
    make_multitask_regression,
)

CV = KFold(4, shuffle=True, random_state=0)


@pytest.fixture
def data():
    X, y, tasks, _ = make_multitask_regression(n_tasks=3, n_features=4, n_samples_per_task=40,
                                               random_state=0)
    # string labels and an offset scale, so that routing the wrong rows or skipping the
    # scaler would change the numbers
    return 3.0 * X + 1.0, y, np.array(["a", "b", "c"])[tasks]


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def _manual_scores(make, X, y, tasks, score):
    out = []
    for train, test in CV.split(X):
        model = make().fit(X[train], y[train], tasks=tasks[train])
        out.append(score(y[test], model.predict(X[test], tasks=tasks[test])))
    return np.array(out)


def test_cross_val_score_routes_tasks_to_fit_and_score(data, routing):
    X, y, tasks = data
    got = cross_val_score(MultitaskRidge(lam=0.3), X, y, params={"tasks": tasks}, cv=CV)
    expected = _manual_scores(lambda: MultitaskRidge(lam=0.3), X, y, tasks, r2_score)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got.min() > 0.5  # a real fit per fold, not a constant


def test_pipeline_routes_tasks_to_every_method_of_the_network(data, routing):
    X, y, tasks = data
    options = {"hidden_layer_sizes": (3,), "max_iter": 300, "random_state": 0}
    pipe = make_pipeline(StandardScaler(), SharedBottomNetwork(**options)).fit(X, y, tasks=tasks)
    X_scaled = StandardScaler().fit_transform(X)
    bare = SharedBottomNetwork(**options).fit(X_scaled, y, tasks=tasks)
    np.testing.assert_allclose(pipe.predict(X, tasks=tasks), bare.predict(X_scaled, tasks=tasks),
                               rtol=1e-8)
    np.testing.assert_allclose(pipe.decision_function(X, tasks=tasks),
                               bare.decision_function(X_scaled, tasks=tasks), rtol=1e-8)


def test_pipeline_with_a_scaler(data, routing):
    X, y, tasks = data
    pipe = make_pipeline(StandardScaler(), MultitaskRidge(lam=0.3)).fit(X, y, tasks=tasks)
    X_scaled = StandardScaler().fit_transform(X)
    bare = MultitaskRidge(lam=0.3).fit(X_scaled, y, tasks=tasks)
    np.testing.assert_allclose(pipe.predict(X, tasks=tasks), bare.predict(X_scaled, tasks=tasks),
                               rtol=1e-10)
    assert pipe.score(X, y, tasks=tasks) == pytest.approx(bare.score(X_scaled, y, tasks=tasks))
    # the scaler changes the fit (lam shrinks coefficients in the scaled units)
    raw = MultitaskRidge(lam=0.3).fit(X, y, tasks=tasks).predict(X, tasks=tasks)
    assert np.abs(raw - pipe.predict(X, tasks=tasks)).max() > 1e-3


def test_grid_search_selects_as_a_manual_loop(data, routing):
    X, y, tasks = data
    grid = [0.01, 1.0, 100.0]
    search = GridSearchCV(MultitaskRidge(), {"lam": grid}, cv=CV).fit(X, y, tasks=tasks)
    means = [_manual_scores(lambda lam=lam: MultitaskRidge(lam=lam), X, y, tasks,
                            r2_score).mean() for lam in grid]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], means, rtol=1e-12)
    assert search.best_params_ == {"lam": grid[int(np.argmax(means))]}
    assert search.best_estimator_.lam == search.best_params_["lam"]


def test_without_routing_the_error_says_how_to_enable_it(data):
    X, y, tasks = data
    with pytest.raises(ValueError, match="enable_metadata_routing=True"):
        cross_val_score(MultitaskRidge(), X, y, params={"tasks": tasks}, cv=CV,
                        error_score="raise")
    with pytest.raises(ValueError, match="`tasks` is required"):
        MultitaskRidge().fit(X, y)


def test_tasks_is_requested_by_default():
    routing = MultitaskRidge().get_metadata_routing()
    for method in ("fit", "predict", "score"):
        assert getattr(routing, method).requests["tasks"] is True
    routing = SharedBottomNetwork().get_metadata_routing()
    for method in ("fit", "predict", "decision_function", "predict_proba"):
        assert getattr(routing, method).requests["tasks"] is True


def test_keyword_and_positional_tasks_agree(data):
    X, y, tasks = data
    a = MultitaskInfluence(MultitaskRidge(lam=0.3)).fit(X, y, tasks=tasks)
    b = MultitaskInfluence(MultitaskRidge(lam=0.3)).fit(X, y, tasks)
    np.testing.assert_array_equal(a.data_influence_, b.data_influence_)


def test_unshuffled_folds_name_the_unseen_task(data, routing):
    X, y, tasks = data  # rows sorted by task: each unshuffled fold tests on an unseen task
    with pytest.raises(ValueError, match=r"Task labels \['a'\] were not seen in fit"):
        cross_val_score(MultitaskRidge(), X, y, params={"tasks": tasks}, cv=3,
                        error_score="raise")
