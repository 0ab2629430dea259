"""
Influence of items on a listwise ranking model (ListMLE)
=========================================================

ListMLE (Xia et al. 2008) scores a query's ranked top-k list with a product of softmaxes, each over
the items not yet placed. Here a bilinear model scores item ``l`` for query ``x`` as
``x^T W z_l`` from the item's features ``z_l``. The loss is a sum over *queries*, but not over *items*: one item appears
in the softmax denominators of every list. Removing an item from training is still easy to write
as a presence mask ``b`` over items (equation 11 of the VIF paper), and
:func:`skinfluence.versatile_influence` turns that masked loss into the predicted effect of
removing each item, with automatic differentiation only.

We check the predicted removal effects on the ListMLE loss of held-out queries against real
retraining without each item.
"""

# %%
# Size knobs
# ----------
N_ITEMS, N_QUERIES, N_TEST, DIM, ITEM_DIM, TOP_K = 40, 500, 200, 5, 4, 5
PENALTY = 1.0
RANDOM_STATE = 0

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.func import grad, hessian

from skinfluence import versatile_influence

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(RANDOM_STATE)

# %%
# Synthetic queries and their ranked top-k lists
# ----------------------------------------------
items = rng.normal(size=(N_ITEMS, ITEM_DIM))
true_weights = rng.normal(size=(DIM, ITEM_DIM))
z = torch.tensor(items)


def make_queries(n):
    x = rng.normal(size=(n, DIM))
    noisy_scores = x @ true_weights @ items.T + rng.gumbel(size=(n, N_ITEMS))
    return torch.tensor(x), torch.tensor(np.argsort(-noisy_scores, axis=1)[:, :TOP_K])


def candidates(ranked):
    """``(TOP_K, n, N_ITEMS)``: 1 where an item is still unplaced at each list position."""
    placed = torch.nn.functional.one_hot(ranked, N_ITEMS).to(torch.float64)
    already = torch.cumsum(placed, dim=1) - placed
    return (1.0 - already).transpose(0, 1)


x_train, ranked_train = make_queries(N_QUERIES)
x_test, ranked_test = make_queries(N_TEST)
cand_train, cand_test = candidates(ranked_train), candidates(ranked_test)


def listmle(theta, x, ranked, cand, mask):
    """Per-query ListMLE loss of a linear scorer with items present where ``mask == 1``."""
    logits = x @ theta.reshape(DIM, ITEM_DIM) @ z.T
    shift = logits.max(1, keepdim=True).values
    weights = mask * cand * torch.exp(logits - shift)  # (TOP_K, n, N_ITEMS)
    log_denominator = torch.log(weights.sum(-1).clamp_min(1e-300)) + shift[:, 0]
    chosen = logits.gather(1, ranked).T  # (TOP_K, n)
    present = mask[ranked].T
    return (present * (log_denominator - chosen)).sum(0)


def training_loss(theta, mask):
    per_query = listmle(theta, x_train, ranked_train, cand_train, mask)
    return per_query.sum() + 0.5 * PENALTY * (theta**2).sum()


def test_losses(theta):
    return listmle(theta, x_test, ranked_test, cand_test, torch.ones(N_ITEMS))


def newton(mask, theta, tol=1e-10):
    """The loss is convex in theta: a few Newton steps from a warm start reach the optimum."""
    for _ in range(50):
        g = grad(training_loss)(theta, mask)
        step = torch.linalg.solve(hessian(training_loss)(theta, mask), g)
        theta = theta - step
        if float(g @ step) < tol:
            break
    return theta


everyone = torch.ones(N_ITEMS)
theta = newton(everyone, torch.zeros(DIM * ITEM_DIM))

# %%
# Predicted removal effects against retraining
# --------------------------------------------
start = time.perf_counter()
shift = torch.as_tensor(versatile_influence(training_loss, theta, N_ITEMS))
predicted = torch.stack([test_losses(theta + s) for s in shift]) - test_losses(theta)
vif_seconds = time.perf_counter() - start

start = time.perf_counter()
actual = []
for item in range(N_ITEMS):
    mask = everyone.clone()
    mask[item] = 0.0
    actual.append(test_losses(newton(mask, theta)) - test_losses(theta))
actual = torch.stack(actual)
loo_seconds = time.perf_counter() - start

predicted, actual = predicted.numpy(), actual.numpy()
r_all = np.corrcoef(predicted.ravel(), actual.ravel())[0, 1]
r_total = np.corrcoef(predicted.sum(1), actual.sum(1))[0, 1]
print("| quantity | value |")
print("| --- | --- |")
print(f"| items x test queries | {N_ITEMS} x {N_TEST} |")
print(f"| Pearson r, per (item, test query) | {r_all:.4f} |")
print(f"| Pearson r, per item on the whole test loss | {r_total:.4f} |")
print(f"| VIF time (s) | {vif_seconds:.2f} |")
print(f"| retraining time (s) | {loo_seconds:.2f} |")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].scatter(actual.ravel(), predicted.ravel(), s=3, alpha=0.4)
axes[0].set(
    xlabel="retrained without the item",
    ylabel="VIF prediction",
    title="effect on each test query's ListMLE loss",
)
axes[1].scatter(actual.sum(1), predicted.sum(1))
axes[1].set(
    xlabel="retrained without the item",
    ylabel="VIF prediction",
    title="effect on the total test loss, per item",
)
for ax in axes:
    lo, hi = ax.get_xlim()
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
fig.tight_layout()
fig.savefig("plot_versatile_listmle.png", dpi=100)
