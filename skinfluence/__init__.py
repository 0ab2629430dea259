"""skinfluence: influence-based data attribution for scikit-learn, skorch and PyTorch models.

Every score is a *removal effect*: the predicted change ``f(theta without row i) - f(theta)``
of a target ``f`` (a validation loss, a test row's loss or prediction). Public names are
imported lazily so that ``import skinfluence`` stays cheap.
"""

import importlib

# Bind the functions over the subpackage of the same name (``skinfluence.influence``).
from .influence import influence, influence_value, leave_one_out, self_influence

__version__ = "0.1.0"

_PUBLIC = {
    "register_adapter": "skinfluence.backend",
    "register_wrapper": "skinfluence.backend",
    "make_objective": "skinfluence.backend",
    "TorchModel": "skinfluence.backend",
    "versatile_influence": "skinfluence.influence.versatile",
    "InfluenceTrimmer": "skinfluence.trim",
    "ActiveLearningSelector": "skinfluence.active",
    "active_learning_curve": "skinfluence.active",
    "MultitaskInfluence": "skinfluence.multitask",
    "MultitaskRidge": "skinfluence.multitask",
    "SharedBottomNetwork": "skinfluence.multitask",
    "leave_one_task_out": "skinfluence.multitask",
    "CoxInfluence": "skinfluence.survival",
    "CoxRegression": "skinfluence.survival",
    "TrajectoryInfluence": "skinfluence.trajectory",
    "repeated_leave_one_out": "skinfluence.influence.repeated_loo",
    "DiagnosticWarning": "skinfluence.backend.diagnostics",
    "DataValues": "skinfluence.valuation",
    "data_values": "skinfluence.valuation",
    "downsampling_influence": "skinfluence.valuation",
    "representer_points": "skinfluence.valuation",
}

__all__ = [
    "ActiveLearningSelector",
    "CoxInfluence",
    "CoxRegression",
    "DataValues",
    "DiagnosticWarning",
    "InfluenceTrimmer",
    "MultitaskInfluence",
    "MultitaskRidge",
    "SharedBottomNetwork",
    "TorchModel",
    "TrajectoryInfluence",
    "active_learning_curve",
    "data_values",
    "downsampling_influence",
    "influence",
    "influence_value",
    "leave_one_out",
    "leave_one_task_out",
    "make_objective",
    "register_adapter",
    "register_wrapper",
    "repeated_leave_one_out",
    "representer_points",
    "self_influence",
    "versatile_influence",
]


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'skinfluence' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
