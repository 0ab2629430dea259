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
(the lemma's statement drops the minus). Cost: K factorisations of d_k x d_k blocks and one of
p x p; the dense inverse of the whole Hessian is never formed.
"""

import torch

from skinfluence.backend.solvers import CholeskySolver

__all__ = ["BlockArrowSolver"]


class BlockArrowSolver:
    """``solve(V)`` returns ``(H + damping I)^-1 V`` for a block-arrow Hessian ``H``.

    Parameters
    ----------
    task_blocks : sequence of torch.Tensor, each of shape (d_k, d_k)
        The diagonal task blocks ``A_k``.
    coupling_blocks : sequence of torch.Tensor, each of shape (d_k, p)
        The task-shared blocks ``B_k``.
    shared_block : torch.Tensor of shape (p, p)
        The shared block ``D``.
    damping : float, default=0.0
        Added to the whole diagonal of ``H``.

    Attributes
    ----------
    sizes : list of int
        ``[d_1, ..., d_K, p]``: how ``solve`` splits and stacks parameter vectors.
    """

    def __init__(self, task_blocks, coupling_blocks, shared_block, damping=0.0):
        if len(task_blocks) != len(coupling_blocks):
            raise ValueError(
                f"Got {len(task_blocks)} task blocks but {len(coupling_blocks)} coupling blocks; "
                "pass one coupling block per task."
            )
        self.damping = damping
        self._task = [CholeskySolver(A, damping=damping) for A in task_blocks]
        self._coupling = list(coupling_blocks)
        self._task_coupling = [s.solve(B) for s, B in zip(self._task, self._coupling)]  # A^-1 B
        p = shared_block.shape[0]
        eye = torch.eye(p, dtype=shared_block.dtype, device=shared_block.device)
        schur = shared_block + damping * eye
        for B, AinvB in zip(self._coupling, self._task_coupling):
            schur = schur - B.T @ AinvB
        self._schur = CholeskySolver(schur)
        self.sizes = [B.shape[0] for B in self._coupling] + [p]

    def solve(self, V):
        """Return ``(H + damping I)^-1 V`` for ``V`` of shape (P,) or (P, m), P = sum(sizes)."""
        squeeze = V.ndim == 1
        V = V.unsqueeze(1) if squeeze else V
        if V.shape[0] != sum(self.sizes):
            raise ValueError(
                f"V has {V.shape[0]} rows but the Hessian has {sum(self.sizes)} parameters."
            )
        *v_tasks, v_shared = torch.split(V, self.sizes)
        u_tasks = [s.solve(v) for s, v in zip(self._task, v_tasks)]  # A_k^-1 v_k
        rhs = v_shared
        for B, u in zip(self._coupling, u_tasks):
            rhs = rhs - B.T @ u
        shared = self._schur.solve(rhs)
        out = [u - AinvB @ shared for u, AinvB in zip(u_tasks, self._task_coupling)]
        out = torch.cat(out + [shared])
        return out.squeeze(1) if squeeze else out
