"""Data valuation throughput: utility evaluations per second, serial and with ``n_jobs=2``.

One utility evaluation fits a ``LogisticRegression`` on a subset of the training rows and scores
it on the validation rows (breast cancer, scaled). For Banzhaf (maximum sample reuse) and
permutation Shapley the script reports the evaluations per second with ``n_jobs=None`` (serial)
and ``n_jobs=2`` (loky processes, started before timing; the values are identical by
construction, which the script checks), and the correlation of the two methods' values.

pyDVL (``pip install pydvl``) is compared on the same utility when it is installed; it is never
a dependency (its releases pin older numpy versions, so installing it here would downgrade
numpy). Without it the comparison rows are skipped.

Run: ``python benchmarks/bench_valuation.py`` (``--quick``: fewer rows and evaluations, for CI).
"""

import argparse
import importlib.util
import time

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import data_values


def problem(n_train):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return X[:n_train], y[:n_train], X[300:], y[300:]


def run(method, data, budget, n_jobs):
    start = time.perf_counter()
    result = data_values(LogisticRegression(), *data, method=method, budget=budget,
                         n_jobs=n_jobs, random_state=0)
    return result, time.perf_counter() - start


def pydvl_row(data, budget):
    """pyDVL's Banzhaf (MSR) on the same utility, when pyDVL is installed."""
    if importlib.util.find_spec("pydvl") is None:
        print("pyDVL                 not installed: comparison skipped "
              "(pip install pydvl; it would downgrade numpy here)")
        return None
    from pydvl.utils import Dataset, Utility
    from pydvl.value import MaxUpdates, compute_msr_banzhaf_semivalues

    X, y, X_val, y_val = data
    utility = Utility(LogisticRegression(), Dataset(X, y, X_val, y_val), scorer="accuracy")
    start = time.perf_counter()
    values = compute_msr_banzhaf_semivalues(utility, done=MaxUpdates(budget), n_jobs=1)
    return values.values, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small problem, for CI")
    args = parser.parse_args()
    n_train, budget = (30, 300) if args.quick else (100, 2000)
    data = problem(n_train)
    print(f"LogisticRegression, breast cancer: {n_train} training rows, {len(data[2])} "
          f"validation rows, budget {budget} utility evaluations\n")
    _, seconds = run("banzhaf", data, 128, 2)  # start both workers before timing
    print(f"n_jobs=2 worker start-up (once per session) and 128 evaluations: {seconds:.1f} s\n")
    print(f"{'method':<10}{'n_jobs':>8}{'evaluations':>13}{'seconds':>10}{'evals/s':>10}")
    values = {}
    for method in ("banzhaf", "shapley"):
        for n_jobs in (None, 2):
            result, seconds = run(method, data, budget, n_jobs)
            print(f"{method:<10}{n_jobs or 1:>8}{result.n_evaluations:>13}{seconds:>10.2f}"
                  f"{result.n_evaluations / seconds:>10.0f}")
            if n_jobs is not None and not np.array_equal(result.values, values[method]):
                raise AssertionError(f"{method}: n_jobs=2 changed the values")
            values[method] = result.values
    r = np.corrcoef(values["banzhaf"], values["shapley"])[0, 1]
    print(f"\nBanzhaf vs Shapley values: Pearson r = {r:.3f}")
    compared = pydvl_row(data, budget)
    if compared is not None:
        theirs, seconds = compared
        r = np.corrcoef(values["banzhaf"], theirs)[0, 1]
        print(f"pyDVL MSR Banzhaf: {seconds:.2f} s, Pearson r with ours = {r:.3f}")


if __name__ == "__main__":
    main()
