"""Heat map of task relatedness from task-level influence."""

import numpy as np


def plot_task_influence(influence, *, task_labels=None, ax=None, cmap="RdBu"):
    """Draw a K x K task-influence matrix as a heat map centred on zero.

    Parameters
    ----------
    influence : MultitaskInfluence or array-like of shape (K, K)
        A fitted :class:`MultitaskInfluence` (its ``task_influence_``) or any matrix with row
        l = removed task and column k = target task.
    task_labels : sequence of str, default=None
        Tick labels; defaults to the fitted ``tasks_`` or 0..K-1.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when omitted.
    cmap : str, default="RdBu"
        Diverging colour map: with the library's sign, blue (positive) = the removed task helps
        the target, red = it hurts (negative transfer).

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib.pyplot as plt

    if hasattr(influence, "task_influence_"):
        matrix = influence.task_influence_
        task_labels = influence.tasks_ if task_labels is None else task_labels
    else:
        matrix = np.asarray(influence, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"The influence matrix must be square; got shape {matrix.shape}.")
    task_labels = np.arange(len(matrix)) if task_labels is None else task_labels
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.2))
    limit = np.nanmax(np.abs(matrix)) or 1.0
    image = ax.imshow(matrix, cmap=cmap, vmin=-limit, vmax=limit)
    ticks = np.arange(len(matrix))
    ax.set_xticks(ticks, [str(t) for t in task_labels], rotation=90)
    ax.set_yticks(ticks, [str(t) for t in task_labels])
    ax.set_xlabel("target task k")
    ax.set_ylabel("removed task l")
    ax.figure.colorbar(image, ax=ax, label="change of target validation loss")
    return ax
