"""How many training rows look mislabelled: a confident-learning count (Northcutt et al., 2021).

From out-of-sample class probabilities ``P`` (here each row's leave-one-out probabilities) and
the given labels: class j's threshold ``t_j`` is the mean probability of j over the rows
labelled j (its mean self-confidence); row i is *confidently* of class ``j*``, the most probable
class among those whose probability reaches their threshold (none: the row is not counted).
Counting rows by (given label, confident class) gives the confident joint ``C``; each of its rows
is rescaled to the number of rows carrying that label (calibration), and the off-diagonal mass
is the estimated number of mislabelled rows carrying that label.
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
    joint = confident_joint(proba, labels).astype(float)
    carried = np.bincount(labels, minlength=proba.shape[1])
    totals = joint.sum(1)
    kept = np.divide(np.diag(joint), totals, out=np.ones_like(totals), where=totals > 0)
    return np.round((1 - kept) * carried).astype(int)


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
