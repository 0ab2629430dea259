"""One active-learning round per method: wall time at n_labeled=500, n_pool=5 000, d=64.

Synthetic 10-class data (``make_classification``, standardised), multinomial
``LogisticRegression`` (p = 10 * 65 parameters). Each method's ``query`` (fit on the labeled
rows + utilities of the whole pool) is timed ``REPEATS`` times after one warm-up call, the repeats
interleaving the methods; the table reports the median and the ratio to exact FI^active measured
in the same run. The subsampled
FI^active (Algorithm 8) is also compared with the exact one: overlap of the chosen batch and
Spearman correlation of the utilities.

Run: ``python benchmarks/bench_active.py`` (set ``torch.set_num_threads`` / ``OMP_NUM_THREADS``
to the cores you want to measure on).
"""

import time

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import ActiveLearningSelector

N_LABELED, N_POOL, N_FEATURES, N_CLASSES = 500, 5000, 64, 10
BATCH_SIZE, REPEATS = 50, 3
METHODS = [
    ("fi", {}),
    ("fi", {"subsample": 0.2}),
    ("iv", {}),
    ("bald", {}),
    ("uncertainty", {}),
    ("random", {}),
]


def main():
    X, y_true = make_classification(
        n_samples=N_LABELED + N_POOL, n_features=N_FEATURES, n_informative=32,
        n_redundant=16, n_classes=N_CLASSES, n_clusters_per_class=1, class_sep=1.0,
        random_state=0)
    X = StandardScaler().fit_transform(X)
    y = np.full(len(X), np.nan)
    y[:N_LABELED] = y_true[:N_LABELED]
    model = LogisticRegression(C=1.0, tol=1e-8, max_iter=5000)
    print(f"torch threads: {torch.get_num_threads()}; n_labeled={N_LABELED}, n_pool={N_POOL}, "
          f"d={N_FEATURES}, classes={N_CLASSES}, p={N_CLASSES * (N_FEATURES + 1)}")
    selectors = [ActiveLearningSelector(model, method=method, batch_size=BATCH_SIZE,
                                        random_state=0, **options)
                 for method, options in METHODS]
    for selector in selectors:
        selector.query(X, y)  # warm-up (first torch.func calls trace)
    # repeats interleave the methods, so that a busy machine slows all of them alike
    times = np.zeros((REPEATS, len(selectors)))
    for repeat in range(REPEATS):
        for k, selector in enumerate(selectors):
            start = time.perf_counter()
            chosen = selector.query(X, y)
            times[repeat, k] = time.perf_counter() - start
    rows, exact = [], None
    for k, (method, options) in enumerate(METHODS):
        utilities = selectors[k].utilities_[N_LABELED:]
        chosen = set(selectors[k].query_indices_)
        label = method + "".join(f", {key}={v}" for key, v in options.items())
        if method == "fi" and not options:
            exact = (np.median(times[:, k]), chosen, utilities)
        rows.append((label, np.median(times[:, k]), chosen, utilities))
    print("\n| method | round wall time (s) | speed-up vs exact fi | batch overlap with exact fi "
          "| Spearman vs exact fi |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, seconds, chosen, utilities in rows:
        overlap = len(chosen & exact[1]) / BATCH_SIZE
        rho = spearmanr(utilities, exact[2]).statistic
        print(f"| {label} | {seconds:.2f} | {exact[0] / seconds:.1f}x | {overlap:.2f} | {rho:.2f} |")
    breakdown(X, y, model)


def breakdown(X, y, model):
    """Where an exact FI^active round spends its time (the pieces ``query`` calls)."""
    from skinfluence.backend import make_objective, make_solver
    from skinfluence.influence.local import local_influence_factors

    labeled = ~np.isnan(y)
    X_lab, y_lab, X_pool = X[labeled], y[labeled].astype(int), X[~labeled]
    times = {}
    start = time.perf_counter()
    fitted = clone(model).fit(X_lab, y_lab)
    times["fit"] = time.perf_counter() - start
    start = time.perf_counter()
    objective = make_objective(fitted, X_lab, y_lab)
    solver = make_solver(objective)
    times["objective + Hessian + Cholesky"] = time.perf_counter() - start
    start = time.perf_counter()
    N = local_influence_factors(objective, solver)
    times["FI factors of the labeled rows"] = time.perf_counter() - start
    start = time.perf_counter()
    X_u = torch.as_tensor(X_pool, dtype=objective.theta.dtype)
    y_u = torch.as_tensor(objective.encode(fitted.predict(X_pool)), dtype=objective.theta.dtype)
    n, p, r = N.shape
    fi = (objective.row_grads(X_u, y_u) @ N.permute(1, 0, 2).reshape(p, n * r))
    fi.reshape(-1, n, r).pow(2).sum(2).sort(1)
    times["pool: gradients, FI of all pairs, sort"] = time.perf_counter() - start
    total = sum(times.values())
    print("\n| exact fi round, part | seconds | share |\n| --- | ---: | ---: |")
    for part, seconds in times.items():
        print(f"| {part} | {seconds:.2f} | {100 * seconds / total:.0f}% |")


if __name__ == "__main__":
    main()
