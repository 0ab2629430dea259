"""K-FAC curvature for networks of ``nn.Linear`` layers (trimming paper, section 5, Algorithm 5).

The Hessian of a network's objective ``J = row_scale * sum_i w_i loss_i + penalty`` is replaced by

    H_KFAC = blockdiag_l ( A_l (x) G_l + lambda_l I )

* **block-diagonal over layers**: cross-layer curvature is dropped;
* **Kronecker within a layer** (Martens & Grosse, 2015): with ``a_i`` the layer's input
  activation (plus a 1 for the bias), ``z_i`` its pre-activation output and ``c_i = row_scale *
  w_i``,

      A_l = sum_i c_i a_i a_i^T,      G_l = sum_i c_i B_i B_i^T / sum_i c_i,

  where ``B_i = (d outputs / d z_i)^T L_i`` and ``L_i L_i^T`` is the output curvature of the loss
  (the Gauss-Newton / Fisher form: the Hessian through the network's nonlinearity is dropped).
  For one linear layer with one output (e.g. linear regression with MSE) this is the exact
  Hessian;
* **weight decay as plain damping**: the L2 penalty's coefficient ``lambda_l`` of the layer (its
  weight's, which is exact when bias and weight share it) is added to the Kronecker product's
  diagonal *exactly* (not pi-corrected): ``(A (x) G + lambda I)^-1`` is applied in the two
  factors' eigenbases, so the block inverse is that of the damped Kronecker product itself.

``solve`` costs two small eigendecompositions per layer once and O(p * (d_in + d_out)) per vector.
"""

import warnings

import torch
from torch.func import functional_call, grad

from .solvers import _as_block

__all__ = ["KFACSolver"]


def _linear_layers(module, names):
    """``[(layer, weight_name, bias_name or None)]`` covering every variable parameter."""
    layers, covered = [], set()
    for prefix, layer in module.named_modules():
        if not isinstance(layer, torch.nn.Linear):
            continue
        stem = f"{prefix}." if prefix else ""
        weight, bias = f"{stem}weight", f"{stem}bias"
        if weight not in names:
            if bias in names:
                raise ValueError(f"K-FAC needs {weight} variable when {bias} is.")
            continue
        layers.append((layer, weight, bias if bias in names else None))
        covered.update({weight, bias} & set(names))
    others = [n for n in names if n not in covered]
    if others:
        raise ValueError(
            f"K-FAC supports networks whose variable parameters are nn.Linear weights and "
            f"biases; {others[:3]} are not. Use the exact or 'lowrank' solver, or "
            "params='last'."
        )
    return layers


class KFACSolver:
    """``H_KFAC^-1 V`` for a network's objective (see the module docstring for the approximation).

    Parameters
    ----------
    objective : skinfluence.backend.Objective
        The network's objective view (from a :class:`TorchModel` or a skorch net); its
        ``network`` attribute supplies the layer structure.
    damping : float, default=0.0
        Added to every block's diagonal, on top of the weight decay.

    Raises
    ------
    ValueError
        When a variable parameter is not an ``nn.Linear`` weight or bias, or the model is not
        a network (scikit-learn linear models: use the exact solver, it is cheap there).
    """

    def __init__(self, objective, damping=0.0):
        if objective.network is None:
            raise ValueError(
                "K-FAC needs the objective of a network of torch.nn.Linear layers (a "
                "skinfluence.TorchModel or a skorch net); for linear models the exact Hessian is "
                "cheap: use the exact solver (approximation=None)."
            )
        module, names, self._link = objective.network
        theta = objective.theta
        layers = _linear_layers(module, names)
        named = dict(module.named_parameters())
        offsets, start = {}, 0
        for n in names:
            offsets[n] = start
            start += named[n].numel()
        pieces = torch.split(theta, [named[n].numel() for n in names])
        self._tensors = {n: t.reshape(named[n].shape) for n, t in zip(names, pieces)}
        self._module, self._layers, self.damping = module, layers, damping
        decays = grad(objective.penalty)(torch.ones_like(theta))  # penalty 0.5 sum decay theta^2
        self._index, self._decay = [], []
        for layer, weight, bias in layers:
            out, inp = layer.out_features, layer.in_features
            index = offsets[weight] + torch.arange(out * inp, device=theta.device).reshape(out, inp)
            if bias is not None:
                column = offsets[bias] + torch.arange(out, device=theta.device)
                index = torch.cat([index, column.unsqueeze(1)], dim=1)
                if not torch.allclose(decays[column], decays[offsets[weight]]):
                    warnings.warn(f"K-FAC uses {weight}'s weight decay for {bias} too.",
                                  RuntimeWarning, stacklevel=2)
            self._index.append(index)  # (out, in [+1]) positions of [W b] in theta
            self._decay.append(decays[offsets[weight]].item())
        self._factorise(objective)

    def _forward(self, X, deltas):
        """Network outputs with ``deltas[l]`` added to layer l's output; records its inputs
        (in the order of the layers, whatever order ``forward`` calls them in)."""
        inputs, handles = [[] for _ in self._layers], []
        for (layer, _, _), delta, seen in zip(self._layers, deltas, inputs):
            def hook(mod, args, output, delta=delta, seen=seen):
                seen.append(args[0])
                return output + delta
            handles.append(layer.register_forward_hook(hook))
        try:
            Z = functional_call(self._module, self._tensors, (X,))
        finally:
            for h in handles:
                h.remove()
        if any(len(seen) != 1 for seen in inputs):
            raise ValueError("K-FAC needs every nn.Linear layer to be called once per forward.")
        return self._link(Z.reshape(X.shape[0], -1)), [seen[0] for seen in inputs]

    def _factorise(self, objective):
        theta = objective.theta
        A = [torch.zeros(i.shape[1], i.shape[1], dtype=theta.dtype, device=theta.device)
             for i in self._index]
        G = [torch.zeros(i.shape[0], i.shape[0], dtype=theta.dtype, device=theta.device)
             for i in self._index]

        total = 0.0
        per_row = sum(i.numel() for i in self._index) + objective.n_outputs ** 2
        for s in objective.chunks(objective.n_rows, per_row):
            X, y = objective.X[s], objective.y[s]
            c = objective.row_scale * objective.weights[s]
            deltas = [torch.zeros(len(X), i.shape[0], dtype=theta.dtype, device=theta.device,
                                  requires_grad=True) for i in self._index]
            with torch.enable_grad():
                Z, inputs = self._forward(X, deltas)
                if not torch.allclose(Z, objective.outputs(theta, X)):
                    raise ValueError("The model's outputs differ from its objective's; build "
                                     "the solver from the model the objective was made of.")
                # output curvature Lambda_i = L_i L_i^T (PSD for the supported losses)
                lam, W = torch.linalg.eigh(objective.output_curvature(Z.detach(), y))
                L = W * lam.clamp_min(0).sqrt().unsqueeze(1)  # (n, K, K), columns = factors
                for k in range(L.shape[2]):
                    B = torch.autograd.grad((Z * L[:, :, k]).sum(), deltas, retain_graph=True)
                    for l, b in enumerate(B):
                        G[l] += (c[:, None] * b).T @ b
            for l, (a, index) in enumerate(zip(inputs, self._index)):
                a = a.detach().reshape(len(X), -1)
                if index.shape[1] > a.shape[1]:
                    a = torch.cat([a, torch.ones_like(a[:, :1])], dim=1)
                A[l] += (c[:, None] * a).T @ a
            total += c.sum()
        self._eig = []
        for a, g in zip(A, G):
            ea, qa = torch.linalg.eigh(a)
            eg, qg = torch.linalg.eigh(g / total)
            self._eig.append((qg, qa, torch.outer(eg.clamp_min(0), ea.clamp_min(0))))
        self._check_definite()

    def _check_definite(self):
        """Warn, with the smallest eigenvalue, and add damping if a block is singular."""
        smallest = min(s.min().item() + d for (_, _, s), d in zip(self._eig, self._decay))
        largest = max(s.max().item() + d for (_, _, s), d in zip(self._eig, self._decay))
        if smallest + self.damping > 1e-10 * largest:
            return
        shift = 1e-6 * largest
        warnings.warn(
            f"The K-FAC Hessian is singular (smallest eigenvalue {smallest:.3g}, largest "
            f"{largest:.3g}); adding damping {shift:.3g}. Train with weight decay or pass a "
            "larger `damping`.", RuntimeWarning, stacklevel=3)
        self.damping += shift

    def solve(self, V):
        """Return ``H_KFAC^-1 V`` for ``V`` of shape (p,) or (p, m) (flat parameter order)."""
        B, squeeze = _as_block(V)
        out = torch.empty_like(B)
        for index, decay, (qg, qa, scale) in zip(self._index, self._decay, self._eig):
            X = B[index.reshape(-1)].reshape(*index.shape, -1).permute(2, 0, 1)  # (m, out, in)
            # (G (x) A + lambda I) vec_r(X) = vec_r(G X A + lambda X), solved in the eigenbases
            inner = qg.T @ X @ qa / (scale + decay + self.damping)
            out[index.reshape(-1)] = (qg @ inner @ qa.T).permute(1, 2, 0).reshape(index.numel(), -1)
        return out.squeeze(1) if squeeze else out
