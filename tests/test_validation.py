"""Bad input gets a clear error; user arrays are never modified."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, Ridge

import skinfluence


@pytest.fixture
def fitted(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    return LogisticRegression(solver="newton-cholesky").fit(Xtr, ytr), Xtr, Xte, ytr, yte


def test_unsupported_estimator_lists_supported_and_how_to_register(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    model = KMeans(n_clusters=2, n_init=1).fit(Xtr)
    with pytest.raises(TypeError, match="LogisticRegression.*register_adapter"):
        skinfluence.influence(model, Xtr, ytr, Xte, yte)


def test_unfitted_estimator(breast_cancer):
    Xtr, Xte, ytr, yte = breast_cancer
    with pytest.raises(NotFittedError):
        skinfluence.influence(LogisticRegression(), Xtr, ytr, Xte, yte)


@pytest.mark.parametrize("where", ["X", "X_test"])
def test_nan_and_inf_are_rejected(fitted, where):
    model, Xtr, Xte, ytr, yte = fitted
    data = {"X": Xtr.copy(), "X_test": Xte.copy()}
    data[where][3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        skinfluence.influence(model, data["X"], ytr, data["X_test"], yte)
    data[where][3, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        skinfluence.influence(model, data["X"], ytr, data["X_test"], yte)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf_targets_are_rejected(diabetes, value):
    Xtr, Xte, ytr, yte = diabetes
    model = Ridge().fit(Xtr, ytr)
    bad = yte.copy()
    bad[[2, 4]] = value
    with pytest.raises(ValueError, match=r"y_test contains NaN or infinity \(rows \[2, 4\]\)"):
        skinfluence.influence(model, Xtr, ytr, Xte, bad)
    bad = ytr.copy()
    bad[7] = value
    with pytest.raises(ValueError, match=r"y contains NaN or infinity \(rows \[7\]\)"):
        skinfluence.self_influence(model, Xtr, bad)


def test_mismatched_lengths_and_features(fitted):
    model, Xtr, Xte, ytr, yte = fitted
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        skinfluence.influence(model, Xtr, ytr[:-1], Xte, yte)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        skinfluence.influence(model, Xtr, ytr, Xte, yte[:-1])
    with pytest.raises(ValueError, match="features"):
        skinfluence.influence(model, Xtr, ytr, Xte[:, :5], yte)
    with pytest.raises(ValueError, match="needs y_test"):
        skinfluence.influence(model, Xtr, ytr, Xte)


def test_single_class(fitted):
    model, Xtr, Xte, ytr, yte = fitted
    with pytest.raises(ValueError, match="single class"):
        skinfluence.influence(model, Xtr, np.ones_like(ytr), Xte, yte)


def test_unknown_labels_and_bad_options(fitted):
    model, Xtr, Xte, ytr, yte = fitted
    with pytest.raises(ValueError, match="never saw"):
        skinfluence.influence(model, Xtr, ytr + 5, Xte, yte)
    with pytest.raises(ValueError, match="'method' parameter.*magic"):
        skinfluence.influence(model, Xtr, ytr, Xte, yte, method="magic")
    with pytest.raises(ValueError, match="'target' parameter.*accuracy"):
        skinfluence.influence(model, Xtr, ytr, Xte, yte, target="accuracy")
    with pytest.raises(ValueError, match="'solver' parameter.*qr"):
        skinfluence.influence(model, Xtr, ytr, Xte, yte, solver="qr")


def test_user_arrays_are_not_modified(diabetes):
    Xtr, Xte, ytr, yte = diabetes
    copies = [a.copy() for a in (Xtr, Xte, ytr, yte)]
    model = Ridge().fit(Xtr, ytr)
    skinfluence.influence(model, Xtr, ytr, Xte, yte, method="newton")
    skinfluence.leave_one_out(model, Xtr, ytr, Xte, yte, indices=[0, 1])
    for before, after in zip(copies, (Xtr, Xte, ytr, yte)):
        np.testing.assert_array_equal(before, after)
