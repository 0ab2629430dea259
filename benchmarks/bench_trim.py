"""Trimming label noise: detection and end-to-end accuracy against cleanlab and doing nothing.

Nine datasets (four bundled with scikit-learn; two real, hard binary tasks bundled with
scikit-survival: whether the event happened in whas500 (death) and gbsg2 (recurrence); three
synthetic, one of them with overlapping classes), three kinds of label noise on 20% of the
training rows, a ``LogisticRegression``; the test rows (30%) keep their true labels. The seeds
(0-4) are disjoint from those on which ``budget="auto"``'s threshold was chosen (10-29).

* uniform: a flipped label becomes one of the other classes, uniformly;
* class-conditional: class k flips to class k+1 at rate 30% for even k and 10% for odd k;
* feature-dependent: 20% of the rows flip to their most likely other class, drawn with
  probability proportional to ``1 - p(true class)`` of a model fitted on clean labels, so that
  the flips gather near the decision boundary.

Tables (means over seeds):

1. Detection: AUROC of each :class:`InfluenceTrimmer` method's ``scores_`` for the flipped
   rows, next to cleanlab's ``get_label_quality_scores`` on 5-fold out-of-fold probabilities.
2. End to end, clean test accuracy (%): untrimmed; the default trimmer (``budget="auto"``, no
   tuning); the default method inside ``GridSearchCV`` over ``budget`` in {0, .05, .1, .2};
   cleanlab's ``CleanLearning`` with the same model. A "none" column repeats the comparison
   without label noise. Then the wall time of one fit of each, and the default trimmer's as a
   multiple of ``CleanLearning``'s, measured in the same cells.

3. Detection with a skorch MLP that memorises the noise (breast_cancer, uniform noise; 32 tanh
   units trained full-batch to 100% training accuracy): in-sample loss, self-influence and the
   leave-one-out loss over all parameters or the last layer (``params="last"``), against
   cleanlab on the same network's out-of-fold probabilities; then the same network end to end:
   untrimmed, the default trimmer (TracIn scores, automatic budget) and ``CleanLearning``.

cleanlab and skorch are benchmark extras, not dependencies of skinfluence.

Run: ``python benchmarks/bench_trim.py`` (5 seeds, cells in parallel over ``--n-jobs``; about
5 minutes on 2 cores, half of it the MLP), ``--quick`` (1 seed, 3 datasets, no MLP), or other
seeds with ``--seeds 30-49 --no-mlp``.
"""

import argparse
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from cleanlab.classification import CleanLearning
from cleanlab.rank import get_label_quality_scores
from joblib import Memory, Parallel, delayed
from sklearn.base import clone
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_predict,
    train_test_split,
)
from sklearn.preprocessing import StandardScaler

from skinfluence import TrajectoryInfluence
from skinfluence.backend import make_objective, make_solver
from skinfluence.influence.first_order import self_influence
from skinfluence.influence.own_loss import loo_losses, own_losses
from skinfluence.trim import InfluenceTrimmer

NOISE = 0.2
METHODS = ("loo_loss", "loss", "self")
KINDS = ("uniform", "class-conditional", "feature-dependent")
GRID = [0, 0.05, 0.1, 0.2]
MODEL = LogisticRegression(tol=1e-8, max_iter=5000)


def _digits_five():
    X, y = load_digits(return_X_y=True)
    keep = y < 5
    return X[keep], y[keep]


def _event(loader, field):
    """A scikit-survival dataset as a binary task: did the event happen during follow-up."""
    def load(seed):
        import sksurv.datasets

        X, y = getattr(sksurv.datasets, loader)()
        return pd.get_dummies(X, drop_first=True).astype(float).to_numpy(), y[field]
    return load


DATASETS = {
    "breast_cancer": lambda seed: load_breast_cancer(return_X_y=True),
    "wine": lambda seed: load_wine(return_X_y=True),
    "iris": lambda seed: load_iris(return_X_y=True),
    "digits 0-4": lambda seed: _digits_five(),
    "synthetic binary": lambda seed: make_classification(
        n_samples=800, n_features=20, n_informative=8, class_sep=1.0, random_state=seed),
    "synthetic 4-class": lambda seed: make_classification(
        n_samples=800, n_features=10, n_informative=6, n_classes=4, n_clusters_per_class=1,
        class_sep=1.5, random_state=seed),
    "synthetic overlapping": lambda seed: make_classification(
        n_samples=800, n_features=20, n_informative=5, class_sep=0.5, random_state=seed),
    "whas500 (death)": _event("load_whas500", "fstat"),
    "gbsg2 (recurrence)": _event("load_gbsg2", "cens"),
}


def corrupt(X, y, kind, rng):
    """Noisy copy of the labels ``y`` (class indices) and the mask of flipped rows."""
    K = y.max() + 1
    if kind == "none":
        return y.copy(), np.zeros(len(y), dtype=bool)
    if kind == "uniform":
        flipped = rng.random(len(y)) < NOISE
        noisy = (y + rng.integers(1, K, len(y))) % K
    elif kind == "class-conditional":
        flipped = rng.random(len(y)) < np.where(y % 2 == 0, 0.3, 0.1)
        noisy = (y + 1) % K
    else:
        proba = clone(MODEL).fit(X, y).predict_proba(X)
        weight = 1 - proba[np.arange(len(y)), y] + 1e-3
        flipped = np.zeros(len(y), dtype=bool)
        flipped[rng.choice(len(y), round(NOISE * len(y)), replace=False,
                           p=weight / weight.sum())] = True
        proba[np.arange(len(y)), y] = -1
        noisy = proba.argmax(1)
    return np.where(flipped, noisy, y), flipped


def scaled_split(name, seed):
    """Dataset ``name``'s stratified 70/30 split, classes as indices, features standardised on
    the training rows: ``X_train, X_test, y_train, y_test``."""
    X, y = DATASETS[name](seed)
    y = np.unique(y, return_inverse=True)[1]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def cell(name, kind, seed, memory):
    """Detection AUROCs and end-to-end accuracies of one dataset, noise kind and seed."""
    warnings.filterwarnings("ignore")
    X_train, X_test, y_train, y_test = scaled_split(name, seed)
    rng = np.random.default_rng(seed)
    y_noisy, flipped = corrupt(X_train, y_train, kind, rng)
    auroc, accuracy = {}, {}
    if flipped.any():
        for method in METHODS:
            trimmer = InfluenceTrimmer(MODEL, method=method, budget=0, memory=memory,
                                       random_state=seed).fit(X_train, y_noisy)
            auroc[method] = roc_auc_score(flipped, trimmer.scores_)
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        oof = cross_val_predict(MODEL, X_train, y_noisy, cv=folds, method="predict_proba")
        auroc["cleanlab"] = roc_auc_score(flipped, -get_label_quality_scores(y_noisy, oof))
    seconds = {}

    def timed(name, estimator):  # fitted in this worker, no cache: wall time of one fit
        start = time.perf_counter()
        estimator.fit(X_train, y_noisy)
        seconds[name] = time.perf_counter() - start
        accuracy[name] = estimator.score(X_test, y_test)
        return estimator

    timed("untrimmed", clone(MODEL))
    default = timed("default (auto)", InfluenceTrimmer(MODEL, random_state=seed))
    timed("GridSearchCV", GridSearchCV(InfluenceTrimmer(MODEL, memory=memory, random_state=seed),
                                       {"budget": GRID}, cv=5))
    clean = timed("CleanLearning", CleanLearning(clone(MODEL), seed=seed, cv_n_folds=5,
                                                 verbose=False,  # no pool inside a worker:
                                                 find_label_issues_kwargs={"n_jobs": 1}))
    removed = {"flips": int(flipped.sum()), "auto": default.budget_,
               "CleanLearning": int(clean.label_issues_mask.sum())}
    return auroc, accuracy, removed, seconds


def mlp(seed, n_features):
    """A skorch MLP trained full-batch long enough to memorise its training labels."""
    import torch
    from skorch import NeuralNetClassifier

    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(n_features, 32), torch.nn.Tanh(),
                                 torch.nn.Linear(32, 2)).double()
    return NeuralNetClassifier(module, criterion=torch.nn.CrossEntropyLoss,
                               optimizer=torch.optim.SGD, lr=0.2, optimizer__momentum=0.9,
                               optimizer__weight_decay=1e-3, batch_size=-1, train_split=None,
                               max_epochs=600, verbose=0, callbacks="disable")


def mlp_cell(seed):
    """Detection AUROCs of the network's scores and of cleanlab, and the end-to-end accuracy,
    rows removed and fit time of the untrimmed net, the default trimmer and CleanLearning."""
    warnings.filterwarnings("ignore")
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=seed)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    y_noisy, flipped = corrupt(X_train, y_train, "uniform", np.random.default_rng(seed))
    net = mlp(seed, X.shape[1]).fit(X_train, y_noisy)
    scores = {"train accuracy": (net.predict(X_train) == y_noisy).mean()}
    for params in ("all", "last"):
        objective = make_objective(net, X_train, y_noisy, params=params,
                                   check_convergence=False)
        solver = make_solver(objective, damping=1e-6)
        scores[f"loo_loss ({params})"] = loo_losses(objective, solver).detach().numpy()
        if params == "all":
            scores["loss"] = own_losses(objective).detach().numpy()
            scores["self"] = self_influence(objective, solver).detach().numpy()
    scores["tracin (default)"] = TrajectoryInfluence(
        mlp(seed, X.shape[1]), method="tracin", random_state=seed).fit(X_train, y_noisy
                                                                        ).self_influence()
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    oof = cross_val_predict(mlp(seed, X.shape[1]), X_train, y_noisy, cv=folds,
                            method="predict_proba")
    scores["cleanlab"] = -get_label_quality_scores(y_noisy, oof)
    auroc = {k: v if np.ndim(v) == 0 else roc_auc_score(flipped, v) for k, v in scores.items()}
    end_to_end = {}
    for name, model in (("untrimmed", mlp(seed, X.shape[1])),
                        ("default (auto)", InfluenceTrimmer(mlp(seed, X.shape[1]),
                                                            random_state=seed)),
                        ("CleanLearning", CleanLearning(mlp(seed, X.shape[1]), seed=seed,
                                                        cv_n_folds=5, verbose=False,
                                                        find_label_issues_kwargs={"n_jobs": 1}))):
        start = time.perf_counter()
        model.fit(X_train, y_noisy)
        removed = (getattr(model, "budget_", None) if name != "CleanLearning"
                   else int(model.label_issues_mask.sum()))
        end_to_end[name] = (model.score(X_test, y_test), time.perf_counter() - start, removed)
    return auroc, end_to_end, int(flipped.sum())


def cell_options(description, seeds, seeds_help, quick_seeds):
    """The options of the trimming benchmarks: ``--quick`` (``quick_seeds`` seeds, 3 datasets),
    ``--n-jobs`` and ``--seeds first-last`` (default ``seeds``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help=f"{quick_seeds} seed(s), 3 datasets")
    parser.add_argument("--n-jobs", type=int, default=2, help="cells run in parallel")
    parser.add_argument("--seeds", default=seeds,
                        help=f"first-last seed (default {seeds}; {seeds_help})")
    return parser


def chosen_cells(args, quick_seeds):
    """The seeds and dataset names that ``cell_options``'s parsed ``args`` ask for."""
    first, last = map(int, args.seeds.split("-"))
    seeds = range(first, first + quick_seeds if args.quick else last + 1)
    return seeds, list(DATASETS)[:3] if args.quick else list(DATASETS)


def main():
    parser = cell_options(__doc__.splitlines()[0], "0-4",
                          "10-29 chose the automatic budget's check", quick_seeds=1)
    parser.add_argument("--no-mlp", action="store_true", help="skip the skorch MLP")
    args = parser.parse_args()
    seeds, names = chosen_cells(args, quick_seeds=1)
    warnings.filterwarnings("ignore")
    memory = Memory(tempfile.mkdtemp(), verbose=0)
    start = time.perf_counter()
    jobs = [(name, kind, seed) for name in names for kind in KINDS + ("none",) for seed in seeds]
    outcomes = Parallel(n_jobs=args.n_jobs, verbose=5)(
        delayed(cell)(*job, memory) for job in jobs)
    results = {}
    for (name, kind, _), outcome in zip(jobs, outcomes):
        results.setdefault((name, kind), []).append(outcome)

    print(f"\nDetection AUROC of the flipped rows ({NOISE:.0%} noise, {len(seeds)} seeds)\n")
    print("| dataset | noise | " + " | ".join(METHODS) + " | cleanlab (out-of-fold) |")
    print("|---|---|" + "---|" * (len(METHODS) + 1))
    for name in names:
        for kind in KINDS:
            cells = [np.mean([r[0][m] for r in results[name, kind]])
                     for m in METHODS + ("cleanlab",)]
            print(f"| {name} | {kind} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")

    print("\nEnd-to-end clean test accuracy (%), mean over seeds and noise kinds; "
          "[rows removed: auto / CleanLearning / flipped]\n")
    columns = ("untrimmed", "default (auto)", "GridSearchCV", "CleanLearning")
    for kinds in (KINDS, ("none",)):
        print(f"noise: {', '.join(kinds)}\n")
        print("| dataset | " + " | ".join(columns) + " | removed |")
        print("|---|" + "---|" * (len(columns) + 1))
        means = []
        for name in names:
            rows = [r for kind in kinds for r in results[name, kind]]
            acc = [100 * np.mean([r[1][c] for r in rows]) for c in columns]
            means.append(acc)
            removed = "/".join(f"{np.mean([r[2][k] for r in rows]):.0f}"
                               for k in ("auto", "CleanLearning", "flips"))
            print(f"| {name} | " + " | ".join(f"{a:.2f}" for a in acc) + f" | {removed} |")
        print("| **mean** | " + " | ".join(f"{a:.2f}" for a in np.mean(means, 0)) + " | |\n")
    print("Per noise kind: default minus untrimmed / default minus CleanLearning (points)\n")
    print("| dataset | " + " | ".join(KINDS + ("none",)) + " |")
    print("|---|" + "---|" * (len(KINDS) + 1))
    for name in names:
        diffs = []
        for kind in KINDS + ("none",):
            acc = {c: 100 * np.mean([r[1][c] for r in results[name, kind]]) for c in columns}
            diffs.append(f"{acc['default (auto)'] - acc['untrimmed']:+.2f} / "
                         f"{acc['default (auto)'] - acc['CleanLearning']:+.2f}")
        print(f"| {name} | " + " | ".join(diffs) + " |")
    print()
    for method in ("default (auto)", "GridSearchCV", "CleanLearning"):
        gaps = [100 * np.mean([r[1][method] - r[1]["untrimmed"] for r in results[name, kind]])
                for name in names for kind in KINDS]
        print(f"{method}: more than 0.3 points below untrimmed in {sum(g < -0.3 for g in gaps)} "
              f"of {len(gaps)} noisy cells (worst {min(gaps):+.2f}); mean {np.mean(gaps):+.2f}")
    print("Wall time of one fit (s, mean over seeds and noise kinds, 1 core each; GridSearchCV "
          "reuses cached scores), and the default trimmer's as a multiple of CleanLearning's\n")
    print("| dataset | untrimmed | default (auto) | GridSearchCV | CleanLearning | default / "
          "CleanLearning |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for name in names:
        rows = [r for kind in KINDS for r in results[name, kind]]
        mean = {c: np.mean([r[3][c] for r in rows]) for c in columns}
        ratios.append(mean["default (auto)"] / mean["CleanLearning"])
        print(f"| {name} | " + " | ".join(f"{mean[c]:.2f}" for c in columns)
              + f" | {ratios[-1]:.1f}x |")
    print(f"\ndefault / CleanLearning: {min(ratios):.1f}x to {max(ratios):.1f}x\n")
    margins = [np.mean([r[0]["loo_loss"] - r[0]["cleanlab"] for r in results[name, kind]])
               for name in names for kind in KINDS]
    print(f"loo_loss AUROC minus cleanlab's: min {min(margins):+.4f} over {len(margins)} cells\n")
    if not (args.quick or args.no_mlp):
        outcomes = Parallel(n_jobs=args.n_jobs)(delayed(mlp_cell)(seed) for seed in seeds)
        cells = [auroc for auroc, _, _ in outcomes]
        print(f"skorch MLP on breast_cancer, {NOISE:.0%} uniform noise, {len(seeds)} seeds: "
              "detection AUROC (train accuracy on the noisy labels)\n")
        print("| " + " | ".join(cells[0]) + " |")
        print("|" + "---|" * len(cells[0]))
        print("| " + " | ".join(f"{np.mean([c[k] for c in cells]):.3f}" for k in cells[0])
              + " |\n")
        print("The same network end to end: clean test accuracy (%), rows removed, fit time (s)\n")
        print("| | untrimmed | default (TracIn, budget=\"auto\") | CleanLearning |")
        print("|---|---|---|---|")
        runs = ("untrimmed", "default (auto)", "CleanLearning")
        for label, at, fmt in (("accuracy", 0, "{:.2f}"), ("fit time (s)", 1, "{:.1f}")):
            scale = 100 if at == 0 else 1
            print(f"| {label} | " + " | ".join(
                fmt.format(scale * np.mean([o[1][run][at] for o in outcomes])) for run in runs)
                + " |")
        removed = [f"{np.mean([o[1][run][2] for o in outcomes]):.0f}" for run in runs[1:]]
        print(f"| rows removed ({np.mean([o[2] for o in outcomes]):.0f} flipped) | 0 | "
              + " | ".join(removed) + " |\n")
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
