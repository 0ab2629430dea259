"""Backend: device policy, differentiable views of fitted models, curvature solvers.

Nothing here imports the estimator or measure layers.
"""

# import order matters only for registration: each module registers its adapters
from . import (  # noqa: F401
    active_set,
    glm,
    huber,
    linear,
    mlp,
    ridge,
    torch_models,
    wrappers,
)
from .device import default_dtype, resolve_device
from .objective import Objective
from .registry import (
    ModelView,
    find_adapter,
    make_objective,
    model_to_refit,
    register_adapter,
    register_wrapper,
    supported_models,
    unwrap_model,
)
from .solvers import CGSolver, CholeskySolver, LanczosSolver, make_solver
from .torch_models import TorchModel

__all__ = [
    "CGSolver",
    "CholeskySolver",
    "LanczosSolver",
    "ModelView",
    "Objective",
    "TorchModel",
    "default_dtype",
    "find_adapter",
    "make_objective",
    "make_solver",
    "model_to_refit",
    "register_adapter",
    "register_wrapper",
    "resolve_device",
    "supported_models",
    "unwrap_model",
]
