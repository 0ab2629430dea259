"""Survival analysis: Cox regression and the influence of training rows on its predictions."""

from ._adapters import as_cox_regression
from ._cox import CoxRegression, concordance_index, split_survival_frame
from ._datasets import load_survival_dataset
from ._influence import CoxInfluence
from ._validation import check_survival_target

__all__ = [
    "CoxInfluence",
    "CoxRegression",
    "as_cox_regression",
    "check_survival_target",
    "concordance_index",
    "load_survival_dataset",
    "split_survival_frame",
]
