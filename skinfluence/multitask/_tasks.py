"""Task labels as per-row metadata, the way scikit-learn passes ``groups`` or ``sample_weight``.

The multitask estimators take ``tasks`` as a keyword of ``fit``, ``predict`` and ``score`` and
*request* it by default for metadata routing, so that with
``sklearn.set_config(enable_metadata_routing=True)`` meta-estimators (``Pipeline``,
``cross_val_score``, ``GridSearchCV``) slice it with the rows and hand it on unasked. See
``docs/design.rst``, "Task labels".
"""

import numpy as np
from sklearn.utils.validation import check_consistent_length, column_or_1d

from .._validation import check_label_types

#: Default routing requests of a method that takes ``tasks`` (``__metadata_request__<method>``).
REQUEST_TASKS = {"tasks": True}


def check_tasks(tasks, n_rows):
    """Validate a task-label vector: one label per row, like ``groups`` in scikit-learn.

    Parameters
    ----------
    tasks : array-like of shape (n_rows,) or (n_rows, 1), or None
    n_rows : int
        Rows of the ``X`` the labels belong to.

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    if tasks is None:
        raise ValueError(
            "`tasks` is required: pass one task label per row of X, e.g. fit(X, y, tasks=tasks). "
            "Through Pipeline, cross_val_score or GridSearchCV, enable metadata routing "
            "(sklearn.set_config(enable_metadata_routing=True)) and pass it as a parameter, "
            "e.g. cross_val_score(model, X, y, params={'tasks': tasks}); it is requested by "
            "default and sliced with the rows."
        )
    shape = np.shape(tasks)
    if len(shape) != 1 and shape[1:] != (1,):
        raise ValueError(f"`tasks` must be 1-d, one label per row of X; got shape {shape}.")
    tasks = check_label_types(column_or_1d(tasks), "tasks")  # a column vector is raveled
    check_consistent_length(np.empty(n_rows), tasks)
    return tasks
