"""The differentiable view of a fitted model that every influence measure works on.

A fitted estimator minimised

    J(theta) = row_scale * sum_i w_i * loss(theta, x_i, y_i) + penalty(theta)

where ``loss`` is the *natural* per-row loss (log loss for classifiers, squared error for
regressors), ``w_i`` the row weights (``sample_weight`` times ``class_weight``) and ``row_scale``
the estimator's own scaling (``C`` for ``LogisticRegression``, ``1/n`` for SGD and skorch nets).
Removing row i sets ``w_i = 0``, so the parameter shift of a removal is, to first order,
``H^-1 g_i`` with ``g_i = row_scale * w_i * grad loss_i`` (the *training gradient* of the row).

The loss is factored as ``loss = output_loss(outputs(theta, x), y)``: ``outputs`` are the model's
K raw outputs (logits or predictions). Its Gauss-Newton factors (output Jacobian ``J_i`` and output
curvature ``A_i``) give the exact Hessian for models linear in ``theta`` and the exact leave-one-out
Hessian used by the Newton-step estimate.
"""

import torch
from torch.func import grad, hessian, jacrev, jvp, vmap

from .device import as_tensor

#: Memory budget, in bytes, for one chunk of per-row derivatives.
CHUNK_BYTES = 2**27

#: Largest constant output Jacobian of a linear model kept between calls, in bytes.
JACOBIAN_CACHE_BYTES = 2**29


def _identity(X):
    return X


class Objective:
    """Differentiable training objective of a fitted model.

    Parameters
    ----------
    theta : torch.Tensor of shape (p,)
        Fitted parameters, flattened.
    X, y : torch.Tensor
        Training inputs (n, d) and targets (n,) (class indices for classifiers).
    weights : torch.Tensor of shape (n,)
        Per-row weights of the training objective.
    row_scale : float
        Scaling of each row's loss in the objective.
    outputs : callable
        ``outputs(theta, X)`` -> (n, K) raw model outputs.
    output_loss : callable
        ``output_loss(Z, y)`` -> (n,) natural per-row loss of outputs ``Z``.
    penalty : callable
        ``penalty(theta)`` -> scalar regulariser.
    is_classifier : bool
        Classifiers expose :meth:`log_proba`.
    jacobian : callable, optional
        For models whose outputs are linear in ``theta``: ``jacobian(X)`` -> (n, K, p), the
        constant output Jacobian. Gradients and the (then exact) Gauss-Newton Hessian use it
        directly instead of differentiating row by row.
    log_proba : callable, optional
        ``log_proba(Z)`` -> (n, K') class log-probabilities from outputs (classifiers).
    encode : callable, optional
        Maps user targets (e.g. class labels) to the numeric targets of ``output_loss``.
    network : tuple (torch.nn.Module, list of str, callable), optional
        For networks: the module ``outputs`` evaluates, the names of its variable parameters
        (in ``theta``'s order) and the function ``outputs`` applies to the module's output,
        for solvers that exploit layer structure (K-FAC).

    Attributes
    ----------
    preprocess : callable
        Maps the user's rows to the inputs of ``outputs``: a fitted Pipeline's preprocessing, set
        by :func:`skinfluence.backend.make_objective`; the identity for a bare model.
    n_auxiliary_outputs : int
        Trailing outputs that are parameters of the loss rather than predictions (the scale of
        ``HuberRegressor``); 0 unless an adapter sets it.
    """

    preprocess = staticmethod(_identity)
    n_auxiliary_outputs = 0

    def __init__(self, theta, X, y, weights, row_scale, *, outputs, output_loss, penalty,
                 is_classifier, jacobian=None, log_proba=None, encode=None, network=None):
        self.theta = theta
        self.X, self.y, self.weights = X, y, weights
        self.row_scale = float(row_scale)
        self.outputs, self.output_loss, self.penalty = outputs, output_loss, penalty
        self.is_classifier, self.jacobian = is_classifier, jacobian
        self.linear = jacobian is not None
        self._train_jacobian = None
        self._log_proba = log_proba
        self.encode = encode or _identity
        self.network = network
        self.n_outputs = outputs(theta, X[:1]).shape[1]

    # ------------------------------------------------------------------ basics
    @property
    def n_params(self):
        return self.theta.numel()

    @property
    def n_rows(self):
        return self.X.shape[0]

    def as_rows(self, X):
        """Evaluation rows ``X`` (array-like) in the form ``outputs`` takes: a tensor copy."""
        return as_tensor(X, self.theta.device, self.theta.dtype)

    def loss(self, theta, X, y):
        """Natural per-row loss, shape (n,)."""
        return self.output_loss(self.outputs(theta, X), y)

    def log_proba(self, theta, X):
        """Class log-probabilities, shape (n, n_classes) (classifiers only)."""
        return self.output_log_proba(self.outputs(theta, X))

    def output_log_proba(self, Z):
        """Class log-probabilities from raw outputs ``Z`` (n, K) (classifiers only)."""
        return self._log_proba(Z)

    def row_loss(self, theta, x, y):
        """Natural loss of one row ``(x, y)`` (no batch dimension): a scalar for torch.func."""
        return self.loss(theta, x.unsqueeze(0), y.unsqueeze(0))[0]

    def chunks(self, n, per_row_numbers):
        """Slices of ``range(n)`` whose per-row work of ``per_row_numbers`` floats fits the budget."""
        size = max(1, CHUNK_BYTES // (8 * max(1, per_row_numbers)))
        return [slice(start, min(start + size, n)) for start in range(0, n, size)]

    def objective(self, theta):
        """``J(theta)`` over all training rows."""
        total = self.penalty(theta)
        for s in self.chunks(self.n_rows, self.n_outputs):
            total = total + self.row_scale * (
                self.weights[s] * self.loss(theta, self.X[s], self.y[s])).sum()
        return total

    # ------------------------------------------------------------ derivatives
    def row_grads(self, X, y, theta=None):
        """Per-row gradients of the natural loss, shape (n, p), for one chunk of rows."""
        theta = self.theta if theta is None else theta
        if self.linear:
            return torch.einsum("nk,nkp->np", self._output_grads(theta, X, y), self.jacobian(X))
        return vmap(grad(self.row_loss), in_dims=(None, 0, 0))(theta, X, y)

    def train_grads(self, rows):
        """Training gradients ``g_i = row_scale * w_i * grad loss_i`` of rows ``rows`` (a slice)."""
        if not self.linear:
            scale = (self.row_scale * self.weights[rows]).unsqueeze(1)
            return scale * self.row_grads(self.X[rows], self.y[rows])
        return torch.einsum("nk,nkp->np", self._train_output_grads(rows),
                            self.training_jacobian(rows))

    def _train_output_grads(self, rows):
        """``row_scale * w_i * d loss / d outputs`` of training rows ``rows``: (n, K)."""
        scale = (self.row_scale * self.weights[rows]).unsqueeze(1)
        return scale * self._output_grads(self.theta, self.X[rows], self.y[rows])

    def train_grads_times(self, rows, V):
        """``G @ V`` for the training gradients ``G`` of rows ``rows`` and a block V (p, m).

        Linear models contract the Jacobian with ``V`` first and never form ``G``.
        """
        if not self.linear:
            return self.train_grads(rows) @ V
        J = self.training_jacobian(rows)
        JV = (J.reshape(-1, J.shape[2]) @ V).reshape(J.shape[0], J.shape[1], -1)
        return torch.einsum("nk,nkm->nm", self._train_output_grads(rows), JV)

    def training_jacobian(self, rows):
        """Output Jacobian of training rows ``rows`` of a linear model, cached when it is small."""
        if self._train_jacobian is None:
            size = 8 * self.n_rows * self.n_outputs * self.n_params
            if size > JACOBIAN_CACHE_BYTES:
                return self.jacobian(self.X[rows])
            self._train_jacobian = self.jacobian(self.X)
        return self._train_jacobian[rows]

    def mixed_partials(self, X, y):
        """Per-row mixed partials ``d/dx d/dtheta loss``, shape (n, p, d), for one chunk."""
        dtheta = grad(self.row_loss, argnums=0)
        return vmap(jacrev(dtheta, argnums=1), in_dims=(None, 0, 0))(self.theta, X, y)

    def _single_output_loss(self, z, y):
        return self.output_loss(z.unsqueeze(0), y.unsqueeze(0))[0]

    def _output_grads(self, theta, X, y):
        return vmap(grad(self._single_output_loss))(self.outputs(theta, X), y)

    def output_curvature(self, Z, y):
        """``d^2 loss / d outputs^2`` of each row of outputs ``Z``: shape (n, K, K)."""
        return vmap(hessian(self._single_output_loss))(Z, y)

    def output_factors(self, X, y, rows=None):
        """Gauss-Newton factors of one chunk of rows at ``theta``.

        Pass ``rows`` (a slice) when ``X, y`` are those training rows, to reuse cached work.

        Returns
        -------
        J : (n, K, p) output Jacobians ``d outputs / d theta``.
        r : (n, K) output gradients ``d loss / d outputs``.
        A : (n, K, K) output curvatures ``d^2 loss / d outputs^2``.
        """
        if self.linear:
            J = self.jacobian(X) if rows is None else self.training_jacobian(rows)
        else:
            def single_output(theta, x):
                return self.outputs(theta, x.unsqueeze(0))[0]
            J = vmap(jacrev(single_output), in_dims=(None, 0))(self.theta, X)
        Z = self.outputs(self.theta, X)
        r = vmap(grad(self._single_output_loss))(Z, y)
        A = self.output_curvature(Z, y)
        return J, r, A

    def hessian(self, data_only=False):
        """Hessian of ``J`` at ``theta``, shape (p, p).

        Models linear in ``theta`` sum the exact Gauss-Newton terms ``J_i^T A_i J_i``; others
        differentiate the objective twice, chunk by chunk. ``data_only=True`` gives the Hessian of
        the plain data loss ``sum_i loss_i`` (no penalty, weights or scaling).
        """
        p, K = self.n_params, self.n_outputs
        zero = torch.zeros(p, p, dtype=self.theta.dtype, device=self.theta.device)
        H = zero if data_only else hessian(self.penalty)(self.theta)
        for s in self.chunks(self.n_rows, 2 * K * p if self.linear else p * p // 64 + p):
            coeff = 1.0 if data_only else self.row_scale * self.weights[s]
            if not self.linear:
                def chunk_loss(theta, s=s, coeff=coeff):
                    return (coeff * self.loss(theta, self.X[s], self.y[s])).sum()
                H = H + hessian(chunk_loss)(self.theta)
                continue
            J, _, A = self.output_factors(self.X[s], self.y[s], rows=s)
            AJ = torch.einsum("nkl,nlp->nkp", A, J)
            if not data_only:
                AJ = coeff[:, None, None] * AJ
            H = H + J.reshape(-1, p).T @ AJ.reshape(-1, p)
        return H

    def hvp(self, V):
        """Hessian-vector products ``H V`` for a block ``V`` of shape (p, m)."""
        def one(v):
            return jvp(grad(self.objective), (self.theta,), (v,))[1]
        return vmap(one, in_dims=1, out_dims=1)(V)

    # ------------------------------------------------------------ diagnostics
    def gradient(self):
        """``grad J`` at ``theta`` (summed ``J_i^T r_i`` for linear models)."""
        if not self.linear:
            return grad(self.objective)(self.theta)
        total = grad(self.penalty)(self.theta)
        for s in self.chunks(self.n_rows, self.n_outputs * self.n_params):
            total = total + torch.einsum("nk,nkp->p", self._train_output_grads(s),
                                         self.training_jacobian(s))
        return total

    def cancellation_norm(self):
        """``sum_i |g_i| + |grad penalty|`` per parameter: the size of the terms of ``grad J``
        that cancel at a minimum, shape (p,) (linear models: one cheap pass)."""
        total = grad(self.penalty)(self.theta).abs()
        for s in self.chunks(self.n_rows, self.n_outputs * self.n_params):
            total = total + self.train_grads(s).abs().sum(0)
        return total

    def gradient_norm(self, refine_above=0.0):
        """Stationarity of the fit: ``|grad J|`` relative to the size of its terms.

        ``max_j |grad J|_j / max(row_scale * sum(w), c_j)``, with ``c_j`` the
        :meth:`cancellation_norm` for linear models: round-off in a sum of large terms (features
        of size 1e10) does not read as non-convergence. The cancellation norm (one more pass
        over ``X``) can only lower the figure, so it is computed only when the plain relative
        norm exceeds ``refine_above``.
        """
        gradient = self.gradient().abs()
        scale = self.row_scale * self.weights.sum()
        norm = (gradient / scale).max().item()
        if self.linear and norm > refine_above:
            norm = (gradient / torch.maximum(self.cancellation_norm(), scale)).max().item()
        return norm
