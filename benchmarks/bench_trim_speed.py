"""FI^util wall time: binary logistic regression, d = 100, n in {5 000, 50 000}.

Rows of the table, all measured in the same run:

* ``skinfluence exact`` — objective view, Cholesky factor of H and :func:`fi_util` from a fitted
  model (what :class:`InfluenceTrimmer` does after fitting);
* ``skinfluence subsample=0.2`` — Algorithm 6: exact FI on 20% of the rows, a random forest
  regresses the ranks of the rest (:func:`skinfluence.influence.subsample.forest_ranks`, as
  ``InfluenceTrimmer(method="fi", subsample=0.2)`` does);
* ``numpy structured`` — a direct numpy implementation of the binary closed form
  (G_i = p(1-p) v_i v_i^T is rank one, so FI_i = (g_i . v_i)^2 / (p(1-p) |v_i|^4));
* ``numpy per-row loop`` — Algorithm 1 as written (explicit M_i, D_i, G_i, pinv) on 500 rows,
  extrapolated to n.

Run: ``python benchmarks/bench_trim_speed.py`` (about a minute on 2 cores).
"""

import time

import numpy as np
import torch
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence.backend import make_objective, make_solver
from skinfluence.influence.local import fi_util
from skinfluence.influence.subsample import forest_ranks
from skinfluence.influence.targets import Target

D, N_VAL, C = 100, 1000, 1.0
LOOP_ROWS = 500


def numpy_parts(model, X, y, X_val, y_val):
    w, b = model.coef_[0], model.intercept_[0]
    Xt = np.hstack([X, np.ones((len(X), 1))])
    z = Xt @ np.append(w, b)
    p, s = expit(z), expit(z) * expit(-z)  # p(1-p) without underflow
    H = C * (Xt.T * s) @ Xt + np.diag(np.append(np.ones(D), 0.0))
    Xv = np.hstack([X_val, np.ones((len(X_val), 1))])
    q = ((expit(Xv @ np.append(w, b)) - y_val)[:, None] * Xv).mean(0)
    return w, Xt, p, s, p - y, H, q


def numpy_structured(model, X, y, X_val, y_val):
    w, Xt, _, s, r, H, q = numpy_parts(model, X, y, X_val, y_val)
    H_inv = np.linalg.inv(H)
    h = Xt @ H_inv  # rows H^-1 x_i
    a = H_inv @ q
    lev = (h * Xt).sum(1)
    # D_i = -C H^-1 M_i with M_i = s_i x_i w^T + r_i [I; 0]
    v = w * (1 - C * s * lev)[:, None] - C * r[:, None] * h[:, :D]  # d z / d omega
    g = -C * (s * (Xt @ a))[:, None] * w - C * r[:, None] * a[:D]  # d L_val / d omega
    return (g * v).sum(1) ** 2 / (s * (v * v).sum(1) ** 2)


def numpy_loop(model, X, y, X_val, y_val, rows):
    w, Xt, p, s, r, H, q = numpy_parts(model, X, y, X_val, y_val)
    H_inv = np.linalg.inv(H)
    E = np.vstack([np.eye(D), np.zeros(D)])
    out = []
    for i in rows:
        M = s[i] * np.outer(Xt[i], w) + r[i] * E
        Dm = -C * H_inv @ M
        S = [-p[i] * (Xt[i] @ Dm + w), (1 - p[i]) * (Xt[i] @ Dm + w)]
        G = (1 - p[i]) * np.outer(S[0], S[0]) + p[i] * np.outer(S[1], S[1])
        g = q @ Dm
        out.append(g @ np.linalg.pinv(G, rcond=1e-10, hermitian=True) @ g)
    return np.array(out)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    torch.set_num_threads(2)
    print("| n | implementation | wall time (s) | ratio to numpy structured | agreement |")
    print("|---|---|---|---|---|")
    for n in (5_000, 50_000):
        run(n)


def run(n):
    """Time every implementation at n rows and print its table rows."""
    X, y = make_classification(n_samples=n + N_VAL, n_features=D, n_informative=20,
                               flip_y=0.1, random_state=0)
    X, X_val, y, y_val = X[:n], X[n:], y[:n], y[n:]
    model = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-10).fit(X, y)

    def exact():
        objective = make_objective(model, X, y, check_convergence=False)
        solver = make_solver(objective, "cholesky")
        return objective, solver, fi_util(objective, solver,
                                          Target(objective, X_val, y_val, "loss"))

    (objective, solver, fi), t_lib = timed(exact)
    reference, t_np = timed(lambda: numpy_structured(model, X, y, X_val, y_val))
    loop, t_loop = timed(lambda: numpy_loop(model, X, y, X_val, y_val,
                                            range(LOOP_ROWS)))
    target = Target(objective, X_val, y_val, "loss")

    def exact_rows(rows):
        return fi_util(objective, solver, target, rows=torch.as_tensor(rows)).numpy()

    approx, t_sub = timed(lambda: forest_ranks(exact_rows, X, np.arange(n), 0.2,
                                               np.random.RandomState(0)))
    fi = fi.numpy()
    rel = np.max(np.abs(fi - reference) / reference)
    rel_loop = np.max(np.abs(fi[:LOOP_ROWS] - loop) / loop)
    rho = spearmanr(fi, approx)[0]
    print(f"| {n} | skinfluence exact | {t_lib:.2f} | {t_lib / t_np:.1f} | "
          f"max rel. diff to numpy {rel:.1e} |")
    print(f"| {n} | skinfluence subsample=0.2 | {t_sub:.2f} | {t_sub / t_np:.1f} | "
          f"Spearman to exact {rho:.3f} |")
    print(f"| {n} | numpy structured | {t_np:.2f} | 1.0 | reference |")
    t_full = t_loop * n / LOOP_ROWS
    print(f"| {n} | numpy per-row loop (extrapolated) | {t_full:.1f} | "
          f"{t_full / t_np:.0f} | max rel. diff {rel_loop:.1e} on {LOOP_ROWS} rows |")


if __name__ == "__main__":
    main()
