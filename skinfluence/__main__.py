"""Command line: ``python -m skinfluence demo`` and ``python -m skinfluence trim data.csv ...``.

Every user error is one line on stderr and exit status 2 (argparse's convention); ``--verbose``
keeps the traceback. Rows are numbered from 0, the first data row of the CSV file.
"""

import argparse
import inspect
import sys
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from . import __version__
from .backend.diagnostics import DiagnosticWarning

MODELS = {
    "logistic": lambda: LogisticRegression(solver="newton-cholesky", tol=1e-10),
    "ridge": lambda: Ridge(alpha=1.0),
    "linear": LinearRegression,
}


class UsageError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


#: Left out of the demo's table: "auto" (a synonym), the training-dynamics methods (for nets
#: trained by minibatches) and the retraining-based values (thousands of refits).
SLOW_OR_NETWORK_METHODS = {"auto", "tracin", "fine", "banzhaf", "shapley", "downsampling"}

#: Methods that need a model trained step by step (a skorch net or ``partial_fit``).
TRAJECTORY_METHODS = {"tracin", "fine"}


def trimming_methods():
    """The trimmer's methods and its default, read from :class:`InfluenceTrimmer` itself."""
    from .trim import InfluenceTrimmer

    options = InfluenceTrimmer._parameter_constraints["method"][0].options
    default = inspect.signature(InfluenceTrimmer).parameters["method"].default
    return sorted(options, key=lambda m: (m != default, m == "random", m)), default


def _parse_budget(text):
    """``"auto"``, ``"5%"`` -> 0.05, ``"0.05"`` -> 0.05, ``"10"`` -> 10 rows."""
    text = text.strip()
    if text == "auto":
        return text
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100
        return int(text) if text.isdigit() else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"budget {text!r} is not 'auto', a count (10), a fraction (0.05) or a percentage "
            "(5%)"
        ) from None


def _fraction(low_closed):
    """An argparse type: a float in [0, 1) (``low_closed``) or (0, 1)."""
    interval = "[0, 1)" if low_closed else "(0, 1)"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = np.nan
        if not (0 <= value < 1) or (value == 0 and not low_closed):
            raise argparse.ArgumentTypeError(f"{text!r} is not a number in {interval}")
        return value
    return parse


def _share_of_flips(text):
    """An argparse type: a float in [0, 0.5); flipping more labels than not relabels the classes."""
    try:
        value = float(text)
    except ValueError:
        value = np.nan
    if not 0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share of flipped labels in [0, 0.5)")
    return value


def _positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _pandas():
    try:
        import pandas
    except ImportError:
        raise UsageError("reading CSV files needs pandas: pip install pandas") from None
    return pandas


def _cells(mask, frame, limit=5):
    """``row 3 column 'age'`` for the first ``limit`` true cells of ``mask`` (0-based rows)."""
    rows, cols = np.nonzero(mask)
    cells = [f"row {r} column {frame.columns[c]!r}" for r, c in zip(rows[:limit], cols[:limit])]
    return ", ".join(cells) + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def read_table(path, target, sep=","):
    """Read a CSV file (``"-"``: stdin) into the frame, numeric features ``X`` and target ``y``."""
    pd = _pandas()
    try:
        frame = pd.read_csv(sys.stdin if path == "-" else path, sep=sep)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path} is empty: expected a header row and data rows") from None
    except pd.errors.ParserError as err:
        raise UsageError(f"{path} is not a valid CSV file ({err}); check --sep") from None
    if target is None:
        raise UsageError(f"name the target column with --target; {path} has columns "
                         f"{list(frame.columns)}")
    if target not in frame.columns:
        raise UsageError(f"no column {target!r} in {path}; columns are {list(frame.columns)}")
    if len(frame) == 0:
        raise UsageError(f"{path} has a header but no data rows")
    if frame.isna().any().any():
        raise UsageError(f"{path} has missing cells ({_cells(frame.isna().to_numpy(), frame)})"
                         "; fill or drop them first (rows are numbered from 0)")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise UsageError(f"{path} has no feature columns besides the target {target!r}")
    numeric = features.select_dtypes("number")
    if not np.isfinite(numeric.to_numpy(dtype=float)).all():
        raise UsageError(f"{path} has infinite values "
                         f"({_cells(~np.isfinite(numeric.to_numpy(dtype=float)), numeric)})")
    return frame, features, frame[target].to_numpy()


def _pipeline(model, features):
    """``model`` after standardising the numeric columns and one-hot encoding the others (the
    first category dropped: with the intercept a full encoding is singular for unpenalised
    models)."""
    numeric = list(features.select_dtypes("number").columns)
    text = [c for c in features.columns if c not in numeric]
    encode = make_column_transformer(
        (StandardScaler(), numeric),
        (OneHotEncoder(drop="first", handle_unknown="ignore", sparse_output=False), text))
    return make_pipeline(encode, model)


def _metric(model, X, y):
    """(name, value) of the validation metric: accuracy for classifiers, R^2 for regressors."""
    if hasattr(model, "predict_proba"):
        return "accuracy", accuracy_score(y, model.predict(X))
    return "R^2", r2_score(y, model.predict(X))


def _targets(y, model_name):
    """Class labels for the classifier (two or more), floats for the regressors."""
    if model_name == "logistic":
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise UsageError(f"the target column holds a single class ({classes[0]!r}); a "
                             "classifier needs at least two")
        if counts.min() < 2:
            raise UsageError(f"class {classes[counts.argmin()]!r} has a single row; every class "
                             "needs at least two (one may be held out)")
        return y
    try:
        return y.astype(float)
    except ValueError:
        raise UsageError(f"--model {model_name} needs a numeric target column; use --model "
                         "logistic for class labels") from None


def trim_command(args):
    from .trim import InfluenceTrimmer

    pd = _pandas()
    frame, features, y = read_table(args.data, args.target, args.sep)
    y = _targets(y, args.model)
    model = _pipeline(MODELS[args.model](), features)
    index = np.arange(len(y))
    stratify = y if args.model == "logistic" else None
    fit_rows, holdout = train_test_split(index, test_size=args.holdout, stratify=stratify,
                                         random_state=args.seed)
    fit_rows = np.sort(fit_rows)
    X_fit, X_holdout = features.iloc[fit_rows], features.iloc[holdout]
    trimmer = InfluenceTrimmer(model, budget=args.budget, method=args.method,
                               random_state=args.seed).fit(X_fit, y[fit_rows])
    removed = fit_rows[trimmer.removed_]
    print(f"removed {len(removed)} of {len(y)} rows (method={trimmer.method_!r}; the most "
          "harmful first; rows numbered from 0):")
    print(f"{'row':>6} {'suspicion':>12} {args.target:>12}")
    for i, pos in zip(removed, trimmer.removed_):
        print(f"{i:>6} {trimmer.scores_[pos]:>12.4g} {y[i]!s:>12}")
    name, before = _metric(clone(model).fit(X_fit, y[fit_rows]), X_holdout, y[holdout])
    _, after = _metric(trimmer, X_holdout, y[holdout])
    print(f"validation {name} on {len(holdout)} held-out rows: {before:.4f} before, "
          f"{after:.4f} after trimming")
    if args.scores:
        scores = np.full(len(y), np.nan)
        scores[fit_rows] = trimmer.scores_
        pd.DataFrame({"row": index, "score": scores, "removed": np.isin(index, removed)}).to_csv(
            args.scores, index=False)
        print(f"wrote the scores of {len(y)} rows to {args.scores} (empty: held out)")
    if args.output:
        kept = frame.drop(index=frame.index[removed])
        kept.to_csv(args.output, index=False, sep=args.sep)
        print(f"wrote {len(kept)} kept rows to {args.output}")
    return 0


def demo_command(args):
    from sklearn.datasets import load_breast_cancer

    from .influence import influence, leave_one_out, self_influence
    from .trim import InfluenceTrimmer, resolve_method

    start = time.perf_counter()
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.4, stratify=y,
                                                        random_state=args.seed)
    X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5,
                                                    stratify=y_rest, random_state=args.seed)
    if args.top > len(X_train):
        raise UsageError(f"--top {args.top} exceeds the {len(X_train)} training rows")
    scaler = StandardScaler().fit(X_train)
    X_train, X_val, X_test = (scaler.transform(a) for a in (X_train, X_val, X_test))
    flipped = np.random.default_rng(args.seed).random(len(y_train)) < args.noise
    y_noisy = np.where(flipped, 1 - y_train, y_train)
    model = MODELS["logistic"]().fit(X_train, y_noisy)
    print(f"breast_cancer: {len(X_train)} training rows (numbered from 0), {flipped.sum()} of "
          f"their labels flipped; {len(X_val)} clean validation rows, {len(X_test)} test rows.\n"
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
    methods, default = trimming_methods()
    default = resolve_method(default, model)
    for method in methods:
        if method in SLOW_OR_NETWORK_METHODS:
            continue
        trimmer = InfluenceTrimmer(model, method=method, budget=args.budget,
                                   random_state=args.seed).fit(X_train, y_noisy)
        label = method + (" (default)" if method == default else "")
        loss = log_loss(y_val, trimmer.predict_proba(X_val))
        flip_share = flipped[trimmer.removed_].mean() if len(trimmer.removed_) else 0.0
        print(f"{label:<18} {trimmer.score(X_test, y_test):>9.4f} {loss:>9.4f} "
              f"{flip_share:>22.2f}")
    trimmer = InfluenceTrimmer(model, random_state=args.seed).fit(X_train, y_noisy)
    loss = log_loss(y_val, trimmer.predict_proba(X_val))
    print(f"{'all defaults':<18} {trimmer.score(X_test, y_test):>9.4f} {loss:>9.4f} "
          f"{flipped[trimmer.removed_].mean() if trimmer.budget_ else 0.0:>22.2f}   "
          f"(method {trimmer.method_!r}, budget='auto' removed {trimmer.budget_} rows)")
    print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0


def build_parser():
    """The argument parser of ``python -m skinfluence``."""
    methods, default = trimming_methods()
    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true",
                        help="show the full traceback of an error")
    parser = _Parser(prog="skinfluence", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", parents=[common],
                          help="label noise on breast_cancer: find and trim it")
    demo.add_argument("--noise", type=_share_of_flips, default=0.2,
                      help="share of flipped labels, in [0, 0.5) (default 0.2)")
    demo.add_argument("--top", type=_positive_int, default=10, help="rows to list and retrain")
    demo.add_argument("--budget", type=_fraction(True), default=0.1,
                      help="trimming fraction, in [0, 1) (default 0.1)")
    demo.add_argument("--seed", type=int, default=0)
    trim = sub.add_parser("trim", parents=[common], help="remove harmful rows of a CSV file")
    trim.add_argument("data", help="CSV file with a header row and numeric features; - reads "
                                   "stdin")
    trim.add_argument("--target", help="name of the target column (required)")
    trim.add_argument("--sep", default=",", help="column separator (default ,)")
    trim.add_argument("--budget", type=_parse_budget, default="auto",
                      help="rows to remove: auto (the estimated number of mislabelled rows, 0 "
                           "when trimming does not help), 10, 0.05 or 5%% (default auto)")
    trim.add_argument("--model", choices=sorted(MODELS), default="logistic")
    # tracin and fine need training trajectories, which none of the CLI's models records
    trim.add_argument("--method", choices=[m for m in methods if m not in TRAJECTORY_METHODS],
                      default=default)
    trim.add_argument("--holdout", type=_fraction(False), default=0.2,
                      help="share of rows held out to report the validation metric, in (0, 1)")
    trim.add_argument("--seed", type=int, default=0)
    trim.add_argument("-o", "--output", help="write the kept rows to this CSV file")
    trim.add_argument("--scores", help="write every row's score to this CSV file")
    return parser


def main(argv=None):
    """Entry point of ``python -m skinfluence`` and the ``skinfluence`` script."""
    args = build_parser().parse_args(argv)
    command = demo_command if args.command == "demo" else trim_command
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("default", DiagnosticWarning)
            return command(args)
    except (UsageError, ValueError, TypeError, OSError) as err:
        if args.verbose:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"skinfluence {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
