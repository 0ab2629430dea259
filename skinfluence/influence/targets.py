"""Targets ``f(theta)`` whose change under removal of a training row is measured."""

import torch
from torch.func import grad, vmap

from ..backend.device import as_tensor

TARGETS = ("loss", "mean_loss", "prediction")


class Target:
    """A target evaluated on a set of rows.

    Parameters
    ----------
    objective : Objective
        Supplies the model's outputs and natural loss.
    X : ndarray of shape (m, d)
        The user's rows (a Pipeline's preprocessing is applied through ``objective.preprocess``).
    y : ndarray of shape (m,) or None
        Needed for loss targets, and for the prediction of a multiclass classifier.
    kind : {"loss", "mean_loss", "prediction"}
        ``"loss"``: each row's natural loss (log loss or squared error); ``"mean_loss"``: their
        mean; ``"prediction"``: each row's raw output (regression value, binary log-odds) or,
        for a multiclass classifier, the log-probability of the class in ``y``.
    """

    def __init__(self, objective, X, y, kind):
        if kind not in TARGETS:
            raise ValueError(f"target={kind!r} is not supported; use one of {TARGETS}.")
        theta = objective.theta
        self.objective, self.kind = objective, kind
        self.X = objective.as_rows(objective.preprocess(X))
        self.y = None if y is None else as_tensor(objective.encode(y), theta.device, theta.dtype)
        n_predictions = objective.n_outputs - objective.n_auxiliary_outputs
        if self.y is None and (kind != "prediction" or n_predictions > 1):
            raise ValueError(f"target={kind!r} needs y_test (the test rows' labels or targets).")
        if kind == "prediction" and n_predictions > 1 and objective._log_proba is None:
            raise ValueError(
                f"target='prediction' is undefined for a model with {n_predictions} outputs and no "
                "class probabilities (e.g. a multiclass RidgeClassifier); use target='loss'."
            )

    def values(self, theta):
        """Target values at ``theta``: shape (m,), or (1,) for ``"mean_loss"``."""
        return self.values_of_outputs(self.objective.outputs(theta, self.X))

    def values_of_outputs(self, Z):
        """Target values from the model's outputs ``Z`` (m, K) on the target rows."""
        return self.values_of_output_sets(Z.unsqueeze(0))[0]

    def values_of_output_sets(self, Z):
        """Target values for several sets of outputs ``Z`` (c, m, K): shape (c, m), or (c, 1)
        for ``"mean_loss"``."""
        obj = self.objective
        c, m, K = Z.shape
        flat, y = Z.reshape(c * m, K), self.y.repeat(c) if self.y is not None else None
        if self.kind == "prediction" and obj.n_outputs - obj.n_auxiliary_outputs == 1:
            rows = flat[:, 0]
        elif self.kind == "prediction":
            rows = torch.gather(obj.output_log_proba(flat), 1, y.long().unsqueeze(1))[:, 0]
        else:
            rows = obj.output_loss(flat, y)
        rows = rows.reshape(c, m)
        return rows.mean(1, keepdim=True) if self.kind == "mean_loss" else rows

    def values_at(self, thetas):
        """Target values at each row of ``thetas`` (c, p): shape (c, m)."""
        return vmap(self.values)(thetas)

    def gradients(self):
        """Gradient of each target value at the fitted ``theta``: shape (m, p)."""
        theta = self.objective.theta
        if hasattr(self.objective, "jacobian_transpose_times"):
            return self._linear_gradients()
        if self.kind == "mean_loss":
            return grad(lambda t: self.values(t)[0])(theta).unsqueeze(0)
        m = self.X.shape[0]
        eye = torch.eye(m, dtype=theta.dtype, device=theta.device)
        # rows of the Jacobian, one reverse pass per chunk of basis vectors
        _, vjp_fn = torch.func.vjp(self.values, theta)
        return torch.cat([vmap(vjp_fn)(eye[s])[0]
                          for s in self.objective.chunks(m, self.objective.n_params)])

    def _linear_gradients(self):
        """``J_j^T d f_j / d Z_j`` for a model linear in ``theta``: one plain backward pass in
        the outputs (each value depends on its own row's outputs only), no ``torch.func``."""
        obj = self.objective
        Z = obj.outputs(obj.theta, self.X).detach().requires_grad_(True)
        dZ = torch.autograd.grad(self.values_of_outputs(Z).sum(), Z)[0]
        G = obj.jacobian_transpose_times(self.X, dZ)
        return G.sum(0, keepdim=True) if self.kind == "mean_loss" else G

    def finalize(self, effects):
        """Shape (n, m) effects as the public functions return them (1-D for a mean loss)."""
        out = effects.detach().cpu().numpy()
        return out[:, 0] if self.kind == "mean_loss" else out
