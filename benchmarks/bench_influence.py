"""All-row influence of an L2 logistic regression on 50 test rows: skinfluence against numpy.

For each n the script fits ``LogisticRegression(C=1)`` once, then runs each implementation in
its own fresh process (regenerating the same data there):

* **cold**: the first call in the process (imports excluded): what a script or the CLI pays;
* **warm**: the best of ``--repeat`` calls, numpy's and skinfluence's alternating in one more
  process so that both see the same load (it drifts on a shared machine);
* **peak memory**: the process's peak resident set size (``getrusage``), in total and above what
  it held before the first call (the data and the libraries).

Three measures, each against its own plain numpy implementation measured in the same run:
``influence`` (explicit per-row gradient matrix, Hessian, solve, one product), ``self_influence``
(row-wise quadratic forms ``g_i^T H^-1 g_i``) and ``method="newton"`` (leverages). The largest
size runs the plain influence only, in float64 and float32 (its error against float64 printed),
and on a GPU when one is visible. Every answer is checked against numpy (max relative error).

Run: ``python benchmarks/bench_influence.py [--quick] [--sizes ...] [--repeat 3]``
"""

import argparse
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

D, N_TEST = 100, 50
SIZES = [10_000, 50_000, 200_000, 1_000_000]
QUICK_SIZES = [2_000, 10_000, 50_000]
MEASURES = ("influence", "self", "newton")


def make_data(n, rng):
    X = rng.standard_normal((n + N_TEST, D))
    w = rng.standard_normal(D) / np.sqrt(D)
    y = (rng.random(n + N_TEST) < 1 / (1 + np.exp(-2 * X @ w))).astype(int)
    return X[:n], y[:n], X[n:], y[n:]


# ------------------------------------------------------------------ numpy references
def _design(model, X):
    return np.hstack([X, np.ones((len(X), 1))]) if model.fit_intercept else X


def _fit_quantities(model, X, y):
    """Augmented design, parameters, probabilities and Hessian of ``C * sum loss + 0.5||w||^2``."""
    A = _design(model, X)
    theta = model.coef_.ravel()
    if model.fit_intercept:
        theta = np.r_[theta, model.intercept_]
    p = 1 / (1 + np.exp(-A @ theta))
    H = model.C * (A * (p * (1 - p))[:, None]).T @ A
    H[:D, :D] += np.eye(D)  # the intercept is not penalised
    return A, theta, p, H


def numpy_influence(model, X, y, X_test, y_test):
    A, theta, p, H = _fit_quantities(model, X, y)
    B = _design(model, X_test)
    G = model.C * (p - y)[:, None] * A  # per-row training gradients, n x p
    test_grads = (1 / (1 + np.exp(-B @ theta)) - y_test)[:, None] * B
    return G @ np.linalg.solve(H, test_grads.T)


def numpy_self_influence(model, X, y):
    A, _, p, H = _fit_quantities(model, X, y)
    quad = np.einsum("ij,ij->i", A @ np.linalg.inv(H), A)  # a_i^T H^-1 a_i
    return model.C * (p - y) ** 2 * quad


def numpy_newton(model, X, y, X_test, y_test):
    A, theta, p, H = _fit_quantities(model, X, y)
    B = _design(model, X_test)
    Hinv = np.linalg.inv(H)
    leverage = model.C * p * (1 - p) * np.einsum("ij,ij->i", A @ Hinv, A)
    step = model.C * (p - y) / (1 - leverage)  # H_-i^-1 g_i = step_i H^-1 a_i
    z = B @ theta
    Z = z + step[:, None] * (A @ (Hinv @ B.T))

    def loss(Z):
        return np.logaddexp(0, Z) - y_test * Z

    return loss(Z) - loss(z)


# ------------------------------------------------------------------ one process
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _calls(which, model, X, y, Xt, yt):
    if which == "numpy":
        return {"influence": lambda: numpy_influence(model, X, y, Xt, yt),
                "self": lambda: numpy_self_influence(model, X, y),
                "newton": lambda: numpy_newton(model, X, y, Xt, yt)}
    import skinfluence

    device = "cuda" if which == "cuda" else "cpu"
    dtype = "float32" if which in ("float32", "cuda") else "float64"

    def run(**kw):
        return skinfluence.influence(model, X, y, Xt, yt, device=device, dtype=dtype, **kw)

    return {"influence": run,
            "self": lambda: skinfluence.self_influence(model, X, y, device=device, dtype=dtype),
            "newton": lambda: run(method="newton")}


def run_one(n, which, measures, repeat, model_path, out_dir):
    """In a fresh process: time ``measures`` of implementation ``which``; print a result line."""
    X, y, Xt, yt = make_data(n, np.random.default_rng(n))
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    calls = _calls(which, model, X, y, Xt, yt)  # imports happen here, before the clock
    before = peak_mb()
    results = []
    for i, name in enumerate(measures):
        start = time.perf_counter()
        out = calls[name]()
        cold = time.perf_counter() - start if i == 0 else float("nan")
        warm = np.inf
        for _ in range(repeat):
            out = None  # free the previous answer first: peak memory is one call's
            start = time.perf_counter()
            out = calls[name]()
            warm = min(warm, time.perf_counter() - start)
        np.save(os.path.join(out_dir, f"{which}_{name}_{n}.npy"), np.asarray(out)[::97])
        results.append(f"{name}:{cold}:{warm}")
    print(" ".join(results), peak_mb(), peak_mb() - before)


def run_pair(n, measures, repeat, model_path):
    """In a fresh process: numpy's and skinfluence's warm times, their calls alternating so that
    both see the same load; print ``name:numpy:skinfluence`` per measure."""
    X, y, Xt, yt = make_data(n, np.random.default_rng(n))
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    pair = [_calls(which, model, X, y, Xt, yt) for which in ("numpy", "skinfluence")]
    results = []
    for name in measures:
        best = [np.inf, np.inf]
        for calls in pair:
            calls[name]()
        for _ in range(repeat):
            for k, calls in enumerate(pair):
                start = time.perf_counter()
                calls[name]()
                best[k] = min(best[k], time.perf_counter() - start)
        results.append(f"{name}:{best[0]}:{best[1]}")
    print(" ".join(results))


def _child(*args):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    proc = subprocess.run([sys.executable, __file__, *map(str, args)], check=False,
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return proc.stdout.split()


def warm_pair(n, measures, repeat, model_path):
    """``{measure: (numpy warm, skinfluence warm)}``, timed side by side in one process."""
    out = _child("--pair", n, ",".join(measures), "--repeat", repeat, "--model", model_path)
    return {name: (float(a), float(b)) for name, a, b in (item.split(":") for item in out)}


def measure(n, which, measures, repeat, model_path, out_dir):
    *timed, total, extra = _child("--one", n, which, ",".join(measures), "--repeat", repeat,
                                  "--model", model_path, "--out", out_dir)
    times = {}
    for item in timed:
        name, cold, warm = item.split(":")
        times[name] = (float(cold), float(warm))
    outputs = {name: np.load(os.path.join(out_dir, f"{which}_{name}_{n}.npy"))
               for name in measures}
    return times, float(total), float(extra), outputs


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--pair", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        n, which, measures = args.one
        return run_one(int(n), which, measures.split(","), args.repeat, args.model, args.out)
    if args.pair:
        return run_pair(int(args.pair[0]), args.pair[1].split(","), args.repeat, args.model)

    import torch
    from sklearn.linear_model import LogisticRegression

    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    gpu = torch.cuda.is_available()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores "
          f"(load average {load:.1f}), d={D}, {N_TEST} test rows, warm = best of {args.repeat}; "
          f"cold and memory: each implementation in a fresh process; warm: numpy and skinfluence "
          f"calls alternating in one process; GPU: {'yes' if gpu else 'none'}")
    print(f"{'n':>8} {'measure':>9} {'np cold':>8} {'sk cold':>8} {'cold x':>7} {'np warm':>8} "
          f"{'sk warm':>8} {'warm x':>7} {'rel err':>8} {'np MB':>7} {'sk MB':>7} "
          f"{'sk +MB':>7}")
    with tempfile.TemporaryDirectory() as out_dir:
        for n in sizes:
            X, y, _, _ = make_data(n, np.random.default_rng(n))
            model = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-10).fit(X, y)
            del X, y
            model_path = os.path.join(out_dir, f"model_{n}.pkl")
            with open(model_path, "wb") as f:
                pickle.dump(model, f)
            largest = n == max(sizes) and len(sizes) > 1
            measures = ("influence",) if largest else MEASURES
            ref = measure(n, "numpy", measures, args.repeat, model_path, out_dir)
            ours = measure(n, "skinfluence", measures, args.repeat, model_path, out_dir)
            warm = warm_pair(n, measures, args.repeat, model_path)
            for name in measures:
                (nc, _), (sc, _), (nw, sw) = ref[0][name], ours[0][name], warm[name]
                print(f"{n:>8} {name:>9} {nc:>8.3f} {sc:>8.3f} {sc / nc:>7.2f} {nw:>8.3f} "
                      f"{sw:>8.3f} {sw / nw:>7.2f} {rel_err(ours[3][name], ref[3][name]):>8.1e} "
                      f"{ref[1]:>7.0f} {ours[1]:>7.0f} {ours[2]:>7.0f}", flush=True)
            if not largest:
                continue
            variants = ["float32"] + (["cuda"] if gpu else [])
            for which in variants:
                times, total, extra, out = measure(n, which, ("influence",), args.repeat,
                                                   model_path, out_dir)
                cold, own_warm = times["influence"]
                print(f"{n:>8} {which:>9} {'':>8} {cold:>8.3f} {'':>7} {'':>8} {own_warm:>8.3f} "
                      f"{own_warm / warm['influence'][0]:>7.2f} "
                      f"{rel_err(out['influence'], ours[3]['influence']):>8.1e} {'':>7} "
                      f"{total:>7.0f} {extra:>7.0f}  (error against skinfluence float64)",
                      flush=True)
            if not gpu:
                print(f"{n:>8} {'cuda':>9}  skipped: no GPU visible")
    print("cold x / warm x: skinfluence time over numpy's; MB: peak RSS of the process (data "
          "included); sk +MB: skinfluence's peak above what the process held before the call")


if __name__ == "__main__":
    main()
