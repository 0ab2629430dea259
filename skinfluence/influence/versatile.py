"""The versatile influence function (VIF) for non-decomposable losses.

A non-decomposable loss ``L(theta, b)`` depends on the training objects through a presence mask
``b in {0, 1}^n`` (Definition 2.1 of the VIF paper): a Cox partial likelihood, a contrastive or a
listwise ranking loss, where one loss term involves several objects. Definition 2.6 replaces the
influence-function limit by the finite difference between the loss with all objects and the loss
without object ``i``::

    VIF(i) = -H^-1 grad_theta [L(theta, 1) - L(theta, 1_-i)],   H = hess_theta L(theta, 1).

That quantity approximates ``theta - theta_-i``. This library reports *removal effects*
``theta_-i - theta``, so :func:`versatile_influence` returns ``-VIF(i)``, the Newton step from
``theta`` on the loss without ``i`` (with the full-data Hessian). For a decomposable loss
``L = sum_i b_i l_i`` it equals the classical influence function ``H^-1 grad l_i`` exactly
(appendix D).
"""

from numbers import Integral

import torch
from sklearn.utils._param_validation import Interval
from torch.func import grad, hessian, vmap

from .._validation import check_indices, public
from ..backend.device import as_tensor, resolve_device
from ..backend.solvers import CholeskySolver

__all__ = ["versatile_influence"]


@public("damping", "device", loss=[callable], theta=["array-like"],
        n_objects=[Interval(Integral, 1, None, closed="left")], objects=["array-like", None],
        gradient_drop=[callable, None], hessian_matrix=["array-like", None],
        batch_size=[Interval(Integral, 1, None, closed="left")])
def versatile_influence(
    loss,
    theta,
    n_objects,
    *,
    objects=None,
    gradient_drop=None,
    hessian_matrix=None,
    damping=0.0,
    batch_size=64,
    device="auto",
):
    """Predicted change of the parameters when each training object is removed.

    Parameters
    ----------
    loss : callable
        ``loss(theta, mask) -> scalar tensor``, the training objective at parameters ``theta``
        (1-d tensor) with objects present where ``mask`` (1-d tensor of 0/1 floats of length
        ``n_objects``) is one. It must be written with torch operations that
        ``torch.func.vmap`` can batch over masks (no in-place writes, no ``.item()``).
    theta : array-like of shape (d,)
        Parameters minimising ``loss(theta, ones)``.
    n_objects : int
        Number of training objects the mask ranges over.
    objects : array-like of int or bool, default=None
        Objects to score (indices, or a boolean mask of length ``n_objects``); all by default.
    gradient_drop : callable, default=None
        ``gradient_drop(indices) -> array-like (len(indices), d)`` (a tensor, or anything
        ``torch.as_tensor`` takes), a closed form of
        ``grad L(theta, 1) - grad L(theta, 1_-i)``; replaces the automatic differentiation
        (Cox regression passes its risk-set closed form).
    hessian_matrix : array-like of shape (d, d), default=None
        ``hess L(theta, 1)``; computed with ``torch.func.hessian`` when omitted.
    damping : float, default=0.0
        Added to the Hessian's diagonal before solving.
    batch_size : int, default=64
        Number of masks differentiated at once (bounds memory at ``batch_size * n_objects``).
    device : str or torch.device, default="auto"

    Returns
    -------
    effects : ndarray of shape (n_scored, d)
        Row ``i``: predicted ``theta_-i - theta``. The effect on a target ``f(theta)`` is
        ``effects @ grad f(theta)`` (equation 5).

    Examples
    --------
    >>> import torch
    >>> from skinfluence.influence.versatile import versatile_influence
    >>> x = torch.tensor([1.0, 2.0, 6.0], dtype=torch.float64)
    >>> def loss(theta, mask):  # mean estimation, a decomposable loss
    ...     return 0.5 * (mask * (x - theta[0]) ** 2).sum()
    >>> versatile_influence(loss, [3.0], 3).ravel().round(3)  # fitted theta: the mean, 3
    array([ 0.667,  0.333, -1.   ])

    Exact refits give ``[1, 0.5, -1.5]`` (the mean of the other two, minus 3): the full-data
    Hessian ``n`` replaces the leave-one-out Hessian ``n - 1``, a first-order under-prediction
    of ``1/n``.
    """
    device = resolve_device(device)
    theta = as_tensor(theta, device)
    ones = torch.ones(n_objects, dtype=theta.dtype, device=device)
    indices = torch.as_tensor(check_indices(objects, n_objects, "objects"), device=device)
    if hessian_matrix is None:
        hessian_matrix = hessian(loss)(theta, ones)
    if gradient_drop is None:
        gradient_drop = _autodiff_gradient_drop(loss, theta, ones)
    drops = torch.cat([as_tensor(gradient_drop(chunk), device, theta.dtype)
                       for chunk in indices.split(batch_size)])
    solver = CholeskySolver(as_tensor(hessian_matrix, device, theta.dtype), damping=damping)
    # removal effect = H^-1 (grad L(1) - grad L(1_-i)) = -VIF(i)
    return solver.solve(drops.T).T.cpu().numpy()


def _autodiff_gradient_drop(loss, theta, ones):
    """``grad L(theta, 1) - grad L(theta, 1_-i)`` by differentiating a batch of masks."""
    loss_grad = grad(loss)
    full = loss_grad(theta, ones)
    batched = vmap(loss_grad, in_dims=(None, 0))

    def gradient_drop(chunk):
        masks = ones.repeat(chunk.numel(), 1)
        masks[torch.arange(chunk.numel()), chunk] = 0.0
        return full - batched(theta, masks)

    return gradient_drop
