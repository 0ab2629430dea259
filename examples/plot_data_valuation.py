"""
Data valuation on label noise: a data-removal curve
===================================================

15% of 200 training labels of ``load_breast_cancer`` are flipped. Each method values the
training rows against 100 clean validation rows; we then remove the lowest-valued (or the
highest-valued) rows, refit, and measure the accuracy on the held-out test rows. A good
valuation gains accuracy when its lowest rows go and loses it when its highest rows go, and its
lowest rows are the flipped ones.

Methods: Data Banzhaf (maximum sample reuse) and permutation Shapley with 2000 utility
evaluations each, downsampling (1000 models on 70% subsets, effect on the mean validation loss),
exact KNN-Shapley of a 5-nearest-neighbour surrogate, the influence function on the validation
loss (a removal effect: positive = the row helps), minus self-influence (no validation rows
needed), and random scores. TracIn does not apply: the logistic model is fitted by a Newton
solver, without a training trajectory.
"""

# %%
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

import skinfluence

warnings.filterwarnings("ignore", category=RuntimeWarning)
rng = np.random.RandomState(0)
X, y = load_breast_cancer(return_X_y=True)
order = rng.permutation(len(X))
X, y = StandardScaler().fit_transform(X)[order], y[order]
X_train, y_train = X[:200], y[:200].copy()
X_val, y_val = X[200:300], y[200:300]
X_test, y_test = X[300:], y[300:]
flipped = rng.choice(200, 30, replace=False)
y_train[flipped] = 1 - y_train[flipped]
model = LogisticRegression(solver="newton-cholesky", tol=1e-10)
fitted = model.fit(X_train, y_train)

# %%
# Values: higher = the row helps
values = {
    "Banzhaf": skinfluence.data_values(model, X_train, y_train, X_val, y_val, method="banzhaf",
                                       budget=2000, random_state=0).values,
    "Shapley": skinfluence.data_values(model, X_train, y_train, X_val, y_val, method="shapley",
                                       budget=2000, random_state=0).values,
    "downsampling": skinfluence.downsampling_influence(
        model, X_train, y_train, X_val, y_val, random_state=0).effects.mean(axis=1),
    "KNN-Shapley": skinfluence.data_values(KNeighborsClassifier(5), X_train, y_train, X_val,
                                           y_val, method="knn").values,
    "influence": skinfluence.influence(fitted, X_train, y_train, X_val, y_val,
                                       target="mean_loss"),
    "-self-influence": -skinfluence.self_influence(fitted, X_train, y_train),
    "random": rng.random_sample(200),
}

# %%
# Remove the lowest- or highest-valued rows, refit, score on the test rows
removed = np.arange(0, 61, 10)


def accuracy_after_removing(rows):
    keep = np.setdiff1d(np.arange(200), rows)
    return model.fit(X_train[keep], y_train[keep]).score(X_test, y_test)


fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
print(f"untrimmed test accuracy {accuracy_after_removing([]):.3f}\n")
print(f"{'method':<16}{'30 lowest out':>15}{'30 highest out':>16}{'flipped in lowest 30':>22}")
for name, v in values.items():
    ranking = np.argsort(v, kind="stable")
    low = [accuracy_after_removing(ranking[:k]) for k in removed]
    high = [accuracy_after_removing(ranking[::-1][:k]) for k in removed]
    found = np.isin(ranking[:30], flipped).mean()
    print(f"{name:<16}{low[3]:>15.3f}{high[3]:>16.3f}{found:>22.2f}")
    axes[0].plot(removed, low, marker="o", label=name)
    axes[1].plot(removed, high, marker="o", label=name)
axes[0].set(title="lowest-valued rows removed", xlabel="rows removed", ylabel="test accuracy")
axes[1].set(title="highest-valued rows removed", xlabel="rows removed")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
