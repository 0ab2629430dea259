"""Backend: device policy, differentiable views of fitted models, curvature solvers.

Nothing here imports the estimator or measure layers.
"""

from . import linear, torch_models  # noqa: F401  (register the built-in adapters)
from .device import default_dtype, resolve_device
from .objective import Objective
from .registry import find_adapter, make_objective, register_adapter, supported_models
from .solvers import CGSolver, CholeskySolver, LanczosSolver, make_solver
from .torch_models import TorchModel

__all__ = [
    "CGSolver",
    "CholeskySolver",
    "LanczosSolver",
    "Objective",
    "TorchModel",
    "default_dtype",
    "find_adapter",
    "make_objective",
    "make_solver",
    "register_adapter",
    "resolve_device",
    "supported_models",
]
