"""Exact solves with a block-arrow Hessian through its Schur complement (MTIF, Lemma F.6).

A multitask objective with task parameters ``theta_1..theta_K`` and shared parameters ``gamma``
has the Hessian (MTIF equation 6)

    H = [[A_1,            B_1],
         [     ...,       ... ],
         [          A_K,  B_K],
         [B_1^T ... B_K^T, D  ]]

with ``A_k = d2L/dtheta_k^2``, ``B_k = d2L/dtheta_k dgamma`` and ``D = d2L/dgamma^2``. With the
Schur complement ``N = D - sum_k B_k^T A_k^-1 B_k`` (equation F.6), ``x = H^-1 v`` is

    s   = N^-1 (v_gamma - sum_k B_k^T A_k^-1 v_k)
    x_k = A_k^-1 (v_k - B_k s),        x_gamma = s.

This is Lemma F.6 with the sign the proof (G.7) gives: ``[H^-1]_{k,K+1} = -A_k^-1 B_k N^-1``
(the lemma's statement drops the minus). Cost: K batched factorisations of d x d blocks and one
of p x p; the dense inverse of the whole Hessian is never formed.
"""

import warnings

import torch

from skinfluence.backend.solvers import CholeskySolver

__all__ = ["BlockArrowSolver"]


def _batched_cholesky(A, damping):
    """Cholesky factors of ``A_k + damping I``; blocks that are not positive definite get the
    smallest safe shift, with a warning (the policy of :class:`CholeskySolver`)."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    A = 0.5 * (A + A.transpose(1, 2)) + damping * eye
    factor, info = torch.linalg.cholesky_ex(A)
    bad = info != 0
    if bad.any():
        lam_min = torch.linalg.eigvalsh(A[bad])[:, 0]
        shift = lam_min.abs() + 1e-6 * A[bad].diagonal(dim1=1, dim2=2).abs().mean(1)
        warnings.warn(
            f"{int(bad.sum())} task block(s) of the Hessian are not positive definite (smallest "
            f"eigenvalue {lam_min.min().item():.3g}); adding up to {shift.max().item():.3g} to "
            "their diagonal. Influence estimates are then approximate: check that the model has "
            "converged, or pass a larger `damping`.",
            RuntimeWarning,
            stacklevel=3,
        )
        factor[bad] = torch.linalg.cholesky(A[bad] + shift[:, None, None] * eye)
    return factor


class BlockArrowSolver:
    """``solve(V)`` returns ``(H + damping I)^-1 V`` for a block-arrow Hessian ``H``.

    All K task blocks have the same size d (one parameter layout per task, as in MTIF's
    Examples 1 and 2). Parameter vectors are ordered ``[theta_1, ..., theta_K, gamma]``.

    Parameters
    ----------
    task_blocks : torch.Tensor of shape (K, d, d)
        The diagonal task blocks ``A_k``.
    coupling_blocks : torch.Tensor of shape (K, d, p)
        The task-shared blocks ``B_k``.
    shared_block : torch.Tensor of shape (p, p)
        The shared block ``D``.
    damping : float, default=0.0
        Added to the whole diagonal of ``H``.
    """

    def __init__(self, task_blocks, coupling_blocks, shared_block, damping=0.0):
        if task_blocks.ndim != 3 or coupling_blocks.shape[:2] != task_blocks.shape[:2]:
            raise ValueError(
                f"task_blocks must have shape (K, d, d) and coupling_blocks (K, d, p); got "
                f"{tuple(task_blocks.shape)} and {tuple(coupling_blocks.shape)}."
            )
        self.damping = damping
        self.n_tasks, self.task_size = task_blocks.shape[:2]
        self._factor = _batched_cholesky(task_blocks, damping)
        self._coupling = coupling_blocks
        self._task_coupling = torch.cholesky_solve(coupling_blocks, self._factor)  # A^-1 B
        eye = torch.eye(shared_block.shape[0], dtype=shared_block.dtype,
                        device=shared_block.device)
        schur = shared_block + damping * eye - torch.einsum(
            "kdp,kdq->pq", coupling_blocks, self._task_coupling)
        self._schur = CholeskySolver(schur)

    def solve(self, V):
        """Return ``(H + damping I)^-1 V`` for ``V`` of shape (P,) or (P, m), P = K d + p."""
        squeeze = V.ndim == 1
        V = V.unsqueeze(1) if squeeze else V
        K, d = self.n_tasks, self.task_size
        if V.shape[0] != K * d + self._coupling.shape[2]:
            raise ValueError(
                f"V has {V.shape[0]} rows but the Hessian has {K * d + self._coupling.shape[2]} "
                "parameters."
            )
        u = torch.cholesky_solve(V[: K * d].reshape(K, d, -1), self._factor)  # A_k^-1 v_k
        shared = self._schur.solve(V[K * d:] - torch.einsum("kdp,kdm->pm", self._coupling, u))
        tasks = u - self._task_coupling @ shared
        out = torch.cat([tasks.reshape(K * d, -1), shared])
        return out.squeeze(1) if squeeze else out
