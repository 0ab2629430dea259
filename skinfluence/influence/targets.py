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
        self.X = as_tensor(objective.preprocess(X), theta.device, theta.dtype)
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
        obj = self.objective
        if self.kind == "prediction":
            if obj.n_outputs - obj.n_auxiliary_outputs == 1:
                return obj.outputs(theta, self.X)[:, 0]
            log_proba = obj.log_proba(theta, self.X)
            return torch.gather(log_proba, 1, self.y.long().unsqueeze(1))[:, 0]
        loss = obj.loss(theta, self.X, self.y)
        return loss.mean().reshape(1) if self.kind == "mean_loss" else loss

    def values_at(self, thetas):
        """Target values at each row of ``thetas`` (c, p): shape (c, m)."""
        return vmap(self.values)(thetas)

    def gradients(self):
        """Gradient of each target value at the fitted ``theta``: shape (m, p)."""
        theta = self.objective.theta
        if self.kind == "mean_loss":
            return grad(lambda t: self.values(t)[0])(theta).unsqueeze(0)
        m = self.X.shape[0]
        eye = torch.eye(m, dtype=theta.dtype, device=theta.device)
        # rows of the Jacobian, one reverse pass per chunk of basis vectors
        _, vjp_fn = torch.func.vjp(self.values, theta)
        return torch.cat([vmap(vjp_fn)(eye[s])[0]
                          for s in self.objective.chunks(m, self.objective.n_params)])

    def finalize(self, effects):
        """Shape (n, m) effects as the public functions return them (1-D for a mean loss)."""
        out = effects.detach().cpu().numpy()
        return out[:, 0] if self.kind == "mean_loss" else out
