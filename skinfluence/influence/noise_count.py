"""How many training rows look mislabelled: a confident-learning count (Northcutt et al., 2021).

From out-of-sample class probabilities ``P`` (here each row's leave-one-out probabilities) and
the given labels: class j's threshold ``t_j`` is the mean probability of j over the rows
labelled j (its mean self-confidence); row i is *confidently* of class ``j*``, the most probable
class among those whose probability reaches their threshold (none: the row is not counted).
Counting rows by (given label, confident class) gives the confident joint ``C``; each of its rows
is rescaled to the number of rows carrying that label (calibration), and the off-diagonal mass
is the estimated number of mislabelled rows carrying that label. Its columns, normalised, give
the noise transition ``T`` (true class -> given label), through which a model of the true
classes is scored on noisy labels (``forward_spherical_score``, ``forward_log_likelihood``) and,
with the class probabilities, gives each row's probability of carrying a wrong label
(``mislabelled_posterior``).
"""

import numpy as np

#: Robust z-score beyond which a regression row's leave-one-out residual counts as an outlier.
OUTLIER_Z = 3.0


def confident_joint(proba, labels):
    """Confident joint: ``C[k, j]`` rows labelled k whose confident class is j.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Out-of-sample class probabilities of each row.
    labels : ndarray of int, shape (n_samples,)
        Given labels as class indices.

    Returns
    -------
    ndarray of int, shape (n_classes, n_classes)
    """
    n_classes = proba.shape[1]
    carried = np.bincount(labels, minlength=n_classes)
    self_confidence = np.bincount(labels, weights=proba[np.arange(len(labels)), labels],
                                  minlength=n_classes)
    # mean self-confidence of each class; a class nobody carries is never confident
    thresholds = np.divide(self_confidence, carried, out=np.full(n_classes, np.inf),
                           where=carried > 0)
    above = proba >= thresholds
    confident = np.where(above, proba, -np.inf).argmax(1)
    counted = above.any(1)
    joint = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(joint, (labels[counted], confident[counted]), 1)
    return joint


def calibrated_joint(proba, labels):
    """Estimated joint of given labels and true classes: ``Q[k, j]`` rows labelled k whose
    true class is j (the confident joint's rows rescaled to the rows carrying each label).

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Out-of-sample class probabilities of each row.
    labels : ndarray of int, shape (n_samples,)
        Given labels as class indices.

    Returns
    -------
    ndarray of float, shape (n_classes, n_classes)
    """
    joint = confident_joint(proba, labels).astype(float)
    unseen = joint.sum(1) == 0  # no row of the label is confident: no evidence against it
    joint[unseen] = np.eye(len(joint))[unseen]
    carried = np.bincount(labels, minlength=proba.shape[1])
    return joint / joint.sum(1, keepdims=True) * carried[:, None]


def count_label_issues(proba, labels):
    """Estimated mislabelled rows carrying each label: the calibrated confident joint's
    off-diagonal mass, row by row.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Out-of-sample class probabilities of each row.
    labels : ndarray of int, shape (n_samples,)
        Given labels as class indices.

    Returns
    -------
    ndarray of int, shape (n_classes,)
        Entry k: how many of the rows labelled k are estimated to be mislabelled.
    """
    return mislabelled_per_label(calibrated_joint(proba, labels))


def mislabelled_per_label(joint):
    """:func:`count_label_issues` from a joint :func:`calibrated_joint` already formed: its
    off-diagonal mass, row by row, rounded to rows."""
    return np.round(joint.sum(1) - np.diag(joint)).astype(int)


def noise_transition(joint):
    """``T[j, k]``: the probability that a row of true class j is labelled k, from a joint
    of (given label, true class) counts such as :func:`calibrated_joint`'s.

    A class no row is estimated to belong to gets a zero row.
    """
    truth = joint.sum(0)
    return np.divide(joint.T, truth[:, None], out=np.zeros_like(joint.T, dtype=float),
                     where=truth[:, None] > 0)


def mislabelled_posterior(proba, labels, transition):
    """Probability that each row's given label is wrong, by Bayes' rule under the noise
    transition: ``sum_{j != k} p_j T[j, k] / sum_j p_j T[j, k]`` for a row labelled k whose
    true class probabilities are ``p``.

    Within a label it orders the rows as their probability of the label does when the noise is
    uniform over the other classes (and always with two classes); under structured noise (class
    k labelled k + 1) a row labelled k + 1 that resembles k + 2, a class that rarely turns into
    k + 1, keeps a low probability of being mislabelled.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Out-of-sample class probabilities of each row.
    labels : ndarray of int, shape (n_samples,)
        Given labels as class indices.
    transition : ndarray of shape (n_classes, n_classes)
        :func:`noise_transition`'s ``T``.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    via = proba * transition[:, labels].T  # via[i, j] = p_ij T[j, label_i]: class j, then label
    rows = np.arange(len(labels))
    return 1 - via[rows, labels] / np.maximum(via.sum(1), np.finfo(float).tiny)


def forward_log_likelihood(proba, labels, transition):
    """Log-probability of each given label when a model's class probabilities pass through the
    estimated label noise: ``log (proba @ T)[i, labels[i]]``.

    The forward loss correction of Patrini et al. (2017) scores a model of the *true*
    classes on noisy labels: under class-conditional noise ``T``, the noisy label of a row whose
    true class probabilities are ``p`` follows ``p @ T``. Averaged over held-out rows it is a
    proper score of ``proba`` as the true class probabilities, where the plain log-likelihood
    rewards a model that learnt the noise.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        The model's class probabilities.
    labels : ndarray of int, shape (n_samples,)
        Given (possibly corrupted) labels as class indices.
    transition : ndarray of shape (n_classes, n_classes)
        :func:`noise_transition`'s ``T``.

    Returns
    -------
    ndarray of shape (n_samples,)
        A label no class is estimated to produce scores the same floor under every model.
    """
    noisy = (proba @ transition)[np.arange(len(labels)), labels]
    return np.log(np.maximum(noisy, np.finfo(float).tiny))


def forward_spherical_score(proba, labels, transition):
    """Spherical score of each given label under a model's class probabilities passed through
    the estimated label noise: ``q[i, labels[i]] / ||q[i]||`` with ``q = proba @ T``.

    Like :func:`forward_log_likelihood` a proper score of ``proba`` as the true class
    probabilities under class-conditional noise ``T``, but bounded (in [0, 1]): a row the model
    is already sure of adds little when the model grows surer, so the rows whose prediction is
    in doubt, which decide accuracy, weigh more than under the log-likelihood.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        The model's class probabilities.
    labels : ndarray of int, shape (n_samples,)
        Given (possibly corrupted) labels as class indices.
    transition : ndarray of shape (n_classes, n_classes)
        :func:`noise_transition`'s ``T``.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    noisy = proba @ transition
    norm = np.linalg.norm(noisy, axis=1)
    return np.divide(noisy[np.arange(len(labels)), labels], norm, out=np.zeros(len(labels)),
                     where=norm > 0)


def count_outliers(residuals, z=OUTLIER_Z):
    """Rows whose residual lies more than ``z`` robust standard deviations from the median.

    The scale is the median absolute deviation times 1.4826 (the standard deviation of a
    normal sample); it is the regression counterpart of :func:`count_label_issues`.
    """
    center = np.median(residuals)
    scale = 1.4826 * np.median(np.abs(residuals - center))
    if scale == 0:
        return 0
    return int((np.abs(residuals - center) > z * scale).sum())
