import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


def _split(X, y, scale=True, seed=0):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed)
    if scale:
        scaler = StandardScaler().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    return Xtr, Xte, ytr, yte


@pytest.fixture(scope="session")
def breast_cancer():
    return _split(*load_breast_cancer(return_X_y=True))


@pytest.fixture(scope="session")
def wine():
    return _split(*load_wine(return_X_y=True))


@pytest.fixture(scope="session")
def diabetes():
    return _split(*load_diabetes(return_X_y=True), scale=False)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
