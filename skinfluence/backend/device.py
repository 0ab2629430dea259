"""Device and dtype policy shared by every computation in the library."""

import numpy as np
import torch

#: Device types a ``device`` string may name (besides ``"auto"``).
DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device="auto"):
    """Return the torch device to compute on.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        ``"auto"`` picks CUDA when a GPU is visible, else the CPU.

    Returns
    -------
    torch.device
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, torch.device):
        given = device
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError):
            device = None
        if device is None or device.type not in DEVICE_TYPES:
            raise ValueError(
                f"device={given!r} is not a device skinfluence can compute on; use 'auto', "
                "'cpu', 'cuda', 'cuda:N' (a GPU index) or a torch.device."
            )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} was requested but no CUDA GPU is visible; "
            "use device='auto' or device='cpu'."
        )
    return device


def default_dtype(device):
    """float64 on the CPU (influence needs the precision), float32 on a GPU (speed)."""
    return torch.float64 if torch.device(device).type == "cpu" else torch.float32


#: The precisions a computation may run in, by name.
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_dtype(dtype, device):
    """The torch dtype to compute in: ``None`` picks :func:`default_dtype` for ``device``.

    Parameters
    ----------
    dtype : {None, "float64", "float32"} or torch.dtype
    device : torch.device
    """
    if dtype is None:
        return default_dtype(device)
    if dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype={dtype!r} is not supported; use None, 'float64' or 'float32'.")


def as_tensor(array, device, dtype=None):
    """Copy ``array`` into a tensor on ``device``; never aliases a user's numpy array."""
    if hasattr(array, "tocsr"):
        raise TypeError(
            "A scipy.sparse matrix was passed where dense data is needed: only the scikit-learn "
            "linear models take sparse X; pass X.toarray() for other models."
        )
    dtype = dtype or default_dtype(device)
    if isinstance(array, np.ndarray):
        if array.dtype.kind not in "biuf":
            raise ValueError(
                f"Cannot compute on values of dtype {array.dtype} (e.g. {array.flat[0]!r}): "
                "features and regression targets must be numeric; class labels need a "
                "classifier that maps them to indices."
            )
        # torch cannot wrap negative strides (X[::-1], np.flip); this copy never aliases either
        array = np.ascontiguousarray(array)
    return torch.as_tensor(array, dtype=dtype).to(device).clone()
