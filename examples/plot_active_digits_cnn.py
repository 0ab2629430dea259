"""
Active learning on digits with a small CNN: FI^active over the last layer
=========================================================================

The trimming paper's MNIST network (its Table 6: two stride-2 convolutions, dropout, a hidden
linear layer) scaled to the 8 x 8 images of ``load_digits`` and trained with
skorch. As in the paper's image experiments, FI^active and IV take influence over the last
layer's parameters (``params="auto"`` picks ``"last"`` for networks) while every round retrains
the whole network; BALD uses MC dropout through the network's dropout layer. 30 random labeled
rows to start, 10 rounds of 20 rows.
"""

# %%
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier

from skinfluence import ActiveLearningSelector, active_learning_curve
from skinfluence.active import plot_learning_curves

N_SEEDS = 3  # the README table
N_ROUNDS = 10
N_INITIAL = 30
BATCH_SIZE = 20
EPOCHS = 30
METHODS = {
    "fi": {"method": "fi"},
    "iv": {"method": "iv"},
    "bald": {"method": "bald"},
    "least confident": {"method": "uncertainty", "uncertainty": "least_confident"},
    "margin": {"method": "uncertainty", "uncertainty": "margin"},
    "entropy": {"method": "uncertainty", "uncertainty": "entropy"},
    "random": {"method": "random"},
}

warnings.filterwarnings("ignore", category=RuntimeWarning)
torch.set_num_threads(2)


class DigitsCNN(torch.nn.Module):
    """Table 6 of the paper at 8 x 8: (32, 4, 4) -> (64, 2, 2) -> dropout -> 64 -> 10.

    The hidden layer is scaled with the input (64 pixels instead of 784): 64 units instead of
    256, so the last layer holds 650 parameters.
    """

    def __init__(self, dropout=0.25):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Dropout(dropout), torch.nn.Flatten(),
            torch.nn.Linear(64 * 2 * 2, 64), torch.nn.ReLU())
        self.head = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.features(x.reshape(-1, 1, 8, 8)))


def make_net(seed):
    torch.manual_seed(seed)
    return NeuralNetClassifier(
        DigitsCNN, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=2e-3,
        optimizer__weight_decay=1e-4, max_epochs=EPOCHS, batch_size=64, train_split=None,
        iterator_train__shuffle=True, verbose=0)


def split(seed):
    """Pixels scaled to [0, 1] (float32), stratified 70/30 split: the pool and the test set."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)


# %%
# Learning curves
# ---------------
curves = {name: [] for name in METHODS}
start = time.perf_counter()
for seed in range(N_SEEDS):
    X_pool, X_test, y_pool, y_test = split(seed)
    for name, options in METHODS.items():
        torch.manual_seed(seed)  # the same initial weights and batches for every method
        selector = ActiveLearningSelector(make_net(seed), batch_size=BATCH_SIZE,
                                          random_state=seed, **options)
        curves[name].append(active_learning_curve(
            selector, X_pool, y_pool, X_test, y_test, n_initial=N_INITIAL, n_rounds=N_ROUNDS,
            random_state=seed))

# %%
# Area under the learning curve
# -----------------------------
random_area = 100 * np.mean([c.area for c in curves["random"]])
print(f"load_digits + CNN (skorch), {N_ROUNDS} rounds of {BATCH_SIZE}, {N_SEEDS} seed(s), "
      f"total {time.perf_counter() - start:.0f} s\n")
print("| method | area (acc. points) | vs random | final accuracy (%) | query time (s) |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, runs in curves.items():
    areas = 100 * np.array([c.area for c in runs])
    final = 100 * np.array([c.scores[-1] for c in runs])
    seconds = np.mean([c.query_times.mean() for c in runs])
    print(f"| {name} | {areas.mean():.1f} ± {areas.std():.1f} | {areas.mean() - random_area:+.1f}"
          f" | {final.mean():.1f} | {seconds:.2f} |")

# %%
ax = plot_learning_curves(curves)
ax.set_title(f"load_digits, CNN of the paper's Table 6 at 8x8 ({N_SEEDS} seed(s))")
plt.tight_layout()
plt.savefig("active_digits_cnn.png", dpi=120)
