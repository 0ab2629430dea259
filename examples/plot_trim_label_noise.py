"""
Trimming label noise: every method against the budget
=====================================================

20% of the training labels of ``load_breast_cancer`` are flipped. Each method of
:class:`skinfluence.InfluenceTrimmer` removes its most harmful rows and the model is refitted;
we report the clean test accuracy against the budget and the fraction of removed rows that were
flipped. Validation-based methods are run with three validation schemes: a part carved from the
noisy training data (``validation_fraction=0.2``), 5-fold cross-fitting (``cv=5``), and a clean
validation set (``X_val, y_val``, which a user rarely has).

The last table compares, on noisy labels only, untrimmed training, the default trimmer
(``method="loo_loss"``, ``budget="auto"``: no tuning) and the default method with ``GridSearchCV``
over ``budget`` in {0, 0.05, 0.1, 0.2}, on four bundled datasets. The comparison with cleanlab
over six datasets and three kinds of noise is ``benchmarks/bench_trim.py``.
"""

# %%
import os
import tempfile
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from joblib import Memory
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceTrimmer

N_SEEDS = int(os.environ.get("N_SEEDS", "2"))  # the README's tables use 5 (45 s on 2 cores)
BUDGETS = [0.05, 0.1, 0.2, 0.3]
NOISE = 0.2
warnings.filterwarnings("ignore", category=RuntimeWarning)
model = LogisticRegression(solver="newton-cholesky", tol=1e-10)
# multinomial newton-cholesky takes ~11 s per fit on digits (650 parameters): lbfgs there
GRID_DATASETS = {"breast_cancer": (load_breast_cancer, model), "wine": (load_wine, model),
                 "iris": (load_iris, model),
                 "digits": (load_digits, LogisticRegression(C=0.1, max_iter=2000))}
memory = Memory(tempfile.mkdtemp(), verbose=0)


def noisy_split(load, seed):
    """Standardised 70/30 split; a clean validation set taken from the test part; flipped labels."""
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=seed)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    rng = np.random.default_rng(seed)
    flipped = rng.random(len(y_train)) < NOISE
    classes = np.unique(y)
    # a flipped label becomes one of the other classes, uniformly
    shift = rng.integers(1, len(classes), size=len(y_train))
    y_noisy = np.where(flipped, classes[(np.searchsorted(classes, y_train) + shift)
                                        % len(classes)], y_train)
    half = len(X_test) // 2
    return (X_train, y_noisy, flipped, X_test[half:], y_test[half:], X_test[:half],
            y_test[:half])


# %%
# Accuracy against budget on breast_cancer
# ----------------------------------------
schemes = {"carved": {}, "cv=5": {"cv": 5}, "clean X_val": "clean"}
runs = [("loo_loss", "-"), ("loss", "-"), ("self", "-"), ("random", "-")] + [
    (m, s) for m in ("fi", "iv", "influence", "newton") for s in schemes]
accuracy = {run: np.zeros((N_SEEDS, len(BUDGETS))) for run in runs}
flipped_share = {run: np.zeros((N_SEEDS, len(BUDGETS))) for run in runs}
untrimmed = np.zeros(N_SEEDS)
for seed in range(N_SEEDS):
    X, y, flipped, X_test, y_test, X_val, y_val = noisy_split(load_breast_cancer, seed)
    untrimmed[seed] = model.fit(X, y).score(X_test, y_test)
    for method, scheme in runs:
        options = schemes.get(scheme, {})
        for j, budget in enumerate(BUDGETS):
            trimmer = InfluenceTrimmer(model, method=method, budget=budget, memory=memory,
                                       random_state=seed,
                                       **({} if options == "clean" else options))
            if options == "clean":
                trimmer.fit(X, y, X_val=X_val, y_val=y_val)
            else:
                trimmer.fit(X, y)
            accuracy[method, scheme][seed, j] = trimmer.score(X_test, y_test)
            flipped_share[method, scheme][seed, j] = flipped[trimmer.removed_].mean()

print(f"breast_cancer, {NOISE:.0%} flipped labels, {N_SEEDS} seeds: test accuracy (%) "
      f"[share of removed rows that were flipped]; untrimmed {100 * untrimmed.mean():.2f}")
print("| method | validation | " + " | ".join(f"budget {b:.0%}" for b in BUDGETS) + " |")
print("|---|---|" + "---|" * len(BUDGETS))
for run in runs:
    cells = [f"{100 * a:.2f} [{f:.2f}]" for a, f in zip(accuracy[run].mean(0),
                                                        flipped_share[run].mean(0))]
    print(f"| {run[0]} | {run[1]} | " + " | ".join(cells) + " |")

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for run in runs:
    style = "-" if run[1] in ("-", "cv=5") else (":" if run[1] == "carved" else "--")
    label = run[0] if run[1] == "-" else f"{run[0]} ({run[1]})"
    axes[0].plot([0] + BUDGETS, 100 * np.r_[untrimmed.mean(), accuracy[run].mean(0)], style,
                 label=label)
    axes[1].plot(BUDGETS, flipped_share[run].mean(0), style, label=label)
axes[0].set(xlabel="budget (fraction removed)", ylabel="test accuracy (%)",
            title="breast_cancer, 20% flipped labels")
axes[1].set(xlabel="budget (fraction removed)", ylabel="share of removed rows flipped")
axes[1].axhline(NOISE, color="grey", lw=0.5)
axes[0].legend(fontsize=6, ncol=2)
fig.tight_layout()
fig.savefig("trim_label_noise.png", dpi=120)

# %%
# The default trimmer inside GridSearchCV, noisy labels only
# ----------------------------------------------------------
print("\nDefault InfluenceTrimmer (budget='auto') and GridSearchCV over budget "
      f"{{0, 0.05, 0.1, 0.2}}, {N_SEEDS} seeds: clean test accuracy (%)")
print("| dataset | untrimmed | default (auto) | GridSearchCV | auto budgets | chosen budgets |")
print("|---|---|---|---|---|---|")
for name, (load, grid_model) in GRID_DATASETS.items():
    plain, auto, tuned, budgets, chosen = [], [], [], [], []
    for seed in range(N_SEEDS):
        X, y, _, X_test, y_test, _, _ = noisy_split(load, seed)
        plain.append(grid_model.fit(X, y).score(X_test, y_test))
        default = InfluenceTrimmer(grid_model, memory=memory, random_state=seed).fit(X, y)
        auto.append(default.score(X_test, y_test))
        budgets.append(default.budget_)
        search = GridSearchCV(
            make_pipeline(StandardScaler(), InfluenceTrimmer(grid_model, memory=memory,
                                                             random_state=seed)),
            {"influencetrimmer__budget": [0, 0.05, 0.1, 0.2]}).fit(X, y)
        tuned.append(search.score(X_test, y_test))
        chosen.append(search.best_params_["influencetrimmer__budget"])
    print(f"| {name} | {100 * np.mean(plain):.2f} | {100 * np.mean(auto):.2f} | "
          f"{100 * np.mean(tuned):.2f} | {', '.join(map(str, budgets))} | "
          f"{', '.join(map(str, chosen))} |")
