"""
FI against IV on two Gaussians (the trimming paper's Table 1)
=============================================================

Two isotropic 2-D Gaussians (class means at -(1.25, 1.25) and +(1.25, 1.25), unit variance),
150 training, 100 validation and 600 test rows per seed; logistic regression. For each seed
and budget (5, 10, 20 rows) FI^util and IV (Chhabra et al.) each trim the training set using
the validation rows, the model is refitted, and the test accuracies are compared: a *win* is
a seed where FI's accuracy is higher than IV's. Untrimmed and self-influence accuracies are
given for context.
"""

# %%
import os
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from joblib import Memory
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluenceTrimmer

N_SEEDS = int(os.environ.get("N_SEEDS", "30"))  # the paper uses 30
BUDGETS = [5, 10, 20]
CENTER = 1.25

model = LogisticRegression(solver="newton-cholesky", tol=1e-10)
memory = Memory(tempfile.mkdtemp(), verbose=0)


def gaussians(n, rng):
    y = rng.integers(0, 2, n)
    return rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, CENTER, -CENTER), y


accuracy = {m: np.zeros((N_SEEDS, len(BUDGETS))) for m in ("fi", "iv", "self")}
untrimmed = np.zeros(N_SEEDS)
for seed in range(N_SEEDS):
    rng = np.random.default_rng(seed)
    (X, y), (X_val, y_val), (X_test, y_test) = (gaussians(n, rng) for n in (150, 100, 600))
    untrimmed[seed] = model.fit(X, y).score(X_test, y_test)
    for method, table in accuracy.items():
        for j, budget in enumerate(BUDGETS):
            trimmer = InfluenceTrimmer(model, method=method, budget=budget, memory=memory)
            trimmer.fit(X, y, X_val=X_val, y_val=y_val)
            table[seed, j] = trimmer.score(X_test, y_test)

print(f"Two Gaussians, {N_SEEDS} seeds; untrimmed accuracy "
      f"{100 * untrimmed.mean():.2f} +- {100 * untrimmed.std():.2f}%")
print("| rows removed | FI wins / ties / losses vs IV | Acc FI (%) | Acc IV (%) | "
      "Acc self (%) |")
print("|---|---|---|---|---|")
for j, budget in enumerate(BUDGETS):
    fi, iv, selfinf = (accuracy[m][:, j] for m in ("fi", "iv", "self"))
    wins, ties = int((fi > iv).sum()), int((fi == iv).sum())
    print(f"| {budget} | {wins} / {ties} / {N_SEEDS - wins - ties} | "
          f"{100 * fi.mean():.2f} +- {100 * fi.std():.2f} | "
          f"{100 * iv.mean():.2f} +- {100 * iv.std():.2f} | "
          f"{100 * selfinf.mean():.2f} +- {100 * selfinf.std():.2f} |")

# %%
# The rows each method removes on the first seed
rng = np.random.default_rng(0)
(X, y), (X_val, y_val), _ = (gaussians(n, rng) for n in (150, 100, 600))
fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
for ax, method in zip(axes, ("fi", "iv")):
    trimmer = InfluenceTrimmer(model, method=method, budget=20).fit(X, y, X_val, y_val)
    ax.scatter(*X.T, c=y, cmap="coolwarm", s=12)
    ax.scatter(*X[trimmer.removed_].T, facecolors="none", edgecolors="k", s=80,
               label="removed")
    ax.set_title(f"{method}: 20 rows removed")
    ax.legend()
fig.tight_layout()
fig.savefig("trim_two_gaussians.png", dpi=120)
