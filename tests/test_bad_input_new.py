"""Bad input to the entry points added after issue 12's first pass (data values, downsampling,
representer points, repeated leave-one-out, TrajectoryInfluence, the metrics): one test per
problem found by probing, each a clear error from skinfluence instead of a silent wrong answer
or a traceback from deep inside numpy, scikit-learn or joblib."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import (
    GammaRegressor,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    SGDClassifier,
    TweedieRegressor,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier

from skinfluence import (
    InfluenceTrimmer,
    TrajectoryInfluence,
    data_values,
    downsampling_influence,
    influence,
    leave_one_out,
    repeated_leave_one_out,
    representer_points,
)
from skinfluence.metrics import consistency_score, mean_coefficient_of_variation


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 3))
    y_class = (X[:, 0] + 0.5 * rng.normal(size=30) > 0).astype(int)
    y_reg = X @ [1.0, 2.0, -1.0] + 0.3 * rng.normal(size=30)
    return X, y_class, y_reg


@pytest.fixture(scope="module")
def frames(data):
    X, y_class, _ = data
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    return frame, frame[["c", "b", "a"]], y_class


SGD = SGDClassifier(loss="log_loss", max_iter=3, tol=None, random_state=0)


# --- metrics -------------------------------------------------------------------------------


@pytest.mark.parametrize("top", ["a", None, np.nan, 0])
def test_consistency_score_top_is_validated(top):
    # before: "'<' not supported between instances of 'int' and 'str'" for a string or None
    with pytest.raises((ValueError, TypeError), match="'top' parameter of consistency_score"):
        consistency_score(np.eye(3), top=top)


def test_coefficient_of_variation_of_zero_scores_is_an_error():
    # before: nan with a RuntimeWarning ("Mean of empty slice")
    with pytest.raises(ValueError, match="mean score of exactly 0"):
        mean_coefficient_of_variation(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="raise top"):
        mean_coefficient_of_variation([[0.0, 1.0, 2.0], [0.0, -1.0, -2.0]], top=0.3)


def test_coefficient_of_variation_of_huge_scores_is_finite():
    # before: inf (the variance overflowed); the ratio does not depend on the scale
    runs = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 5.0]])
    expected = np.mean(runs.std(0) / np.abs(runs.mean(0)))
    assert mean_coefficient_of_variation(runs * 1e300) == pytest.approx(expected, rel=1e-12)
    assert mean_coefficient_of_variation(runs) == pytest.approx(expected, rel=1e-12)


# --- data_values ---------------------------------------------------------------------------


def test_knn_values_refuse_a_continuous_target(data):
    # before: values from float equality of regression targets (almost all zero), silently
    X, _, y_reg = data
    with pytest.raises(ValueError, match="continuous values.*classifier that needs class labels"):
        data_values(KNeighborsClassifier(3), X, y_reg, X[:5], y_reg[:5], method="knn")


def test_data_values_refuse_a_classifier_on_a_continuous_target(data):
    # before: scikit-learn's "Unknown label type" from deep inside a worker's fit
    X, _, y_reg = data
    with pytest.raises(ValueError, match="LogisticRegression is a classifier"):
        data_values(LogisticRegression(), X, y_reg, X[:5], y_reg[:5], budget=4)


def test_data_values_check_validation_columns(frames):
    # before: a reordered X_val silently gave other values
    frame, reordered, y = frames
    with pytest.raises(ValueError, match=r"X_val has the same columns in another order than X"):
        data_values(KNeighborsClassifier(3), frame, y, reordered, y, method="knn")
    values = data_values(KNeighborsClassifier(3), frame, y, frame, y, method="knn").values
    assert np.isfinite(values).all()


@pytest.mark.parametrize(("argument", "value"), [("scoring", 3), ("n_jobs", "x"),
                                                 ("random_state", "x")])
def test_data_values_validate_their_options(data, argument, value):
    # before: "'NoneType' object is not callable" (scoring), a joblib ValueError (n_jobs)
    X, y, _ = data
    with pytest.raises((ValueError, TypeError), match=f"'{argument}' parameter of data_values"):
        data_values(LogisticRegression(), X, y, X[:5], y[:5], budget=4, **{argument: value})


def test_data_values_refuse_a_non_estimator(data):
    # before: AttributeError about __sklearn_tags__ from scikit-learn's tag machinery
    X, y, _ = data
    with pytest.raises((ValueError, TypeError), match="'estimator' parameter of data_values"):
        data_values(object(), X, y, X[:5], y[:5], budget=4)


def test_data_values_refuse_a_scorer_returning_nan(data):
    # before: NaN values without a word
    X, y, _ = data
    with pytest.raises(ValueError, match="returned nan.*need a finite score"):
        data_values(LogisticRegression(), X, y, X[:5], y[:5], budget=4, random_state=0,
                    scoring=lambda model, X, y: np.nan)


def test_data_values_name_the_validation_arguments(data):
    # before: "y_test contains NaN" though the argument is y_val
    X, y, _ = data
    with pytest.raises(ValueError, match="y_val contains NaN"):
        data_values(KNeighborsClassifier(3), X, y, X[:5], np.r_[np.nan, y[1:5]], method="knn")


# --- downsampling_influence ----------------------------------------------------------------


def test_downsampling_refuses_unseen_test_labels(data):
    # before: IndexError from numpy's fancy indexing in target_values
    X, y, _ = data
    with pytest.raises(ValueError, match=r"y_test holds labels \[5\] that no training row has"):
        downsampling_influence(LogisticRegression(), X, y, X[:3], [0, 1, 5], n_models=40,
                               random_state=0)


def test_downsampling_refuses_subsets_without_a_class(data):
    # before: the models of subsets without class 2 had classes_ [0, 1], and the loss of a
    # class-2 test row was read from the wrong column (or the fit crashed with one class)
    X, _, _ = data
    y = np.r_[np.zeros(14, int), np.ones(14, int), 2, 2]
    with pytest.raises(ValueError, match=r"Classes \[2\] \(with \[2\] rows\) are missing from"):
        downsampling_influence(LogisticRegression(), X, y, X[:3], [0, 1, 2], n_models=40,
                               random_state=0)


def test_downsampling_refuses_a_single_class(data):
    # before: scikit-learn's solver error from inside a joblib worker
    X, _, _ = data
    with pytest.raises(ValueError, match="single class"):
        downsampling_influence(LogisticRegression(), X, np.zeros(30, int), X[:3], [0, 0, 0],
                               n_models=8)


def test_downsampling_checks_test_columns(frames):
    # before: a reordered X_test silently gave other effects
    frame, reordered, y = frames
    with pytest.raises(ValueError, match="X_test has the same columns in another order than X"):
        downsampling_influence(LogisticRegression(), frame, y, reordered, y, n_models=8)


@pytest.mark.parametrize(("argument", "value"), [("n_jobs", "x"), ("estimator", object())])
def test_downsampling_validates_estimator_and_n_jobs(data, argument, value):
    # before: a joblib ValueError (n_jobs) or an AttributeError (not an estimator)
    X, _, y = data
    arguments = {"estimator": Ridge(), "n_jobs": None} | {argument: value}
    with pytest.raises((ValueError, TypeError),
                       match=f"'{argument}' parameter of downsampling_influence"):
        downsampling_influence(X=X, y=y, X_test=X[:3], y_test=y[:3], n_models=8, **arguments)


# --- repeated_leave_one_out ----------------------------------------------------------------


@pytest.mark.parametrize("n_repeats", ["a", 2.5, 1])
def test_repeated_loo_validates_n_repeats(data, n_repeats):
    # before: "'<' not supported ..." ("a") or numpy's randint TypeError (2.5)
    X, y, _ = data
    with pytest.raises((ValueError, TypeError),
                       match="'n_repeats' parameter of repeated_leave_one_out"):
        repeated_leave_one_out(SGD, X, y, X[:3], y[:3], indices=[0], n_repeats=n_repeats)


@pytest.mark.parametrize(("indices", "message"), [
    ([99], r"rows \[99\] outside \[0, 30\)"),
    ([-1], r"rows \[-1\] outside"),
    ([], "selects no rows"),
    ([0.5], "integer row indices"),
])
def test_repeated_loo_checks_indices(data, indices, message):
    # before: row 99 or -1 silently compared with nothing (effect 0 or the wrong row), [] ended
    # in numpy's "need at least one array to stack"
    X, y, _ = data
    with pytest.raises(ValueError, match=message):
        repeated_leave_one_out(SGD, X, y, X[:3], y[:3], indices=indices, n_repeats=2)


def test_repeated_loo_takes_a_boolean_mask(data):
    # before: a mask was iterated as the rows False and True, i.e. rows 0 and 1
    X, y, _ = data
    mask = np.zeros(30, dtype=bool)
    mask[[3, 7]] = True
    by_mask = repeated_leave_one_out(SGD, X, y, X[:3], y[:3], indices=mask, n_repeats=2,
                                     random_state=0)
    by_rows = repeated_leave_one_out(SGD, X, y, X[:3], y[:3], indices=[3, 7], n_repeats=2,
                                     random_state=0)
    np.testing.assert_array_equal(by_mask.effect, by_rows.effect)
    assert np.abs(by_rows.effect).max() > 0


def test_repeated_loo_refuses_removing_a_whole_class(data):
    # before: scikit-learn's "number of classes has to be greater than one" from a refit
    X, _, _ = data
    y = np.r_[1, np.zeros(29, int)]
    with pytest.raises(ValueError, match=r"rows \[0\] are the only rows of their class"):
        repeated_leave_one_out(SGD, X, y, X[:3], y[:3], indices=[0], n_repeats=2)


def test_repeated_loo_validates_paired_and_columns(data, frames):
    # before: paired="no" was taken as True; a reordered X_test silently gave other effects
    X, y, _ = data
    with pytest.raises((ValueError, TypeError), match="'paired' parameter"):
        repeated_leave_one_out(SGD, X, y, X[:3], y[:3], indices=[0], n_repeats=2, paired="no")
    frame, reordered, y = frames
    with pytest.raises(ValueError, match="X_test has the same columns in another order"):
        repeated_leave_one_out(SGD, frame, y, reordered, y, indices=[0], n_repeats=2)


# --- representer_points --------------------------------------------------------------------


def test_representer_points_validate_params(data):
    # before: "logistic_regression_adapter() got an unexpected keyword argument 'params'"
    X, y, _ = data
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="params='last' selects layers of a network"):
        representer_points(model, X, y, X[:3], params="last")
    with pytest.raises((ValueError, TypeError), match="'params' parameter of representer_points"):
        representer_points(model, X, y, X[:3], params="first")


def test_representer_points_check_columns(frames):
    # before: a reordered X_test silently gave another decomposition
    frame, reordered, y = frames
    model = LogisticRegression().fit(frame, y)
    with pytest.raises(ValueError, match="X_test has the same columns in another order than "
                                         "the LogisticRegression was fitted on"):
        representer_points(model, frame, y, reordered)
    with pytest.raises(ValueError, match="X has the same columns in another order"):
        representer_points(model, frame[["b", "a", "c"]], y, frame)


# --- TrajectoryInfluence -------------------------------------------------------------------


def test_trajectory_influence_checks_test_columns(frames):
    # before: a reordered X_test silently gave other scores
    frame, reordered, y = frames
    trajectory = TrajectoryInfluence(SGD, random_state=0).fit(frame, y)
    assert np.isfinite(trajectory.influence(frame[:4], y[:4])).all()
    with pytest.raises(ValueError, match="X_test has the same columns in another order than "
                                         "the TrajectoryInfluence was fitted on"):
        trajectory.influence(reordered[:4], y[:4])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
def test_trajectory_influence_predicts_only_on_its_columns(frames, method):
    # before: a reordered frame was passed through to the fitted SGD model: other predictions
    frame, reordered, y = frames
    trajectory = TrajectoryInfluence(SGD, random_state=0).fit(frame, y)
    arguments = (y,) if method == "score" else ()
    getattr(trajectory, method)(frame, *arguments)
    with pytest.raises(ValueError, match="feature names should match"):
        getattr(trajectory, method)(reordered, *arguments)


@pytest.mark.parametrize(("target", "message"), [("single", "single class"),
                                                 ("continuous", "continuous values")])
def test_trajectory_influence_checks_classifier_targets(data, target, message):
    # before: scikit-learn's partial_fit errors ("number of classes has to be greater than
    # one", "Unknown label type")
    X, _, y_reg = data
    y = np.zeros(30, int) if target == "single" else y_reg
    with pytest.raises(ValueError, match=message):
        TrajectoryInfluence(SGD).fit(X, y)


def test_trajectory_influence_takes_device_strings_like_the_other_entry_points(data):
    # before: "cuda:0" was refused by a narrower constraint than every other entry point's
    X, y, _ = data
    with pytest.raises((ValueError, TypeError), match="'device' parameter"):
        TrajectoryInfluence(SGD, device="tpu").fit(X, y)
    trajectory = TrajectoryInfluence(SGD, device="cpu:0", random_state=0).fit(X, y)
    assert np.isfinite(trajectory.self_influence()).all()


# --- model adapters ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def positive_data(data):
    X, _, _ = data
    y = np.exp(0.3 * X[:, 0]) + 0.1
    return X, y


@pytest.mark.parametrize(("model", "bad", "message"), [
    (PoissonRegressor(), -1.0, r"PoissonRegressor \(power=1\) needs non-negative targets"),
    (GammaRegressor(), 0.0, r"GammaRegressor \(power=2\) needs positive targets"),
    (TweedieRegressor(power=1.5), -1.0, r"power=1.5\) needs non-negative targets"),
])
def test_glm_targets_outside_the_deviance_domain(positive_data, model, bad, message):
    # before: a finite but meaningless answer (Poisson, Tweedie), NaN from leave_one_out (Gamma)
    X, y = positive_data
    model = model.fit(X, y)
    assert np.isfinite(influence(model, X, y, X[:3], y[:3])).all()
    with pytest.raises(ValueError, match=message):
        influence(model, X, y, X[:3], np.r_[bad, y[1:3]])
    with pytest.raises(ValueError, match=message):
        influence(model, X, np.r_[bad, y[1:]], X[:3], y[:3])
    with pytest.raises(ValueError, match=message):
        leave_one_out(model, X, y, X[:3], np.r_[bad, y[1:3]], indices=[0])


def test_transformed_target_outside_func_domain(positive_data):
    # before: NaN influence without a word (log of a negative target)
    X, y = positive_data
    model = TransformedTargetRegressor(Ridge(), func=np.log, inverse_func=np.exp).fit(X, y)
    assert np.isfinite(influence(model, X, y, X[:3], y[:3])).all()
    with pytest.raises(ValueError, match=r"maps targets \[-1.0\] to NaN or infinity"):
        influence(model, X, y, X[:3], np.r_[-1.0, y[1:3]])


@pytest.mark.filterwarnings("ignore::skinfluence.DiagnosticWarning")
def test_mlp_classifier_names_unseen_labels(data):
    # before: "y_test holds class indices [2.0] outside the model's 2 classes" for labels 5, 6
    X, y, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=300, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"labels \[5, 6\] that the fitted model never saw"):
        influence(model, X, y, X[:3], [5, 6, 0])


@pytest.mark.parametrize("method", ["knn", "banzhaf"])
def test_data_values_refuse_validation_labels_of_another_kind(data, method):
    # before: all-zero values without a word (knn) or scikit-learn's "Mix of label input
    # types" from inside a worker (banzhaf)
    X, y, _ = data
    model = KNeighborsClassifier(3) if method == "knn" else LogisticRegression()
    with pytest.raises(ValueError, match=r"y_val holds labels \[0, 1\], none of them a class"):
        data_values(model, X, np.array(["a", "b"])[y], X[:6], [0, 1, 0, 1, 0, 1],
                    method=method, budget=4)


# --- InfluenceTrimmer ----------------------------------------------------------------------


def test_trimmer_refuses_a_classifier_on_a_continuous_target(data):
    # before: scikit-learn's "Unknown label type: continuous" from the scorer's refit
    X, _, y = data
    with pytest.raises(ValueError, match="y holds continuous values, but LogisticRegression"):
        InfluenceTrimmer(LogisticRegression(), budget=2).fit(X, y)


def test_trimmer_names_classes_lost_by_downsampling(data):
    # before: scikit-learn's "needs samples of at least 2 classes" from a joblib worker
    X, _, _ = data
    y = np.r_[np.zeros(27, int), 1, 1, 1]
    with pytest.raises(ValueError, match=r"Classes \[1\] \(with \[3\] rows\) are missing"):
        InfluenceTrimmer(LogisticRegression(), method="downsampling", budget=2,
                         random_state=0).fit(X, y, X[:6], [0, 1, 0, 1, 0, 1])


@pytest.mark.parametrize("method", ["tracin", "fine"])
def test_cli_does_not_offer_trajectory_methods(tmp_path, data, capsys, method):
    # before: --method tracin was listed, then failed: "LogisticRegression cannot be trained
    # step by step" (no CLI model records a trajectory)
    from skinfluence.__main__ import main

    X, y, _ = data
    path = tmp_path / "data.csv"
    pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=y).to_csv(path, index=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["trim", str(path), "--target", "label", "--method", method])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"invalid choice: '{method}'" in err


def test_leave_one_out_takes_sparse_x(data):
    # before: len(X) on the CSR matrix, "sparse array length is ambiguous"
    import scipy.sparse as sp

    X, _, y = data
    model = Ridge().fit(X, y)
    options = {"indices": [0, 4]}
    dense = leave_one_out(model, X, y, X[:3], y[:3], **options)
    np.testing.assert_allclose(leave_one_out(model, sp.csr_matrix(X), y, X[:3], y[:3],
                                             **options), dense, rtol=1e-10)
    options = {**options, "n_repeats": 2, "random_state": 0}
    dense = repeated_leave_one_out(model, X, y, X[:3], y[:3], **options).effect
    np.testing.assert_allclose(repeated_leave_one_out(model, sp.csr_matrix(X), y, X[:3], y[:3],
                                                      **options).effect, dense, rtol=1e-10)
