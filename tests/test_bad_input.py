"""One test per bad-input example of issue 12: a clear error or diagnostic, never a silent wrong
answer or a traceback from deep inside torch, numpy or joblib."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

import skinfluence
from skinfluence import (
    ActiveLearningSelector,
    CoxInfluence,
    CoxRegression,
    DiagnosticWarning,
    InfluenceTrimmer,
    MultitaskInfluence,
    MultitaskRidge,
    TorchModel,
    active_learning_curve,
    leave_one_task_out,
)
from skinfluence.backend import CholeskySolver, register_adapter, resolve_device
from skinfluence.backend.linear import linear_objective
from skinfluence.multitask._synthetic import make_multitask_regression
from skinfluence.survival._datasets import load_survival_dataset


@pytest.fixture(scope="module")
def ridge_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(size=40)
    return Ridge(alpha=1.0).fit(X, y), X, y


@pytest.fixture(scope="module")
def tasks_data():
    X, y, tasks, _ = make_multitask_regression(n_tasks=4, n_features=3, n_samples_per_task=15,
                                               random_state=0)
    return X, y, tasks


def _no_diagnostics(func):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagnosticWarning)
        return func()


# ------------------------------------------------------------------ silent wrong answers
def test_multitask_influence_rejects_nan_in_y_val(tasks_data):
    X, y, tasks = tasks_data
    y_val = y.copy()
    y_val[4] = np.nan
    with pytest.raises(ValueError, match=r"y_val contains NaN or infinity \(rows \[4\]"):
        MultitaskInfluence(MultitaskRidge()).fit(X, y, tasks, X, y_val, tasks)
    y_val[4] = np.inf
    with pytest.raises(ValueError, match="y_val contains NaN or infinity"):
        leave_one_task_out(MultitaskRidge(), X, y, tasks, X, y_val, tasks)


def test_leave_one_task_out_validation_tasks_must_match(tasks_data):
    X, y, tasks = tasks_data
    without_task_2 = tasks != 2
    with pytest.raises(ValueError, match=r"tasks \[2\] have no validation rows"):
        leave_one_task_out(MultitaskRidge(), X, y, tasks, X[without_task_2], y[without_task_2],
                           tasks[without_task_2])
    with pytest.raises(ValueError, match=r"tasks_val holds tasks \[9\] that no training row"):
        leave_one_task_out(MultitaskRidge(), X, y, tasks, X, y, np.where(tasks == 3, 9, tasks))


def test_cox_constant_column_is_named():
    X, y = load_survival_dataset("whas500")
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])]).assign(site=1.0)
    with pytest.raises(ValueError, match=r"constant columns \(site\).*alpha > 0"):
        CoxRegression().fit(frame, y)
    # newton influence reports the column instead of blaming rows for separating the events
    with pytest.raises(ValueError, match=r"constant columns \(site\)"):
        CoxInfluence(method="newton").fit(frame, y)
    # with a penalty the column is harmless: a zero coefficient and finite effects
    model = CoxRegression(alpha=1.0).fit(frame, y)
    assert abs(model.coef_[-1]) < 1e-12 and np.isfinite(model.coef_).all()


def test_influence_checks_data_frame_column_names(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    names = [f"f{j}" for j in range(Xtr.shape[1])]
    train, test = pd.DataFrame(Xtr, columns=names), pd.DataFrame(Xte, columns=names)
    model = LogisticRegression(solver="newton-cholesky").fit(train, ytr)
    effects = skinfluence.influence(model, train, ytr, test, yte)
    np.testing.assert_array_equal(effects, skinfluence.influence(model, Xtr, ytr, Xte, yte))
    with pytest.raises(ValueError, match="X_test has the same columns in another order"):
        skinfluence.influence(model, train, ytr, test[names[::-1]], yte)
    with pytest.raises(ValueError, match=r"X has columns \['g0'\] it never saw"):
        skinfluence.self_influence(model, train.rename(columns={"f0": "g0"}), ytr)


def test_tiny_subsample_is_an_error_not_row_order(breast_cancer):
    Xtr, _, ytr, _ = breast_cancer
    trimmer = InfluenceTrimmer(LogisticRegression(), method="fi", subsample=1e-3, budget=10,
                               random_state=0)
    with pytest.raises(ValueError, match="subsample=0.001 scores 6 of .* raise subsample"):
        trimmer.fit(Xtr[:, :3], ytr)


def test_active_learning_curve_rejects_nan_oracle_labels(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    y_pool = ytr.astype(float)
    y_pool[10] = np.nan
    with pytest.raises(ValueError, match=r"y_pool contains NaN or infinity \(rows \[10\]"):
        active_learning_curve(ActiveLearningSelector(LogisticRegression()), Xtr, y_pool, Xte,
                              yte, n_initial=10, n_rounds=2)
    with pytest.raises(ValueError, match="n_initial=400 plus n_rounds=2 .* pool of 398 rows"):
        active_learning_curve(ActiveLearningSelector(LogisticRegression()), Xtr, ytr, Xte,
                              yte, n_initial=400, n_rounds=2)
    with pytest.raises(ValueError, match="ask for 410 labels from a pool of 398 rows"):
        active_learning_curve(ActiveLearningSelector(LogisticRegression()), Xtr, ytr, Xte,
                              yte, n_initial=10, n_rounds=400)
    with pytest.raises(ValueError, match="'n_rounds' parameter of active_learning_curve"):
        active_learning_curve(ActiveLearningSelector(LogisticRegression()), Xtr, ytr, Xte,
                              yte, n_initial=10, n_rounds=-1)


def test_leave_one_out_notices_a_model_fitted_on_other_data(ridge_data):
    model, X, y = ridge_data
    other = np.random.default_rng(1).normal(size=X.shape)
    with pytest.warns(DiagnosticWarning, match="does not look converged on this data"):
        skinfluence.leave_one_out(model, other, y, X[:3], y[:3], indices=[0])
    _no_diagnostics(lambda: skinfluence.leave_one_out(model, X, y, X[:3], y[:3], indices=[0]))


# ------------------------------------------------------------------ former tracebacks
@pytest.mark.parametrize("view", [
    lambda X, y: (X[::-1], y[::-1]),
    lambda X, y: (np.flip(X), y[::-1]),
    lambda X, y: (X[:, ::-1], y),
    lambda X, y: (pd.DataFrame(X).iloc[:, ::-1], y),
], ids=["rows", "np.flip", "columns", "iloc"])
def test_negative_strides(ridge_data, view):
    _, X, y = ridge_data
    Xv, yv = view(X, y)
    Xc = np.ascontiguousarray(np.asarray(Xv))
    model = Ridge(alpha=1.0).fit(Xc, yv)
    before = np.asarray(Xv).copy()
    effects = skinfluence.influence(model, Xv, yv, Xv, yv, method="newton")
    np.testing.assert_array_equal(effects, skinfluence.influence(model, Xc, yv, Xc, yv,
                                                                 method="newton"))
    np.testing.assert_array_equal(np.asarray(Xv), before)


def test_trimmer_cannot_remove_a_whole_class():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)), np.r_[np.zeros(38, int), 1, 1]
    trimmer = InfluenceTrimmer(LogisticRegression(), budget=6, method="self").fit(X, y)
    assert trimmer.budget_ == 6  # the budget is spent on the large class, not the rare one
    assert np.bincount(y[trimmer.support_]).tolist() == [33, 1]


def test_leave_one_out_indices(ridge_data):
    model, X, y = ridge_data
    mask = np.zeros(len(X), dtype=bool)
    mask[[2, 5]] = True
    by_mask = skinfluence.leave_one_out(model, X, y, X[:3], y[:3], indices=mask)
    np.testing.assert_array_equal(by_mask, skinfluence.leave_one_out(model, X, y, X[:3], y[:3],
                                                                     indices=[2, 5]))
    for bad, message in [([3, 40], r"rows \[40\] outside \[0, 40\)"), ([-1], r"rows \[-1\]"),
                         ([], "selects no rows"), (np.zeros(40, bool), "selects no rows"),
                         (mask[:10], "boolean mask of shape"), ([0.5], "integer row indices")]:
        with pytest.raises(ValueError, match=message):
            skinfluence.leave_one_out(model, X, y, X[:3], y[:3], indices=bad)


@pytest.mark.parametrize("damping", [-1.0, np.nan])
def test_damping_must_be_non_negative(ridge_data, damping):
    model, X, y = ridge_data
    with pytest.raises(ValueError, match=r"'damping' parameter of influence must be .*\[0.0, inf\).*Got"):
        skinfluence.influence(model, X, y, X[:2], y[:2], damping=damping)


def test_unknown_device(ridge_data):
    model, X, y = ridge_data
    with pytest.raises(ValueError, match="'device' parameter of self_influence.*'tpu'"):
        skinfluence.self_influence(model, X, y, device="tpu")
    with pytest.raises(ValueError, match="'device' parameter of CoxRegression.*'tpu'"):
        CoxRegression(device="tpu").fit(*load_survival_dataset("whas500"))
    with pytest.raises(ValueError, match="device='tpu' is not a device .* 'cuda:N'"):
        resolve_device("tpu")


def test_params_last_on_a_linear_model(ridge_data):
    model, X, y = ridge_data
    with pytest.raises(ValueError, match="params='last' selects layers .* Ridge has no layers"):
        skinfluence.self_influence(model, X, y, params="last")


def test_mixed_task_label_types(tasks_data):
    X, y, tasks = tasks_data
    mixed = np.where(tasks == 0, "zero", tasks).astype(object)
    mixed[tasks != 0] = tasks[tasks != 0]
    with pytest.raises(ValueError, match="tasks mixes label types \\(number, string\\)"):
        MultitaskRidge().fit(X, y, mixed)


@pytest.mark.filterwarnings("ignore::skinfluence.backend.diagnostics.DiagnosticWarning")
def test_torch_model_class_index_out_of_range():
    torch.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(30, 3))
    model = TorchModel(torch.nn.Linear(3, 2), loss="cross_entropy", weight_decay=1e-2)
    y = np.r_[np.zeros(15, int), np.ones(14, int), 2]
    with pytest.raises(ValueError, match=r"class indices \[2\] outside the model's 2 classes"):
        skinfluence.self_influence(model, X, y)
    with pytest.raises(ValueError, match=r"y_test holds class indices \[5\]"):
        skinfluence.influence(model, X, y.clip(0, 1), X[:2], [0, 5])
    with pytest.raises(TypeError, match="a TorchModel holds a trained module"):
        skinfluence.leave_one_out(model, X, y.clip(0, 1), X[:2], [0, 1])


class _PlainLeastSquares:
    """A user's model: ``fit`` but no scikit-learn base class (no ``__sklearn_tags__``)."""

    def fit(self, X, y):
        self.coef_ = np.linalg.lstsq(X, y, rcond=None)[0]
        return self


@register_adapter(_PlainLeastSquares)
def _plain_adapter(model, X, y, sample_weight, device, dtype):
    weights = np.ones(len(y)) if sample_weight is None else sample_weight
    return linear_objective(model.coef_[None], None, X, y, weights, 1.0, kind="squared",
                            l2=0.0, device=device, dtype=dtype)


def test_adapter_for_a_plain_class_is_reached(ridge_data):
    _, X, y = ridge_data
    plain = _PlainLeastSquares().fit(X, y)
    reference = LinearRegression(fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(skinfluence.self_influence(plain, X, y),
                               skinfluence.self_influence(reference, X, y), rtol=1e-8)


# ------------------------------------------------------------------ diagnostics
def test_separation_without_penalty_warns(breast_cancer):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
    model = LogisticRegression(C=np.inf, max_iter=10_000).fit(X, y)
    with pytest.warns(DiagnosticWarning, match="classifies every training row correctly.*C < inf"):
        skinfluence.self_influence(model, X, y)
    penalised = LogisticRegression(solver="newton-cholesky", tol=1e-10).fit(X, y)
    _no_diagnostics(lambda: skinfluence.self_influence(penalised, X, y))


def test_fewer_rows_than_parameters_without_penalty_warns():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 8)), rng.normal(size=5)
    with pytest.warns(DiagnosticWarning, match="9 parameters but only 5 training rows"):
        skinfluence.self_influence(LinearRegression().fit(X, y), X, y)


def test_constant_and_duplicated_columns_are_named():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(50, 3)), columns=["a", "b", "c"])
    frame["one"], frame["b_again"] = 1.0, frame["b"]
    y = frame["a"].to_numpy() + rng.normal(size=50)
    model = LinearRegression().fit(frame, y)
    with pytest.warns(DiagnosticWarning) as record:
        skinfluence.self_influence(model, frame, y, damping=1e-6)
    text = " ".join(str(w.message) for w in record)
    assert "constant columns (one)" in text and "duplicated columns (b_again" in text


def test_large_feature_scale_is_not_reported_as_unconverged(diabetes):
    Xtr, _, ytr, _ = diabetes
    X = Xtr * 1e10 + 1e10  # features of size 1e10: the old check read round-off as 3e-2
    model = Ridge(alpha=1.0).fit(X, ytr)
    effects = _no_diagnostics(lambda: skinfluence.influence(model, X, ytr, X[:5], ytr[:5],
                                                            method="newton"))
    # exact for ridge: the Newton step reproduces retraining
    real = skinfluence.leave_one_out(model, X, ytr, X[:5], ytr[:5], indices=np.arange(8))
    np.testing.assert_allclose(effects[:8], real, rtol=1e-5, atol=1e-6 * np.abs(real).max())


def test_indefinite_hessian_reports_eigenvalue_and_damping():
    H = torch.diag(torch.tensor([2.0, 1.0, -0.5], dtype=torch.float64))
    with pytest.warns(DiagnosticWarning, match=r"smallest eigenvalue -0\.5.*adding damping 0\.5"):
        CholeskySolver(H)


# ------------------------------------------------------------------ found by further probes
def test_more_probes_get_clear_errors(ridge_data, tasks_data):
    model, X, y = ridge_data
    with pytest.raises(ValueError, match=r"y must be one-dimensional .* shape \(40, 2\)"):
        skinfluence.influence(model, X, np.c_[y, y], X[:2], y[:2])
    with pytest.raises(ValueError, match="dtype <U.* must be numeric"):
        skinfluence.self_influence(model, X, np.array(["a", "b"] * 20))
    with pytest.raises(ValueError, match=r"TorchModel cannot be evaluated on X of shape \(40, 4\)"):
        skinfluence.self_influence(TorchModel(torch.nn.Linear(5, 2)), X, (y > 0).astype(int))
    with pytest.raises(ValueError, match="The Hessian is zero.*damping > 0"):
        skinfluence.versatile_influence(lambda t, m: t.sum() * m.sum(), [1.0, 2.0], 3)
    with pytest.raises(TypeError, match="no cox adapter for Ridge"):
        CoxInfluence(Ridge(), method="if").fit(*load_survival_dataset("whas500"))
    X_t, y_t, tasks = tasks_data
    with pytest.raises(ValueError, match="tasks contains NaN labels"):
        MultitaskRidge().fit(X_t, y_t, np.where(tasks == 0, np.nan, tasks))


def test_trimmer_checks_validation_column_names(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    names = [f"f{j}" for j in range(Xtr.shape[1])]
    train, val = pd.DataFrame(Xtr, columns=names), pd.DataFrame(Xte, columns=names)
    trimmer = InfluenceTrimmer(LogisticRegression(), method="influence", budget=3)
    with pytest.raises(ValueError, match="X_val has the same columns in another order"):
        trimmer.fit(train, ytr, val[names[::-1]], yte)
    assert len(trimmer.fit(train, ytr, val, yte).removed_) == 3
