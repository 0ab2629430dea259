"""Leave-one-out under training randomness: the ground truth for SGD-trained models.

A model trained by SGD is a random variable: its initialisation and minibatch order change
with the seed, and so does a removal effect. Retraining over several seeds with and without each
row gives the mean removal effect, its standard error and the empirical Gaussian ``mu`` of the
f-INE paper's Definition 2.1 (the hypothesis test "trained on D" against "trained on D without
the row", with Algorithm 2 as the test).
"""

from numbers import Integral
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.parallel import Parallel, delayed

from .._validation import (
    check_classifier_target,
    check_indices,
    check_removable,
    check_same_columns,
    check_test_data,
    check_training_data,
    public,
)
from ..backend import make_objective
from ..backend.trajectory import seeded_fit
from .targets import Target
from .trajectory import gaussian_mu


def _target_values(model, X, y, X_test, y_test, target):
    objective = make_objective(model, X, y, device="cpu", check_convergence=False)
    return Target(objective, X_test, y_test, target).values(objective.theta).detach().numpy()


@public("X", "y", "X_test", "y_test", "target", "n_jobs", estimator=[HasMethods(["fit"])],
        indices=["array-like"], n_repeats=[Interval(Integral, 2, None, closed="left")],
        paired=["boolean"], random_state=["random_state"])
def repeated_leave_one_out(estimator, X, y, X_test, y_test, *, indices, n_repeats=20,
                           paired=True, target="loss", n_jobs=None, random_state=None):
    """Removal effects of rows measured by retraining over many seeds with and without each.

    Parameters
    ----------
    estimator : estimator
        A model whose training randomness is set by ``random_state`` (``SGDClassifier``,
        ``SGDRegressor``) or a skorch net (seeded through torch's generator). Cloned.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    X_test : array-like of shape (n_test, n_features)
    y_test : array-like of shape (n_test,)
    indices : array-like of int
        Rows to leave out.
    n_repeats : int, default=20
        Seeds per row.
    paired : bool, default=True
        Use the same seed (initialisation and order) with and without the row, so that the
        difference isolates the row; otherwise independent seeds (the test of Definition 2.1).
    target : {"loss", "mean_loss", "prediction"}, default="loss"
        As in :func:`skinfluence.influence`.
    n_jobs : int, optional
        Parallel refits through joblib.
    random_state : int, RandomState instance or None, default=None
        Draws the seeds.

    Returns
    -------
    Bunch with
        effect : ndarray of shape (n_indices, n_test)
            Mean of ``f(trained without row) - f(trained with it)`` over the seeds (positive:
            the row helps a loss target).
        stderr : ndarray of shape (n_indices, n_test)
            Its standard error.
        mu : ndarray of shape (n_indices, n_test)
            Algorithm 2 on the target's values with (P) and without (Q) the row: positive when
            removal raises the target, the library's sign (the f-INE paper's signals are
            gradient similarities, whose sign is the opposite; see ``docs/sign_convention``).

    ``(n_indices,)`` arrays for ``target="mean_loss"``.
    """
    check_same_columns(X, X_test, "X_test")
    X, y, _ = check_training_data(X, y, dtype=(np.float64, np.float32))  # a float32 net's rows
    X_test, y_test = check_test_data(X_test, y_test, X.shape[1])
    check_classifier_target(estimator, y)
    indices = check_indices(indices, X.shape[0])
    check_removable(SimpleNamespace(is_classifier=is_classifier(estimator)), y, indices)
    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_repeats)
    removed_seeds = seeds if paired else rng.randint(np.iinfo(np.int32).max, size=n_repeats)

    def with_row(seed):
        return _target_values(seeded_fit(estimator, X, y, seed), X, y, X_test, y_test, target)

    def without_row(i, seed):
        keep = np.arange(X.shape[0]) != i
        model = seeded_fit(estimator, X[keep], y[keep], seed)
        return _target_values(model, X[keep], y[keep], X_test, y_test, target)

    parallel = Parallel(n_jobs=n_jobs)
    full = np.stack(parallel(delayed(with_row)(s) for s in seeds))  # (R, m)
    removed = np.stack(parallel(delayed(without_row)(i, s) for i in indices
                                for s in removed_seeds)).reshape(len(indices), n_repeats, -1)
    differences = removed - full[None]
    effect = differences.mean(1)
    stderr = differences.std(1, ddof=1) / np.sqrt(n_repeats)
    k, R, m = removed.shape
    with_values = torch.as_tensor(full, dtype=torch.float64)[:, None, :].expand(R, k, m)
    without_values = torch.as_tensor(removed, dtype=torch.float64).permute(1, 0, 2)
    mu = gaussian_mu(with_values.reshape(R, -1), without_values.reshape(R, -1))
    mu = mu.reshape(k, m).numpy()
    if target == "mean_loss":
        effect, stderr, mu = effect[:, 0], stderr[:, 0], mu[:, 0]
    return Bunch(effect=effect, stderr=stderr, mu=mu)
