"""ActiveLearningSelector inside real scikit-activeml and modAL loops, next to their own
margin strategies."""

import warnings
from functools import partial

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from skinfluence import ActiveLearningSelector
from skinfluence.active import influence_sampling

skactiveml = pytest.importorskip("skactiveml")


def _data():
    X, y = load_iris(return_X_y=True)
    return X, y


def _first_labels(y_true, per_class=2):
    """Two labeled rows of every class, the rest missing (skactiveml's MISSING_LABEL, NaN)."""
    y = np.full(len(y_true), np.nan)
    for c in np.unique(y_true):
        rows = np.flatnonzero(y_true == c)[:per_class]
        y[rows] = y_true[rows]
    return y


# ------------------------------------------------------------------- scikit-activeml
def test_skactiveml_loop_matches_margin_sampling():
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import UncertaintySampling

    X, y_true = _data()
    clf = SklearnClassifier(LogisticRegression(max_iter=1000), classes=np.unique(y_true))
    theirs = UncertaintySampling(method="margin_sampling", random_state=0)
    ours = ActiveLearningSelector(method="uncertainty", uncertainty="margin", random_state=0)
    y = _first_labels(y_true)
    for _ in range(6):
        ref, ref_util = theirs.query(X, y, clf, batch_size=5, return_utilities=True)
        got, util = ours.query(X, y, clf, batch_size=5, return_utilities=True)
        np.testing.assert_array_equal(got, ref)
        # same layout: (batch_size, n_samples), NaN for labeled rows and earlier picks
        assert util.shape == ref_util.shape == (5, len(X))
        np.testing.assert_array_equal(np.isnan(util), np.isnan(ref_util))
        y[ref] = y_true[ref]
    assert (~np.isnan(y)).sum() == 6 + 30


def test_skactiveml_candidates_as_indices_and_features():
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import UncertaintySampling

    X, y_true = _data()
    clf = SklearnClassifier(LogisticRegression(max_iter=1000), classes=np.unique(y_true))
    theirs = UncertaintySampling(method="margin_sampling", random_state=0)
    ours = ActiveLearningSelector(method="uncertainty", random_state=0)
    y = _first_labels(y_true)
    by_index = np.flatnonzero(np.isnan(y))[::2]
    np.testing.assert_array_equal(ours.query(X, y, clf, candidates=by_index, batch_size=3),
                                  theirs.query(X, y, clf, candidates=by_index, batch_size=3))
    # features: the indices point into the candidate rows, utilities are (batch, n_candidates)
    X_new = X[by_index] + 0.01
    ref, ref_util = theirs.query(X, y, clf, candidates=X_new, batch_size=3,
                                 return_utilities=True)
    got, util = ours.query(X, y, clf, candidates=X_new, batch_size=3, return_utilities=True)
    np.testing.assert_array_equal(got, ref)
    assert util.shape == ref_util.shape == (3, len(X_new))
    np.testing.assert_array_equal(np.isnan(util), np.isnan(ref_util))


def test_skactiveml_cold_start_falls_back_to_random():
    from skactiveml.classifier import SklearnClassifier

    X, y_true = _data()
    clf = SklearnClassifier(LogisticRegression(), classes=np.unique(y_true))
    selector = ActiveLearningSelector(method="fi", random_state=0)
    for y in (np.full(len(X), np.nan), np.where(y_true == 0, y_true, np.nan)):
        with pytest.warns(UserWarning, match="draws rows at random"):
            chosen = selector.query(X, y, clf, batch_size=4)
        assert len(set(chosen)) == 4 and np.isnan(y[chosen]).all()
        assert selector.estimator_ is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about for method="random"
        ActiveLearningSelector(method="random").query(X, np.full(len(X), np.nan), clf)


def test_skactiveml_wrapper_is_unwrapped_for_influence():
    """method="fi" through skactiveml's SklearnClassifier scores as the bare model does."""
    from skactiveml.classifier import SklearnClassifier

    X, y_true = _data()
    y = _first_labels(y_true, per_class=5)
    model = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000)
    wrapped = SklearnClassifier(model, classes=np.unique(y_true))
    selector = ActiveLearningSelector(method="fi", random_state=0)
    got, util = selector.query(X, y, wrapped, batch_size=3, return_utilities=True)
    ref, ref_util = selector.query(X, y, model, batch_size=3, return_utilities=True)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_allclose(util, ref_util, rtol=1e-8)
    assert np.nanmax(util) > 0


def test_prefitted_classifier_with_fit_clf_false():
    from skactiveml.classifier import SklearnClassifier

    X, y_true = _data()
    y = _first_labels(y_true, per_class=5)
    model = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000)
    fitted = SklearnClassifier(model, classes=np.unique(y_true)).fit(X, y)
    selector = ActiveLearningSelector(method="fi", random_state=0)
    got, util = selector.query(X, y, fitted, fit_clf=False, batch_size=3, return_utilities=True)
    assert selector.estimator_ is fitted  # used as it is, not refitted
    ref, ref_util = selector.query(X, y, model, batch_size=3, return_utilities=True)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_allclose(util, ref_util, rtol=1e-8)


def test_sample_weight_reaches_the_fit_and_the_objective():
    X, y_true = _data()
    y = _first_labels(y_true, per_class=5)
    model = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000)
    selector = ActiveLearningSelector(model, method="fi", random_state=0)
    plain = selector.query(X, y, return_utilities=True)[1]
    doubled = selector.query(X, y, sample_weight=np.full(len(X), 2.0), return_utilities=True)[1]
    # weights 2 = C doubled; the same rows with another fit: utilities change
    twin = ActiveLearningSelector(LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000),
                                  method="fi", random_state=0)
    np.testing.assert_allclose(doubled, twin.query(X, y, return_utilities=True)[1], rtol=1e-5)
    assert not np.allclose(np.nan_to_num(plain), np.nan_to_num(doubled))


# ------------------------------------------------------------------------------ modAL
@pytest.fixture
def modal_learner(monkeypatch):
    """modAL's ActiveLearner, with its input check made to work on scikit-learn >= 1.8.

    modAL 0.4.2.1 calls ``check_X_y(..., force_all_finite=...)``; scikit-learn 1.8 removed that
    keyword (renamed ``ensure_all_finite``), so ``ActiveLearner`` cannot even be built. The
    patch renames the keyword in modAL's own call and changes nothing else.
    """
    modal_learners = pytest.importorskip("modAL.models.learners")
    from sklearn.utils import check_X_y

    def renamed(*args, force_all_finite=True, **kwargs):
        return check_X_y(*args, ensure_all_finite=force_all_finite, **kwargs)

    monkeypatch.setattr(modal_learners, "check_X_y", renamed)
    return modal_learners.ActiveLearner


@pytest.mark.parametrize("n_instances", [1, 5])
def test_modal_loop_matches_margin_sampling_one_call_per_query(modal_learner, n_instances):
    from modAL.uncertainty import margin_sampling

    X, y_true = _data()
    start = np.flatnonzero(~np.isnan(_first_labels(y_true)))
    calls = []

    def counted(learner, X_pool, n_instances=1):
        calls.append(n_instances)
        return influence_sampling(learner, X_pool, n_instances=n_instances,
                                  method="uncertainty", random_state=0)

    def learner(strategy):
        return modal_learner(estimator=LogisticRegression(max_iter=1000), query_strategy=strategy,
                             X_training=X[start], y_training=y_true[start])

    ours, theirs = learner(counted), learner(margin_sampling)
    pool = np.setdiff1d(np.arange(len(X)), start)
    n_queries = 4
    for _ in range(n_queries):
        got, rows = ours.query(X[pool], n_instances=n_instances)
        ref, _ = theirs.query(X[pool], n_instances=n_instances)
        assert len(got) == n_instances and len(set(got)) == n_instances
        assert set(got) == set(ref)  # modAL's argpartition leaves its batch unordered
        np.testing.assert_array_equal(rows, X[pool][got])
        for active in (ours, theirs):
            active.teach(X[pool][got], y_true[pool][got])
        pool = np.delete(pool, got)
    assert calls == [n_instances] * n_queries


def test_modal_fi_strategy_runs_in_the_loop(modal_learner):
    X, y_true = _data()
    start = np.flatnonzero(~np.isnan(_first_labels(y_true)))
    strategy = partial(influence_sampling, method="fi", random_state=0)
    learner = modal_learner(estimator=LogisticRegression(max_iter=1000), query_strategy=strategy,
                            X_training=X[start], y_training=y_true[start])
    pool = np.setdiff1d(np.arange(len(X)), start)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning, one strategy call
        idx, _ = learner.query(X[pool], n_instances=3)
    assert len(set(idx)) == 3
    learner.teach(X[pool][idx], y_true[pool][idx])
    assert len(learner.X_training) == len(start) + 3
