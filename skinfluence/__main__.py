"""Command line: ``python -m skinfluence demo`` and ``python -m skinfluence trim data.csv ...``."""

import argparse
import csv
import sys
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

MODELS = {
    "logistic": lambda: LogisticRegression(solver="newton-cholesky", tol=1e-10),
    "ridge": lambda: Ridge(alpha=1.0),
    "linear": LinearRegression,
}
METHODS = ("self", "fi", "iv", "influence", "newton", "random")


def _parse_budget(text):
    """``"5%"`` -> 0.05, ``"0.05"`` -> 0.05, ``"10"`` -> 10 rows."""
    text = text.strip()
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100
        return int(text) if text.isdigit() else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"budget {text!r} is not a count (10), a fraction (0.05) or a percentage (5%)"
        ) from None


def _read_csv(path, target):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise SystemExit(f"error: {path} is empty")
    header, body = rows[0], rows[1:]
    if target not in header:
        raise SystemExit(f"error: no column {target!r} in {path}; columns are {header}")
    col = header.index(target)
    features = [name for i, name in enumerate(header) if i != col]
    try:
        X = np.array([[float(v) for i, v in enumerate(r) if i != col] for r in body])
    except ValueError as err:
        raise SystemExit(f"error: every feature column must be numeric ({err}); encode "
                         "categorical columns first") from None
    y = np.array([r[col] for r in body])
    return header, body, features, X, y


def _metric(model, X, y):
    """(name, value) of the validation metric: accuracy for classifiers, R^2 for regressors."""
    if hasattr(model, "predict_proba"):
        return "accuracy", accuracy_score(y, model.predict(X))
    return "R^2", r2_score(y, model.predict(X))


def trim_command(args):
    from .trim import InfluenceTrimmer

    header, body, _, X, y = _read_csv(args.data, args.target)
    model = MODELS[args.model]()
    if args.model != "logistic":
        y = y.astype(float)
    index = np.arange(len(X))
    stratify = y if args.model == "logistic" else None
    fit_rows, holdout = train_test_split(index, test_size=args.holdout, stratify=stratify,
                                         random_state=args.seed)
    scaler = StandardScaler().fit(X[fit_rows])
    Xs = scaler.transform(X)
    trimmer = InfluenceTrimmer(model, budget=args.budget, method=args.method,
                               random_state=args.seed).fit(Xs[fit_rows], y[fit_rows])
    removed = fit_rows[trimmer.removed_]
    print(f"removed {len(removed)} of {len(X)} rows (method={args.method!r}; the most "
          "harmful first):")
    print(f"{'row':>6} {'score':>12} {args.target:>12}")
    for i, pos in zip(removed, trimmer.removed_):
        print(f"{i + 1:>6} {trimmer.scores_[pos]:>12.4g} {y[i]!s:>12}")
    name, before = _metric(clone(model).fit(Xs[fit_rows], y[fit_rows]), Xs[holdout],
                           y[holdout])
    _, after = _metric(trimmer, Xs[holdout], y[holdout])
    print(f"validation {name} on {len(holdout)} held-out rows: {before:.4f} before, "
          f"{after:.4f} after trimming")
    if args.output:
        drop = set(removed.tolist())
        with open(args.output, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(r for i, r in enumerate(body) if i not in drop)
        print(f"wrote {len(body) - len(drop)} kept rows to {args.output}")
    return 0


def demo_command(args):
    from sklearn.datasets import load_breast_cancer

    from .influence import influence, leave_one_out, self_influence
    from .trim import InfluenceTrimmer

    start = time.perf_counter()
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.4, stratify=y,
                                                        random_state=args.seed)
    X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5,
                                                    stratify=y_rest, random_state=args.seed)
    scaler = StandardScaler().fit(X_train)
    X_train, X_val, X_test = (scaler.transform(a) for a in (X_train, X_val, X_test))
    flipped = np.random.default_rng(args.seed).random(len(y_train)) < args.noise
    y_noisy = np.where(flipped, 1 - y_train, y_train)
    model = MODELS["logistic"]().fit(X_train, y_noisy)
    print(f"breast_cancer: {len(X_train)} training rows, {flipped.sum()} of their labels "
          f"flipped; {len(X_val)} clean validation rows, {len(X_test)} test rows.\n"
          "LogisticRegression(solver='newton-cholesky'). Scores are removal effects: "
          "f(without row) - f(with it); negative on a loss = the row hurts.\n")

    effects = influence(model, X_train, y_noisy, X_val, y_val, target="mean_loss",
                        method="newton")
    worst = np.argsort(effects)[: args.top]
    real = leave_one_out(model, X_train, y_noisy, X_val, y_val, target="mean_loss",
                         indices=worst)
    selfinf = self_influence(model, X_train, y_noisy)
    print(f"The {args.top} rows that hurt the validation loss most:")
    print(f"{'row':>5} {'predicted':>11} {'retrained':>11} {'self-infl.':>11} {'flipped':>8}")
    for i, r in zip(worst, real):
        print(f"{i:>5} {effects[i]:>11.5f} {r:>11.5f} {selfinf[i]:>11.4f} "
              f"{'yes' if flipped[i] else 'no':>8}")
    keep = np.ones(len(X_train), dtype=bool)
    keep[worst] = False
    refit = clone(model).fit(X_train[keep], y_noisy[keep])
    before = log_loss(y_val, model.predict_proba(X_val))
    after = log_loss(y_val, refit.predict_proba(X_val))
    print(f"\nRemoving all {args.top} and retraining: validation log loss {before:.4f} -> "
          f"{after:.4f} (predicted sum of effects {effects[worst].sum():+.4f}, "
          f"real {after - before:+.4f}).\n")

    print(f"InfluenceTrimmer, budget {args.budget:.0%}, on the noisy training rows "
          "(validation carved from them; the clean sets only evaluate):")
    base = accuracy_score(y_test, model.predict(X_test))
    print(f"{'method':<18} {'test acc.':>9} {'val. loss':>9} {'flipped among removed':>22}")
    print(f"{'untrimmed':<18} {base:>9.4f} {before:>9.4f} {'-':>22}")
    for method in METHODS:
        trimmer = InfluenceTrimmer(model, method=method, budget=args.budget,
                                   random_state=args.seed).fit(X_train, y_noisy)
        label = method + (" (default)" if method == InfluenceTrimmer(model).method else "")
        loss = log_loss(y_val, trimmer.predict_proba(X_val))
        print(f"{label:<18} {trimmer.score(X_test, y_test):>9.4f} {loss:>9.4f} "
              f"{flipped[trimmer.removed_].mean():>22.2f}")
    print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv=None):
    """Entry point of ``python -m skinfluence`` and the ``skinfluence`` script."""
    parser = argparse.ArgumentParser(prog="skinfluence", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="label noise on breast_cancer: find and trim it")
    demo.add_argument("--noise", type=float, default=0.2, help="share of flipped labels")
    demo.add_argument("--top", type=int, default=10, help="rows to list and retrain")
    demo.add_argument("--budget", type=float, default=0.1, help="trimming fraction")
    demo.add_argument("--seed", type=int, default=0)
    trim = sub.add_parser("trim", help="remove harmful rows of a CSV file")
    trim.add_argument("data", help="CSV file with a header row and numeric features")
    trim.add_argument("--target", required=True, help="name of the target column")
    trim.add_argument("--budget", type=_parse_budget, default=0.05,
                      help="rows to remove: 10, 0.05 or 5%% (default 5%%)")
    trim.add_argument("--model", choices=sorted(MODELS), default="logistic")
    trim.add_argument("--method", choices=METHODS, default="self")
    trim.add_argument("--holdout", type=float, default=0.2,
                      help="share of rows held out to report the validation metric")
    trim.add_argument("--seed", type=int, default=0)
    trim.add_argument("-o", "--output", help="write the kept rows to this CSV file")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return demo_command(args) if args.command == "demo" else trim_command(args)


if __name__ == "__main__":
    sys.exit(main())
