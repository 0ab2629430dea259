"""Synthetic multitask regression of the MTIF paper (appendix H.1.1, after Duan & Wang 2023)."""

import numpy as np
from sklearn.utils import check_random_state


def make_multitask_regression(n_tasks=10, n_features=50, n_samples_per_task=200, *, delta=1.0,
                              epsilon=0.2, noise=1.0, random_state=None):
    """Related linear tasks around ``beta* = 2 e_1``, a fraction of them outliers.

    Task j has coefficients ``theta_j = beta* + delta * u_j`` with ``u_j`` uniform on the unit
    sphere; ``round(epsilon * n_tasks)`` tasks get instead an i.i.d. random vector of the same
    norm as ``beta*`` (outlier tasks). Rows are ``x ~ N(0, I)``, ``y = x @ theta_j + noise * e``.

    Parameters
    ----------
    n_tasks, n_features, n_samples_per_task : int, default=10, 50, 200
    delta : float, default=1.0
        Spread of the related tasks around ``beta*``.
    epsilon : float, default=0.2
        Fraction of outlier tasks.
    noise : float, default=1.0
        Standard deviation of the noise.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_tasks * n_samples_per_task, n_features)
    y : ndarray of shape (n_tasks * n_samples_per_task,)
    tasks : ndarray of int, the task of each row (0 .. n_tasks - 1)
    coef : ndarray of shape (n_tasks, n_features), the true ``theta_j``
    """
    rng = check_random_state(random_state)
    beta = np.zeros(n_features)
    beta[0] = 2.0

    def sphere(size, radius):
        u = rng.normal(size=(size, n_features))
        return radius * u / np.linalg.norm(u, axis=1, keepdims=True)

    coef = beta + sphere(n_tasks, delta)
    outliers = rng.choice(n_tasks, round(epsilon * n_tasks), replace=False)
    coef[outliers] = sphere(len(outliers), np.linalg.norm(beta))
    tasks = np.repeat(np.arange(n_tasks), n_samples_per_task)
    X = rng.normal(size=(len(tasks), n_features))
    y = np.einsum("nd,nd->n", X, coef[tasks]) + noise * rng.normal(size=len(tasks))
    return X, y, tasks, coef
