"""Influence with sparse text features: a 20-newsgroups-sized synthetic problem.

n = 11 000 training documents over a hashed vocabulary of p = 2^18 features, about 100 non-zero
TF-IDF-like entries per row (Zipf-distributed token ids, rows scaled to unit norm), a binary
L2 ``LogisticRegression``. skinfluence keeps ``X`` sparse: its p x p Hessian (2^36 entries) is
never formed; ``H^-1`` is applied by Jacobi-preconditioned conjugate gradient over
Hessian-vector products through the sparse matrix, over the features some training row uses. Prints the wall time of the influence of every training row on 50 test rows and
the process's peak memory (``getrusage``).

Run: ``python benchmarks/bench_sparse.py [--n 11000] [--features 262144] [--nnz 100]``
"""

import argparse
import resource
import time

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

import skinfluence

N_TEST = 50


def make_documents(n, p, nnz, rng):
    """Sparse rows with Zipf-distributed feature ids and unit-norm rows, and binary labels.

    Each document draws 2.7 ``nnz`` tokens (repeated tokens merge, leaving about ``nnz``
    distinct features per row, about 110 000 used features in all at the default sizes).
    """
    tokens = 27 * nnz // 10
    ids = (rng.zipf(1.3, size=n * tokens) * 2654435761) % p  # hashed, heavy-tailed vocabulary
    rows = np.repeat(np.arange(n), tokens)
    X = sp.csr_matrix((rng.random(n * tokens) + 0.1, (rows, ids)), shape=(n, p))
    X.sum_duplicates()
    X = sp.diags(1 / np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel())) @ X
    informative = rng.standard_normal(p) * (rng.random(p) < 0.01) * 20
    y = (X @ informative + 0.5 * rng.standard_normal(n) > 0).astype(int)
    return X.tocsr(), y


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=11_000)
    parser.add_argument("--features", type=int, default=2**18)
    parser.add_argument("--nnz", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X, y = make_documents(args.n + N_TEST, args.features, args.nnz, rng)
    X, X_test, y, y_test = X[: args.n], X[args.n:], y[: args.n], y[args.n:]
    start = time.perf_counter()
    model = LogisticRegression(C=10.0, tol=1e-10, max_iter=5000).fit(X, y)
    fit_s = time.perf_counter() - start
    print(f"fit (lbfgs, {model.n_iter_[0]} iterations): {fit_s:.1f} s", flush=True)
    before = peak_mb()
    start = time.perf_counter()
    effects = skinfluence.influence(model, X, y, X_test, y_test)
    influence_s = time.perf_counter() - start
    print(f"n={args.n}, p={args.features}, {X.nnz / args.n:.0f} non-zeros per row, "
          f"{N_TEST} test rows, train accuracy {model.score(X, y):.3f}")
    print(f"influence of all rows: {influence_s:.1f} s, "
          f"effects {effects.shape}, finite: {np.isfinite(effects).all()}")
    print(f"peak memory: {peak_mb():.0f} MB in total, {peak_mb() - before:.0f} MB above what the "
          "process held before the call")


if __name__ == "__main__":
    main()
