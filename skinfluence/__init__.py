"""skinfluence: influence-based data attribution for scikit-learn, skorch and PyTorch models.

Every score is a *removal effect*: the predicted change ``f(theta without row i) - f(theta)``
of a target ``f`` (a validation loss, a test row's loss or prediction). Public names are
imported lazily so that ``import skinfluence`` stays cheap.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "influence": "skinfluence.influence",
    "leave_one_out": "skinfluence.influence",
    "self_influence": "skinfluence.influence",
    "influence_value": "skinfluence.influence",
    "register_adapter": "skinfluence.backend",
    "make_objective": "skinfluence.backend",
    "TorchModel": "skinfluence.backend",
    "versatile_influence": "skinfluence.influence.versatile",
    "InfluenceTrimmer": "skinfluence.trim",
    "ActiveLearningSelector": "skinfluence.active",
    "active_learning_curve": "skinfluence.active",
    "MultitaskInfluence": "skinfluence.multitask",
    "CoxInfluence": "skinfluence.survival",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'skinfluence' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
