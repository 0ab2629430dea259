"""Cox influence: accuracy against real retraining, and speed at SUPPORT size.

Part 1 -- whas500 and gbsg2 (scikit-survival) and rossi (lifelines), standardised features,
one-hot categorical columns, ``CoxRegression()`` (Efron ties) fitted on every row: Pearson r and
least-squares slope of each method's removal effects on every row's log relative risk against
exact leave-one-out refits, and wall times.

Part 2 -- a synthetic problem of SUPPORT's size (n = 5 677 training rows, d = 14, 1 000 test
rows; the VIF paper took 12.3 s here): VIF for all training rows x all test rows, one-step
Newton, and brute-force retraining timed on a subset and extrapolated, all in the same run.

Run: ``python benchmarks/bench_cox.py`` (best of ``REPEATS`` timings).
"""

import time

import numpy as np
import torch

from skinfluence.survival import CoxInfluence, CoxRegression, load_survival_dataset
from skinfluence.survival._influence import _refit_without

REPEATS = 3
N_SUPPORT, D_SUPPORT, N_TEST = 5677, 14, 1000
N_LOO_SUBSET = 100  # rows refitted for the SUPPORT-size brute-force baseline


def best_of(fn, *args, repeats=REPEATS):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - start)
    return min(times), out


def pearson(a, b):
    return np.corrcoef(a.ravel(), b.ravel())[0, 1]


def slope(estimate, truth):
    return (estimate * truth).sum() / (estimate * estimate).sum()


def log_risk_effects(model, method, X, y, X_test):
    return CoxInfluence(model, method=method).fit(X, y).influence(X_test)


def datasets_table():
    print("| dataset | n | d | method | Pearson r vs LOO | slope | time (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in ("whas500", "gbsg2", "rossi"):
        X, y = load_survival_dataset(name)
        model = CoxRegression().fit(X, y)
        results = {}
        for method in ("loo", "newton", "vif", "if"):
            repeats = 1 if method == "loo" else REPEATS
            seconds, effects = best_of(log_risk_effects, model, method, X, y, X, repeats=repeats)
            results[method] = effects
            truth = results["loo"]
            r, s = pearson(effects, truth), slope(effects, truth)
            print(
                f"| {name} | {X.shape[0]} | {X.shape[1]} | {method} | {r:.4f} | {s:.3f} | {seconds:.3f} |"
            )


def make_support_like(random_state=0):
    """Cox data with SUPPORT's shape: 14 features (4 binary), about 68% events."""
    rng = np.random.default_rng(random_state)
    n = N_SUPPORT + N_TEST
    X = rng.normal(size=(n, D_SUPPORT))
    X[:, :4] = rng.random((n, 4)) < 0.3
    X = (X - X.mean(0)) / X.std(0)
    coef = rng.normal(scale=0.3, size=D_SUPPORT)
    event_time = rng.exponential(np.exp(-X @ coef))
    censor_time = rng.exponential(1.6, size=n)
    y = np.column_stack([np.minimum(event_time, censor_time), event_time <= censor_time])
    return X[:N_SUPPORT], y[:N_SUPPORT], X[N_SUPPORT:]


def support_table():
    X, y, X_test = make_support_like()
    fit_s, model = best_of(CoxRegression().fit, X, y)
    vif_s, vif = best_of(log_risk_effects, model, "vif", X, y, X_test)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    vif_one_thread_s, _ = best_of(log_risk_effects, model, "vif", X, y, X_test)
    torch.set_num_threads(threads)
    newton_s, newton = best_of(log_risk_effects, model, "newton", X, y, X_test, repeats=1)
    rows = np.random.default_rng(1).choice(N_SUPPORT, N_LOO_SUBSET, replace=False)
    start = time.perf_counter()
    refits, _ = _refit_without(
        X,
        y[:, 0],
        y[:, 1].astype(bool),
        np.zeros(D_SUPPORT),
        "efron",
        model.coef_,
        rows,
        model.tol,
        model.max_iter,
    )
    subset_s = time.perf_counter() - start
    loo_s = subset_s / N_LOO_SUBSET * N_SUPPORT
    truth = refits @ X_test.T

    print(
        f"\nSUPPORT-sized synthetic: n={N_SUPPORT}, d={D_SUPPORT}, {N_TEST} test rows, "
        f"{int(y[:, 1].sum())} events, torch threads={torch.get_num_threads()}"
    )
    print("| quantity | time (s) | Pearson r vs LOO (subset) | speed-up vs LOO |")
    print("| --- | --- | --- | --- |")
    print(f"| model fit (Newton) | {fit_s:.3f} | | |")
    print(
        f"| VIF, all rows x {N_TEST} test rows | {vif_s:.3f} | {pearson(vif[rows], truth):.4f} "
        f"| {loo_s / vif_s:.0f}x |"
    )
    print(f"| VIF, same, torch on 1 thread | {vif_one_thread_s:.3f} | | |")
    print(
        f"| one-step Newton, all rows x {N_TEST} test rows | {newton_s:.3f} | "
        f"{pearson(newton[rows], truth):.4f} | {loo_s / newton_s:.0f}x |"
    )
    print(
        f"| brute-force LOO ({N_LOO_SUBSET} refits timed: {subset_s:.2f} s, warm-started), "
        f"extrapolated to {N_SUPPORT} | {loo_s:.1f} | 1 | 1x |"
    )


if __name__ == "__main__":
    datasets_table()
    support_table()
