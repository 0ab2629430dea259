"""MTIF at scale: K=100 tasks, d=100 features, 200 training rows per task.

Times (best of 5; the first call in a process also pays torch's one-off lazy import of its
functorch machinery, shown separately), in one run: every data-level influence on every task's
validation loss (n_train x K) plus the task-level matrix through the block-arrow Hessian; one
refit of the model; the brute-force
leave-one-out and leave-one-task-out times that refit implies; the dense Cholesky solve of the
whole Hessian as a second baseline. Accuracy is checked against real retraining on a sample.

Run: ``python benchmarks/bench_multitask.py`` (``--no-dense`` skips the dense baseline).
"""

import sys
import time

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from skinfluence.multitask import (
    MultitaskRidge,
    leave_one_row_out,
    leave_one_task_out,
    make_multitask_regression,
)
from skinfluence.multitask._influence import mtif_scores
from skinfluence.multitask._objective import multitask_objective

K, D, N_TRAIN, N_VAL = 100, 100, 200, 50
N_LOO_ROWS = 40  # rows checked against real leave-one-out
REPEATS = 5


def timed(fn, repeats=REPEATS):
    """First-call and best-of-``repeats`` wall times, and the result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times[0], min(times), out


def main():
    X, y, tasks, _ = make_multitask_regression(K, D, N_TRAIN + N_VAL, random_state=0)
    val = np.tile(np.arange(N_TRAIN + N_VAL) >= N_TRAIN, K)
    train = (X[~val], y[~val], tasks[~val])
    validation = (X[val], y[val], tasks[val])
    model = MultitaskRidge(lam=0.1)

    _, refit_s, fitted = timed(lambda: MultitaskRidge(lam=0.1).fit(*train))
    objective = multitask_objective(fitted, torch.device("cpu"))
    mtif_first_s, mtif_s, (data, task) = timed(lambda: mtif_scores(objective, *train, *validation))
    n = len(train[0])

    rows = np.random.default_rng(0).choice(n, N_LOO_ROWS, replace=False)
    start = time.perf_counter()
    loo = leave_one_row_out(model, *train, *validation, indices=rows)
    loo_s = time.perf_counter() - start
    start = time.perf_counter()
    loto = leave_one_task_out(model, *train, *validation)
    loto_s = time.perf_counter() - start

    own = tasks[~val][rows]
    mask = np.ones_like(loo, dtype=bool)
    mask[np.arange(len(rows)), own] = False  # between-task entries
    between = pearsonr(data[rows][mask], loo[mask])[0]
    within = pearsonr(data[rows, own], loo[np.arange(len(rows)), own])[0]
    rho = np.mean([spearmanr(np.delete(task[:, k], k), np.delete(loto[:, k], k))[0]
                   for k in range(K)])

    print(f"K={K} tasks, d={D}, {N_TRAIN} training rows per task (n={n}), "
          f"{torch.get_num_threads()} torch threads")
    print()
    print("| step | wall time (s) |")
    print("| --- | --- |")
    print(f"| MTIF: all data-level ({n} x {K}) + task-level ({K} x {K}) influences | "
          f"{mtif_s:.3f} (first call in the process: {mtif_first_s:.3f}) |")
    print(f"| one refit of MultitaskRidge | {refit_s:.3f} |")
    print(f"| brute-force leave-one-out, all rows (est. {n} refits) | {n * refit_s:.0f} |")
    print(f"| brute-force leave-one-task-out ({K} refits, measured) | {loto_s:.1f} |")
    print(f"| real leave-one-out on {N_LOO_ROWS} rows (measured) | {loo_s:.1f} |")
    if "--no-dense" not in sys.argv:
        dense_s = dense_baseline(objective, train, validation)
        print(f"| dense Cholesky of the whole Hessian ({K * (D + 1) + D} params) + solve | "
              f"{dense_s:.2f} |")
    print()
    print(f"speed-up over brute-force LOO: {n * refit_s / mtif_s:,.0f}x")
    print(f"data-level Pearson vs real LOO ({N_LOO_ROWS} rows x {K} targets): between-task "
          f"{between:.4f}, within-task {within:.4f}")
    print(f"task-level Spearman vs real LOTO, mean over {K} targets: {rho:.4f}")


def dense_baseline(objective, train, validation):
    """Assemble the full Hessian from its blocks and factor it densely (the naive route)."""
    X, y = objective.tensors(*train[:2])
    pos = np.searchsorted(objective.classes, train[2])
    A, B, Dg = objective.hessian_blocks(X, y, [np.flatnonzero(pos == k) for k in range(K)])
    start = time.perf_counter()
    H = torch.block_diag(*A, Dg)
    H[: K * (D + 1), K * (D + 1):] = B.reshape(K * (D + 1), D)
    H[K * (D + 1):, : K * (D + 1)] = B.reshape(K * (D + 1), D).T
    factor = torch.linalg.cholesky(H)
    torch.cholesky_solve(torch.randn(len(H), K, dtype=H.dtype), factor)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
