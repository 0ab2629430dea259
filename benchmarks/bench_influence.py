"""All-row influence of a logistic regression on 50 test rows: skinfluence against plain numpy.

For each n the script times ``skinfluence.influence`` (per-row gradients through torch.func,
Hessian, Cholesky solve, chunked products) and, in the same run, a direct numpy reference
(explicit per-row gradient matrix, Hessian, solve, one matrix product), checks that both agree,
and prints the time ratio and the peak resident memory of each.

Run: ``python benchmarks/bench_influence.py [--sizes 1000 10000 50000 200000]``
"""

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

import skinfluence

D, N_TEST = 100, 50


def make_data(n, rng):
    X = rng.standard_normal((n + N_TEST, D))
    w = rng.standard_normal(D) / np.sqrt(D)
    y = (rng.random(n + N_TEST) < 1 / (1 + np.exp(-2 * X @ w))).astype(int)
    return X[:n], y[:n], X[n:], y[n:]


def numpy_reference(model, X, y, X_test, y_test):
    C = model.C
    A = np.hstack([X, np.ones((len(X), 1))])
    B = np.hstack([X_test, np.ones((len(X_test), 1))])
    theta = np.r_[model.coef_.ravel(), model.intercept_]
    p = 1 / (1 + np.exp(-A @ theta))
    q = 1 / (1 + np.exp(-B @ theta))
    G = C * (p - y)[:, None] * A  # per-row training gradients
    H = C * (A * (p * (1 - p))[:, None]).T @ A
    H[:D, :D] += np.eye(D)  # 0.5 ||w||^2, intercept unpenalised
    test_grads = (q - y_test)[:, None] * B
    return G @ np.linalg.solve(H, test_grads.T)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(n, which, repeat):
    """Time one implementation in this (fresh) process; print seconds, peak RSS, a checksum."""
    X, y, X_test, y_test = make_data(n, np.random.default_rng(n))
    model = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-10).fit(X, y)
    base_rss = peak_rss_mb()
    if which == "numpy":
        fn = lambda: numpy_reference(model, X, y, X_test, y_test)
    else:
        fn = lambda: skinfluence.influence(model, X, y, X_test, y_test, device="cpu")
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    np.save(f"/tmp/bench_influence_{which}_{n}.npy", out)
    print(best, peak_rss_mb() - base_rss)


def measure(n, which, repeat):
    out = subprocess.run([sys.executable, __file__, "--one", str(n), which, "--repeat",
                          str(repeat)], capture_output=True, text=True, check=True)
    seconds, extra_mb = map(float, out.stdout.split())
    return seconds, extra_mb, np.load(f"/tmp/bench_influence_{which}_{n}.npy")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000, 200000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(int(args.one[0]), args.one[1], args.repeat)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, d={D}, {N_TEST} test rows, best of {args.repeat}; "
          "each implementation in its own process (memory = peak RSS above the data)")
    print(f"{'n':>8} {'numpy s':>9} {'skinfl s':>9} {'ratio':>6} {'max rel err':>12} "
          f"{'numpy MB':>9} {'skinfl MB':>10}")
    for n in args.sizes:
        t_np, mb_np, ref = measure(n, "numpy", args.repeat)
        t_sk, mb_sk, ours = measure(n, "skinfluence", args.repeat)
        err = np.abs(ours - ref).max() / np.abs(ref).max()
        print(f"{n:>8} {t_np:>9.3f} {t_sk:>9.3f} {t_sk / t_np:>6.2f} {err:>12.1e} "
              f"{mb_np:>9.0f} {mb_sk:>10.0f}")


if __name__ == "__main__":
    main()
