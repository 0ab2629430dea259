"""Monte Carlo semivalues: permutation (truncated) Shapley, Beta-Shapley and Banzhaf with
maximum sample reuse. Every utility evaluation is dispatched through joblib."""

import numpy as np
from scipy.stats import betabinom
from sklearn.utils.parallel import delayed

from ._utility import evaluate_subsets, fit_and_score

#: Beta(alpha, beta) of Beta-Shapley (Kwon & Zou, 2022): alpha > beta favours small coalitions.
BETA = (16, 1)

#: Work drawn per round: fixed, so that a run's random draws (hence its values) do not depend
#: on the joblib backend or ``n_jobs``.
PERMUTATIONS_PER_ROUND = 8
SUBSETS_PER_TASK = 16
TASKS_PER_ROUND = 8


class RunningStats:
    """Per-row running sums for means and standard errors of the mean."""

    def __init__(self, n):
        self.count = np.zeros(n)
        self.total = np.zeros(n)
        self.squares = np.zeros(n)

    def add(self, samples, present=None):
        """Add the rows of ``samples`` (k, n); ``present`` (k, n) masks the entries that count."""
        present = np.ones(samples.shape, dtype=bool) if present is None else present
        self.count += present.sum(axis=0)
        self.total += np.where(present, samples, 0.0).sum(axis=0)
        self.squares += np.where(present, samples**2, 0.0).sum(axis=0)

    def mean(self):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.total / self.count, 0.0)

    def variance_of_mean(self):
        """Sample variance / count; infinite for rows with fewer than two samples."""
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (self.squares - self.total**2 / self.count) / (self.count - 1)
            out = np.maximum(var, 0.0) / self.count
        return np.where(self.count > 1, out, np.inf)


def size_weights(n, method):
    """Importance weight of a marginal contribution by the size k of the coalition before it.

    A random permutation puts a row after k others with probability 1/n for every k; a
    semivalue weighs coalition size k by ``p_k`` (Shapley: 1/n; Beta-Shapley: the
    Beta-binomial(n - 1, beta, alpha) probability of k), so a marginal is weighted ``n p_k``.
    """
    if method == "shapley":
        return np.ones(n)
    alpha, beta = BETA
    return n * betabinom.pmf(np.arange(n), n - 1, beta, alpha)


def permutation_task(utility, order, weights, u_empty, u_full, truncation, memory):
    """Weighted marginal contributions of every row along the order ``order``.

    With ``truncation``, once a prefix scores within ``truncation * |u_full|`` of the full set
    the remaining rows contribute zero (Ghorbani & Zou's truncated Monte Carlo).

    Returns
    -------
    marginals : ndarray of shape (n,), in row order
    evaluations : int
    """
    n = len(order)
    mask = np.zeros(n, dtype=bool)
    scores = np.empty(n)
    previous, evaluations = u_empty, 0
    for position, row in enumerate(order):
        if truncation is not None and abs(u_full - previous) <= truncation * abs(u_full):
            scores[position:] = previous
            break
        mask[row] = True
        previous = evaluate_subsets(*utility, mask[None], memory)[0]
        scores[position] = previous
        evaluations += 1
    marginals = np.empty(n)
    marginals[order] = np.diff(scores, prepend=u_empty) * weights
    return marginals, evaluations


def subsets_task(utility, masks, memory):
    """Utilities of the subsets ``masks`` (k, n) and the evaluations used."""
    return evaluate_subsets(*utility, masks, memory), len(masks)


class PermutationSampler:
    """Shapley and Beta-Shapley: means of weighted marginals over random permutations."""

    def __init__(self, n, method, utility, truncation, memory):
        self.n, self.utility, self.memory = n, utility, memory
        self.weights = size_weights(n, method)
        self.truncation = truncation
        self.stats = RunningStats(n)
        everyone = np.ones(n, dtype=bool)
        self.u_empty = fit_and_score(*utility, ~everyone)
        self.u_full = fit_and_score(*utility, everyone) if truncation is not None else None
        self.setup_evaluations = 1 + (truncation is not None)

    def tasks(self, rng, remaining):
        """Joblib tasks of the next round within ``remaining`` evaluations (none if none fit)."""
        count = int(min(PERMUTATIONS_PER_ROUND, remaining // self.n))
        return [delayed(permutation_task)(self.utility, rng.permutation(self.n), self.weights,
                                          self.u_empty, self.u_full, self.truncation,
                                          self.memory)
                for _ in range(count)]

    def update(self, results):
        self.stats.add(np.stack([marginals for marginals, _ in results]))

    def values(self):
        return self.stats.mean(), np.sqrt(self.stats.variance_of_mean())


class BanzhafSampler:
    """Data Banzhaf with maximum sample reuse (Wang & Jia, 2023).

    Every uniformly random subset (each row in with probability 1/2) updates every row:
    ``value_i = mean U(S : i in S) - mean U(S : i not in S)``.
    """

    def __init__(self, n, method, utility, truncation, memory):
        del method, truncation  # one estimator, no truncation
        self.n, self.utility, self.memory = n, utility, memory
        self.inside, self.outside = RunningStats(n), RunningStats(n)
        self.setup_evaluations = 0
        self._pending = None

    def tasks(self, rng, remaining):
        """Joblib tasks of the next round within ``remaining`` evaluations (none if none fit)."""
        count = int(min(TASKS_PER_ROUND * SUBSETS_PER_TASK, remaining))
        masks = rng.random_sample((count, self.n)) < 0.5
        self._pending = masks
        return [delayed(subsets_task)(self.utility, masks[s:s + SUBSETS_PER_TASK], self.memory)
                for s in range(0, count, SUBSETS_PER_TASK)]

    def update(self, results):
        masks = self._pending
        scores = np.concatenate([u for u, _ in results])
        samples = np.broadcast_to(scores[:, None], masks.shape)
        self.inside.add(samples, masks)
        self.outside.add(samples, ~masks)

    def values(self):
        values = self.inside.mean() - self.outside.mean()
        var = self.inside.variance_of_mean() + self.outside.variance_of_mean()
        return values, np.sqrt(var)


SAMPLERS = {"shapley": PermutationSampler, "beta": PermutationSampler,
            "banzhaf": BanzhafSampler}
