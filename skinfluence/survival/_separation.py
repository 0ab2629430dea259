"""Detect Cox fits with no finite solution (monotone partial likelihood).

For an unpenalised two-valued column and one ordering of its two values, call an event
*violating* when a row with the better value is still at risk at its time. With no violating
event, every event has the best value in its risk set and the partial likelihood improves forever
as that coefficient runs to +-infinity (e.g. a binary group without events). Columns with more
values are not checked.
"""

import numpy as np


def _separable_orderings(X, time, event, alpha):
    """Yield ``(column, violating, better_at_risk, is_better)`` per two-valued column ordering."""
    order = np.argsort(time, kind="stable")
    first_at_time = np.searchsorted(time[order], time, side="left")
    for j in np.flatnonzero(np.asarray(alpha) == 0):
        values = np.unique(X[:, j])
        if values.size != 2:
            continue
        for better in values:
            is_better = X[:, j] == better
            at_risk = np.cumsum(is_better[order][::-1])[::-1][first_at_time]
            yield j, event & ~is_better & (at_risk > 0), at_risk, is_better


def monotone_columns(X, time, event, alpha):
    """Columns whose coefficient is infinite in the fit on all rows."""
    return sorted(
        {
            j
            for j, violating, _, _ in _separable_orderings(X, time, event, alpha)
            if not violating.any()
        }
    )


def rows_without_finite_refit(X, time, event, alpha):
    """Boolean mask of rows whose removal leaves some coefficient infinite or undefined.

    Removing row ``i`` clears the last violating event in two ways: ``i`` is the only violating
    event, or ``i`` is the single latest better row and every violating event had only ``i``
    (count 1) of the better rows at risk. Removing the only event leaves an empty partial
    likelihood: with a penalty on every coefficient the refit is ``0``, otherwise undefined.
    """
    flagged = event & (event.sum() == 1) & np.any(np.asarray(alpha) == 0)
    for _, violating, at_risk, is_better in _separable_orderings(X, time, event, alpha):
        if not violating.any():
            continue
        if violating.sum() == 1:
            flagged |= violating
        latest = np.flatnonzero(is_better & (time == time[is_better].max()))
        if latest.size == 1 and np.all(at_risk[violating] == 1):
            flagged[latest] = True
    return flagged
