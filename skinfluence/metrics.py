"""Stability of influence scores across training runs (f-INE paper, section 1 and Fig. 8)."""

import itertools
from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array

from ._validation import public

#: A fraction of the rows: ``top`` of both metrics.
FRACTION = Interval(Real, 0, 1, closed="right")


def _check_runs(score_runs):
    runs = check_array(score_runs, dtype=np.float64)
    if runs.shape[0] < 2:
        raise ValueError(f"score_runs holds {runs.shape[0]} run; stability needs at least two "
                         "rows (one per training run).")
    return runs


def _top_count(top, n):
    return max(1, round(top * n))


@public(score_runs=["array-like"], top=[FRACTION])
def consistency_score(score_runs, top=0.2):
    """Mean pairwise Jaccard similarity of the top-scored sets of several runs.

    Parameters
    ----------
    score_runs : array-like of shape (n_runs, n_samples)
        One row of scores per training run.
    top : float in (0, 1], default=0.2
        Fraction of rows with the highest scores forming each run's set.

    Returns
    -------
    float
        1 when every run selects the same rows, near ``top / (2 - top)`` for random scores.

    Examples
    --------
    >>> from skinfluence.metrics import consistency_score
    >>> consistency_score([[3, 2, 1, 0], [3, 1, 2, 0]], top=0.5)
    0.3333333333333333
    """
    runs = _check_runs(score_runs)
    k = _top_count(top, runs.shape[1])
    sets = [set(np.argsort(-row, kind="stable")[:k].tolist()) for row in runs]
    return float(np.mean([len(a & b) / len(a | b)
                          for a, b in itertools.combinations(sets, 2)]))


@public(score_runs=["array-like"], top=[FRACTION, None])
def mean_coefficient_of_variation(score_runs, top=None):
    """Average over rows of ``std_i / |mean_i|`` of the scores across runs (f-INE Fig. 8).

    Parameters
    ----------
    score_runs : array-like of shape (n_runs, n_samples)
    top : float in (0, 1], optional
        Average over the fraction ``top`` of rows with the highest mean score only (the paper
        reports it for several top fractions); default all rows.

    Returns
    -------
    float
        Rows whose mean score is exactly 0 are left out. Lower is more stable.
    """
    runs = _check_runs(score_runs)
    runs = runs / max(np.abs(runs).max(), np.finfo(float).tiny)  # scale-free; avoids overflow
    mean = runs.mean(0)
    rows = np.flatnonzero(mean != 0)
    if top is not None:
        rows = np.intersect1d(rows, np.argsort(-mean, kind="stable")[:_top_count(top, len(mean))])
    if rows.size == 0:
        raise ValueError(
            "Every selected row has a mean score of exactly 0 across the runs, so no "
            "coefficient of variation is defined; pass scores that are not all zero"
            f"{' or raise top' if top is not None else ''}."
        )
    return float(np.mean(runs.std(0)[rows] / np.abs(mean[rows])))
