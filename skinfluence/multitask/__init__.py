"""Multitask models and their data-level and task-level influence (MTIF)."""

from skinfluence.multitask._influence import (
    MultitaskInfluence,
    leave_one_row_out,
    leave_one_task_out,
)
from skinfluence.multitask._network import SharedBottomNetwork
from skinfluence.multitask._objective import MultitaskObjective, multitask_objective
from skinfluence.multitask._plot import plot_task_influence
from skinfluence.multitask._ridge import MultitaskRidge
from skinfluence.multitask._synthetic import make_multitask_regression

__all__ = [
    "MultitaskInfluence",
    "MultitaskObjective",
    "MultitaskRidge",
    "SharedBottomNetwork",
    "leave_one_row_out",
    "leave_one_task_out",
    "make_multitask_regression",
    "multitask_objective",
    "plot_task_influence",
]
