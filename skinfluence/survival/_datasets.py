"""Survival datasets that ship inside scikit-survival and lifelines, ready for a Cox model."""

import numpy as np

from ._cox import split_survival_frame

#: name -> package that bundles it
DATASETS = {"whas500": "sksurv", "gbsg2": "sksurv", "flchain": "sksurv", "veterans_lung_cancer":
            "sksurv", "rossi": "lifelines"}
#: columns recorded only once the event has happened
_LEAKS = {"flchain": ["chapter"]}


def load_survival_dataset(name, *, standardize=True):
    """Load a bundled survival dataset as a float feature matrix and a survival target.

    Categorical columns are one-hot encoded (scikit-survival's ``encode_categorical``); nothing is
    downloaded. Rows with a missing value or a follow-up time of zero (which a Cox model here
    refuses) are dropped: that only touches ``"flchain"``, which also loses its ``chapter``
    column (the cause of death: recorded only for the deaths, so it reveals the event). Of its
    7874 rows, 6521 remain (1350 lack ``creatinine``, 3 have time 0).

    Parameters
    ----------
    name : {"whas500", "gbsg2", "flchain", "veterans_lung_cancer", "rossi"}
        The first four ship with scikit-survival, ``"rossi"`` with lifelines.
    standardize : bool, default=True
        Centre each column and scale it to unit (population) standard deviation.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : structured array with fields (event, time)
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}.")
    if name == "rossi":
        from lifelines.datasets import load_rossi

        X, y = split_survival_frame(load_rossi(), "week", "arrest")
    else:
        from sksurv import datasets
        from sksurv.column import encode_categorical

        X, y = getattr(datasets, f"load_{name}")()
        X = encode_categorical(X.drop(columns=_LEAKS.get(name, [])))
    time = y[y.dtype.names[1]]  # fields (event, time)
    complete = X.notna().all(axis=1).to_numpy() & (time > 0)
    X, y = np.asarray(X[complete], dtype=float), y[complete]
    if standardize:
        X = (X - X.mean(0)) / X.std(0)
    return X, y
