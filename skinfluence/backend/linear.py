"""Adapters for fitted scikit-learn linear models.

Each adapter states the objective the estimator minimised, in the form of :class:`Objective`
(``row_scale * sum_i w_i loss_i + penalty``); intercepts are never penalised except by
liblinear, which treats the intercept as a feature of value ``intercept_scaling``.

=========================================  ==============  ====================================
estimator                                  row_scale       penalty
=========================================  ==============  ====================================
LogisticRegression                         C (1 if none)   r ||W||_1 + 0.5 (1 - r) ||W||^2
LinearRegression                           1               0
Ridge                                      1               alpha ||W||^2
SGDClassifier(loss="log_loss"), binary     1 / n           0.5 alpha ||W||^2
SGDRegressor(loss="squared_error")         0.5 / n         0.5 alpha ||W||^2
=========================================  ==============  ====================================

``r`` is ``l1_ratio``; with ``r > 0`` influence is taken on the active set (``linear_objective``).
Natural losses: log loss (binary or multinomial) for classifiers, squared error ``(y - f)^2``
for regressors.
"""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.utils import compute_class_weight

from .device import as_tensor
from .objective import Objective
from .registry import SPARSE_ADAPTERS, register_adapter
from .sparse import (
    as_csr,
    dense_rows,
    is_sparse,
    matmul,
    rmatmul,
    squares_times,
    weighted_gram,
)


def _binary_loss(Z, y):
    return F.binary_cross_entropy_with_logits(Z[:, 0], y, reduction="none")


def _binary_log_proba(Z):
    return torch.stack([F.logsigmoid(-Z[:, 0]), F.logsigmoid(Z[:, 0])], dim=1)


def _binary_derivatives(Z, y):
    prob = torch.sigmoid(Z[:, 0])
    return (prob - y).unsqueeze(1), (prob * (1 - prob))[:, None, None]


def _multinomial_loss(Z, y):
    return -torch.gather(F.log_softmax(Z, dim=1), 1, y.long().unsqueeze(1))[:, 0]


def _multinomial_log_proba(Z):
    return F.log_softmax(Z, dim=1)


def _multinomial_derivatives(Z, y):
    prob = torch.softmax(Z, dim=1)
    onehot = F.one_hot(y.long(), Z.shape[1]).to(Z.dtype)
    return prob - onehot, torch.diag_embed(prob) - prob.unsqueeze(2) * prob.unsqueeze(1)


def _squared_loss(Z, y):
    return (y - Z[:, 0]) ** 2


def _squared_derivatives(Z, y):
    return 2 * (Z - y.unsqueeze(1)), torch.full_like(Z, 2.0).unsqueeze(2)


#: kind -> (natural loss, log-probabilities, closed-form output gradient and curvature)
_LOSSES = {
    "binary": (_binary_loss, _binary_log_proba, _binary_derivatives),
    "multinomial": (_multinomial_loss, _multinomial_log_proba, _multinomial_derivatives),
    "squared": (_squared_loss, None, _squared_derivatives),
}


class LinearObjective(Objective):
    """:class:`Objective` of a model ``Z = X W^T + offset + basis c`` in closed form.

    Every derivative is written out in plain tensor operations (no ``torch.func``, so no one-time
    transform set-up on the first call), the scaled output gradients and curvatures of the
    training rows are computed once and cached, and nothing of size n x p is formed unless a
    caller asks for per-row gradients: products with the Jacobian go through ``X`` directly,
    chunk by chunk. ``X`` may be a ``scipy.sparse`` CSR matrix, which is never densified
    (Hessian-vector products and ``X``'s own products only).

    Parameters
    ----------
    theta, X, y, weights, row_scale, outputs, output_loss, penalty, jacobian, log_proba, encode
        As in :class:`Objective` (``X`` a tensor or a CSR matrix); ``jacobian`` is only called
        on a few dense rows at a time.
    n_coef : int
        Number of coefficients ``K * d`` at the front of ``theta``.
    basis : torch.Tensor of shape (K, q) or None
        Map from the intercept coordinates (the last q entries of ``theta``) to the K
        intercepts; ``None`` without an intercept.
    penalty_diagonal : torch.Tensor of shape (p,)
        The penalty is ``0.5 * sum(penalty_diagonal * theta**2)``.
    derivatives : callable
        ``derivatives(Z, y)`` -> ``(r, A)``: output gradients (n, K) and curvatures (n, K, K)
        of the natural loss.
    columns : ndarray of int, optional
        The input columns ``X`` keeps (a sparse ``X`` drops the columns no training row uses,
        whose coefficients are zero); evaluation rows are cut to them by :meth:`as_rows`.
    """

    def __init__(self, theta, X, y, weights, row_scale, *, n_coef, basis, penalty_diagonal,
                 derivatives, columns=None, **kwargs):
        self.n_coef, self.basis, self.columns = n_coef, basis, columns
        self.penalty_diagonal = penalty_diagonal
        self._derivatives = derivatives
        self._train_cache = None
        super().__init__(theta, X, y, weights, row_scale, **kwargs)

    # ------------------------------------------------------- the Jacobian as products
    def as_rows(self, X):
        if self.columns is not None:
            X = X[:, self.columns]
        if is_sparse(X):
            return as_csr(X, self.theta.dtype)
        return super().as_rows(X)

    def jacobian_times(self, X, V):
        """``J_i V`` for every row of ``X`` and a block ``V`` (p, m): shape (n, K, m)."""
        K, m = self.n_outputs, V.shape[1]
        d = self.n_coef // K
        VW = V[: self.n_coef].reshape(K, d, m).permute(1, 0, 2).reshape(d, K * m)
        shift = None if self.basis is None else (self.basis @ V[self.n_coef:]).reshape(1, K * m)
        return matmul(X, VW, shift).reshape(X.shape[0], K, m)

    def jacobian_transpose_times(self, X, R):
        """Per-row ``J_i^T r_i`` for output vectors ``R`` (n, K): shape (n, p)."""
        Xd = dense_rows(X, R)
        out = torch.empty(len(R), self.n_params, dtype=R.dtype, device=R.device)
        coef = out[:, : self.n_coef].view(len(R), self.n_outputs, -1)
        torch.mul(R.unsqueeze(2), Xd.unsqueeze(1), out=coef)
        if self.basis is not None:
            torch.mm(R, self.basis, out=out[:, self.n_coef:])
        return out

    def _transpose_sum(self, X, R):
        """``sum_i J_i^T R_i`` for per-row output blocks ``R`` (n, K, m): shape (p, m)."""
        n, K, m = R.shape
        W = rmatmul(X, R.reshape(n, K * m)).reshape(-1, K, m).permute(1, 0, 2)
        parts = [W.reshape(self.n_coef, m)]
        if self.basis is not None:
            parts.append(self.basis.T @ R.sum(0))
        return torch.cat(parts, dim=0)

    # ------------------------------------------------------- output derivatives
    def _output_grads(self, theta, X, y):
        return self._derivatives(self.outputs(theta, X), y)[0]

    def output_curvature(self, Z, y):
        return self._derivatives(Z, y)[1]

    def _train_derivatives(self):
        """Cached scaled output gradients (n, K) and curvatures (n, K, K) of the training rows,
        and their unscaled output gradients (n, K)."""
        if self._train_cache is None:
            R, C, plain = [], [], []
            for s in self.chunks(self.n_rows, self.n_outputs):
                r, A = self._derivatives(self.outputs(self.theta, self.X[s]), self.y[s])
                scale = self.row_scale * self.weights[s]
                R.append(scale[:, None] * r)
                C.append(scale[:, None, None] * A)
                plain.append(r)
            self._train_cache = torch.cat(R), torch.cat(C), torch.cat(plain)
        return self._train_cache

    def _train_output_grads(self, rows):
        return self._train_derivatives()[0][rows]

    def row_output_grads(self, rows):
        """Unscaled output gradients ``d loss / d outputs`` of training rows ``rows``: (c, K)."""
        return self._train_derivatives()[2][rows]

    def leverage_blocks(self, X, inverse_factor):
        """``M_i = J_i H^-1 J_i^T`` (c, K, K) for the rows of ``X``, from ``L^-1`` (p, p) with
        ``H = L L^T``: ``J_i L^-T`` is one product through ``X``, no per-row gradient."""
        W = self.jacobian_times(X, inverse_factor.T)  # (c, K, p)
        if self.n_outputs == 1:
            return torch.einsum("ip,ip->i", W[:, 0], W[:, 0])[:, None, None]
        return torch.einsum("ckp,clp->ckl", W, W)

    def scaled_output_derivatives(self, rows):
        """``row_scale * w_i`` times the output gradients (c, K) and curvatures (c, K, K) of
        the training rows ``rows`` (a slice), from the cache."""
        R, C, _ = self._train_derivatives()
        return R[rows], C[rows]

    def _rows(self, per_row):
        """Chunks of the training rows for work of ``per_row`` numbers per row."""
        return self.chunks(self.n_rows, per_row)

    # ------------------------------------------------------- derivatives of the objective
    def row_grads(self, X, y, theta=None):
        theta = self.theta if theta is None else theta
        return self.jacobian_transpose_times(X, self._output_grads(theta, X, y))

    def train_grads(self, rows):
        return self.jacobian_transpose_times(self.X[rows], self._train_output_grads(rows))

    def train_grads_times(self, rows, V):
        JV = self.jacobian_times(self.X[rows], V)
        R = self._train_output_grads(rows)
        if self.n_outputs == 1:
            return JV[:, 0].mul_(R)  # JV is this call's own buffer
        return (R.unsqueeze(2) * JV).sum(1)

    def output_factors(self, X, y, rows=None):
        Z = self.outputs(self.theta, X)
        r, A = self._derivatives(Z, y)
        return self.jacobian(dense_rows(X, self.theta)), r, A

    def hessian(self, data_only=False):
        """Exact Hessian ``sum_i J_i^T C_i J_i`` (+ the penalty), from K(K+1)/2 weighted Grams."""
        K, p = self.n_outputs, self.n_params
        d = self.n_coef // K
        dtype, device = self.theta.dtype, self.theta.device
        XX = torch.zeros(K, d, K, d, dtype=dtype, device=device)
        X1 = torch.zeros(K, d, K, dtype=dtype, device=device)
        c11 = torch.zeros(K, K, dtype=dtype, device=device)
        for s in self._rows(2 * self.n_coef):
            X = self.X[s]
            if data_only:
                C = self.output_curvature(self.outputs(self.theta, X), self.y[s])
            else:
                C = self._train_derivatives()[1][s]
            for k in range(K):
                for l in range(k, K):
                    c = C[:, k, l]
                    XX[k, :, l] += weighted_gram(X, c)
                    X1[k, :, l] += rmatmul(X, c.unsqueeze(1))[:, 0]
                    c11[k, l] += c.sum()
                    if l != k:
                        XX[l, :, k] = XX[k, :, l].T
                        X1[l, :, k] = X1[k, :, l]
                        c11[l, k] = c11[k, l]
        H = torch.zeros(p, p, dtype=dtype, device=device)
        H[: self.n_coef, : self.n_coef] = XX.reshape(self.n_coef, self.n_coef)
        if self.basis is not None:
            cross = X1.reshape(self.n_coef, K) @ self.basis
            H[: self.n_coef, self.n_coef:] = cross
            H[self.n_coef:, : self.n_coef] = cross.T
            H[self.n_coef:, self.n_coef:] = self.basis.T @ c11 @ self.basis
        if not data_only:
            H += torch.diag(self.penalty_diagonal)
        return H

    def hessian_diagonal(self):
        """Diagonal of the Hessian, shape (p,), without forming it (a CG preconditioner)."""
        K = self.n_outputs
        C = self._train_derivatives()[1]
        coef = torch.zeros(K, self.n_coef // K, dtype=self.theta.dtype, device=self.theta.device)
        for s in self._rows(1):
            for k in range(K):
                coef[k] += squares_times(self.X[s], C[s, k, k])
        parts = [coef.reshape(-1)]
        if self.basis is not None:
            parts.append(torch.einsum("kq,kl,lq->q", self.basis, C.sum(0), self.basis))
        return torch.cat(parts) + self.penalty_diagonal

    def hvp(self, V):
        """``H V`` through ``X``'s products only (a sparse ``X`` stays sparse)."""
        C = self._train_derivatives()[1]
        out = self.penalty_diagonal.unsqueeze(1) * V
        for s in self._rows(self.n_outputs * V.shape[1]):
            JV = self.jacobian_times(self.X[s], V)
            out = out + self._transpose_sum(self.X[s], torch.einsum("nkl,nlm->nkm", C[s], JV))
        return out

    def cancellation_norm(self):
        """:meth:`Objective.cancellation_norm` in closed form: ``sum_i |x_i| |r_i|`` chunk by
        chunk (an upper bound on the intercept coordinates of a multinomial model), plus
        ``|grad penalty|``; no per-row gradients, sparse ``X`` kept sparse."""
        R = self._train_derivatives()[0].abs()
        total = (self.penalty_diagonal * self.theta).abs()
        for s in self._rows(self.n_outputs):
            total = total + self._transpose_sum(abs(self.X[s]), R[s].unsqueeze(2))[:, 0]
        return total

    def gradient(self):
        R = self._train_derivatives()[0]
        total = self.penalty_diagonal * self.theta
        for s in self._rows(self.n_outputs):
            total = total + self._transpose_sum(self.X[s], R[s].unsqueeze(2))[:, 0]
        return total


def linear_objective(coef, intercept, X, y, weights, row_scale, *, kind, l2, device, dtype,
                     intercept_l2=0.0, encode=None, output_loss=None, l1=0.0, active=None):
    """Objective of a linear model ``Z = X W^T + b`` with penalty ``0.5 l2 ||W||^2``.

    The natural losses of ``kind`` with every coefficient free get the closed-form
    :class:`LinearObjective` (no ``torch.func`` set-up, sparse ``X`` kept sparse); a custom
    ``output_loss`` or an L1 active set gets the generic autodiff :class:`Objective`.

    Parameters
    ----------
    coef : ndarray of shape (K, d)
    intercept : ndarray of shape (K,) or None
        ``None`` when the model has no intercept.
    X : ndarray or scipy.sparse matrix of shape (n, d)
        A sparse ``X`` is kept sparse (CSR) and computed on the CPU.
    y : ndarray of shape (n,)
        0/1 labels (``kind="binary"``), class indices (``"multinomial"``) or targets.
    weights : ndarray of shape (n,)
    row_scale : float
    kind : {"binary", "multinomial", "squared"}
    l2 : float
        Strength of the coefficient penalty.
    device, dtype
        Where and in which precision to compute.
    intercept_l2 : float, default=0.0
        Strength of an intercept penalty (liblinear only).
    encode : callable, optional
        Maps user labels to the numeric targets of the loss.
    output_loss : callable, optional
        ``output_loss(Z, y)`` -> (n,) natural loss of a regressor in place of the squared error
        of ``kind="squared"`` (GLM deviances, Huber).
    l1 : float, default=0.0
        Strength of an L1 penalty ``l1 ||W||_1``. Influence is then taken on the active set
        (the standard approximation for L1 fits): only the coefficients that are non-zero
        (or marked in ``active``) vary, their signs held, so the penalty is smooth there.
    active : ndarray of bool of shape (K, d), optional
        Coefficients that vary; default all (or the non-zero ones when ``l1 > 0``).

    Returns
    -------
    Objective
    """
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    K, d = coef.shape
    if X.shape[1] != d:
        raise ValueError(
            f"X has {X.shape[1]} features but the fitted model expects {d}; pass the training "
            "data the model was fitted on."
        )
    if active is None:
        active = coef != 0 if l1 > 0 else np.ones_like(coef, dtype=bool)
    active = np.asarray(active, dtype=bool)
    if output_loss is not None or l1 > 0 or not active.all():
        if is_sparse(X):
            raise ValueError(
                "Sparse X is supported for the L2 linear models (logistic, ridge, least "
                "squares, SGD); for GLMs, Huber and L1 models pass X.toarray()."
            )
        return _autodiff_linear_objective(coef, intercept, X, y, weights, row_scale, kind=kind,
                                          l2=l2, l1=l1, active=active, device=device,
                                          dtype=dtype, intercept_l2=intercept_l2,
                                          encode=encode, output_loss=output_loss)
    columns = None
    if is_sparse(X):
        device = torch.device("cpu")  # sparse products run through scipy
        X = as_csr(X, dtype)
        columns = _used_columns(X, coef)
        if columns is not None:
            X, coef, d = X[:, columns], coef[:, columns], len(columns)
    fit_intercept = intercept is not None
    basis, offset, coords = _intercept_coordinates(intercept, K, kind, device, dtype)
    n_coef = K * d
    diagonal = np.full(n_coef, float(l2))
    if fit_intercept:
        diagonal = np.r_[diagonal, np.full(len(coords), float(intercept_l2))]
    parts = [coef.ravel()] + ([coords] if fit_intercept else [])
    theta = as_tensor(np.concatenate(parts), device, dtype)

    def outputs(theta, X):
        W = theta[:n_coef].reshape(K, d).T
        if not fit_intercept:
            return matmul(X, W)
        return matmul(X, W, (offset + basis @ theta[n_coef:]).unsqueeze(0))

    def penalty(theta):
        value = 0.5 * l2 * (theta[:n_coef] ** 2).sum()
        return value + 0.5 * intercept_l2 * (theta[n_coef:] ** 2).sum()

    def jacobian(X):
        # explicit (n, K, p) Jacobian, for callers that ask for it on a few rows:
        # d Z[n, k] / d W[k', j] = [k == k'] X[n, j];  d Z[n, k] / d c = basis[k]
        eye = torch.eye(K, dtype=X.dtype, device=X.device)
        blocks = [torch.einsum("kl,nd->nkld", eye, X).reshape(len(X), K, n_coef)]
        if fit_intercept:
            blocks.append(basis.expand(len(X), K, basis.shape[1]))
        return torch.cat(blocks, dim=2)

    natural_loss, log_proba, derivatives = _LOSSES[kind]
    X = X if is_sparse(X) else _read_only_tensor(X, device, dtype)
    return LinearObjective(
        theta, X, as_tensor(y, device, dtype), as_tensor(weights, device, dtype), row_scale,
        n_coef=n_coef, basis=basis, penalty_diagonal=as_tensor(diagonal, device, dtype),
        columns=columns, derivatives=derivatives, outputs=outputs, output_loss=natural_loss,
        penalty=penalty, jacobian=jacobian, is_classifier=kind != "squared",
        log_proba=log_proba, encode=encode,
    )


def _intercept_coordinates(intercept, K, kind, device, dtype):
    """``(basis, offset, coords)``: the intercepts ``b = offset + basis @ coords``.

    Multinomial intercepts are identified only up to a common shift (softmax ignores it, no
    penalty pins it): they are parametrised by coordinates in the sum-zero subspace,
    ``b = mean(b) + P c``, so that the Hessian has no structural null direction. ``(None, None,
    None)`` without an intercept.
    """
    if intercept is None:
        return None, None, None
    basis = _sum_zero_basis(K) if kind == "multinomial" else np.eye(K)
    intercept = np.atleast_1d(np.asarray(intercept, dtype=float))
    offset = np.full(K, intercept.mean()) if kind == "multinomial" else np.zeros(K)
    coords = basis.T @ (intercept - offset)
    return as_tensor(basis, device, dtype), as_tensor(offset, device, dtype), coords


def _autodiff_linear_objective(coef, intercept, X, y, weights, row_scale, *, kind, l2, l1, active,
                               device, dtype, intercept_l2, encode, output_loss):
    """:func:`linear_objective` for a custom loss or an L1 active set, differentiated by torch."""
    K, d = coef.shape
    free = np.flatnonzero(active.ravel())
    fit_intercept = intercept is not None
    basis, offset, coords = _intercept_coordinates(intercept, K, kind, device, dtype)
    parts = [coef.ravel()[free]] + ([coords] if fit_intercept else [])
    theta = as_tensor(np.concatenate(parts), device, dtype)
    n_coef = free.size
    every = n_coef == K * d
    free_t = torch.as_tensor(free, device=device)
    signs = as_tensor(np.sign(coef.ravel()[free]), device, dtype)

    def weights_matrix(theta):
        if every:
            return theta[:n_coef].reshape(K, d)
        return torch.zeros(K * d, dtype=theta.dtype, device=theta.device).index_put(
            (free_t,), theta[:n_coef]).reshape(K, d)

    def outputs(theta, X):
        Z = X @ weights_matrix(theta).T
        return Z + offset + basis @ theta[n_coef:] if fit_intercept else Z

    def penalty(theta):
        value = 0.5 * l2 * (theta[:n_coef] ** 2).sum() + l1 * (signs * theta[:n_coef]).sum()
        return value + 0.5 * intercept_l2 * (theta[n_coef:] ** 2).sum()

    def jacobian(X):
        # d Z[n, k] / d W[k', j] = [k == k'] X[n, j];  d Z[n, k] / d c = basis[k]
        eye = torch.eye(K, dtype=X.dtype, device=X.device)
        blocks = [torch.einsum("kl,nd->nkld", eye, X).reshape(len(X), K, K * d)[:, :, free_t]]
        if fit_intercept:
            blocks.append(basis.expand(len(X), K, basis.shape[1]))
        return torch.cat(blocks, dim=2)

    natural_loss, log_proba, _ = _LOSSES[kind]
    return Objective(
        theta, as_tensor(X, device, dtype), as_tensor(y, device, dtype),
        as_tensor(weights, device, dtype), row_scale,
        outputs=outputs, output_loss=output_loss or natural_loss, penalty=penalty,
        is_classifier=kind != "squared", jacobian=jacobian, log_proba=log_proba,
        encode=encode,
    )


def _read_only_tensor(X, device, dtype):
    """``X`` as a tensor, sharing the array's memory when it already is a writeable C-contiguous
    CPU array of ``dtype`` (saving a copy of the largest input), else a copy.

    Safe because :class:`LinearObjective` only ever reads ``X``.
    """
    X = np.asarray(X)
    same_dtype = X.dtype == torch.empty(0, dtype=dtype).numpy().dtype
    if torch.device(device).type == "cpu" and same_dtype and X.flags.c_contiguous \
            and X.flags.writeable:
        return torch.from_numpy(X)
    return as_tensor(X, device, dtype)


def _used_columns(X, coef):
    """Indices of the columns of a sparse ``X`` that some row uses, when dropping the others is
    exact (their fitted coefficients are all zero), else ``None``.

    An unused feature's coefficient sees only the penalty: it stays at zero under any removal
    and contributes nothing to any training row, so the objective over the used columns has the
    same influence, with far fewer parameters for a hashed vocabulary.
    """
    used = np.flatnonzero(X.getnnz(axis=0))
    unused = np.setdiff1d(np.arange(X.shape[1]), used)
    if len(unused) == 0 or np.any(coef[:, unused] != 0):
        return None
    return used


def _sum_zero_basis(K):
    """(K, K-1) orthonormal basis of the vectors whose entries sum to zero (Helmert)."""
    basis = np.zeros((K, K - 1))
    for j in range(1, K):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -j
        basis[:, j - 1] /= np.sqrt(j * (j + 1))
    return basis


def _encode_classes(model, y):
    classes = model.classes_
    unknown = ~np.isin(y, classes)
    if unknown.any():
        raise ValueError(
            f"y holds labels {np.unique(y[unknown])[:5].tolist()} that the fitted model never saw "
            f"(its classes_ are {classes.tolist()}); pass the training labels it was fitted on."
        )
    return np.searchsorted(classes, y)


def _classifier_weights(model, y, sample_weight):
    sw = np.ones(len(y)) if sample_weight is None else sample_weight
    if getattr(model, "class_weight", None) is None:
        return sw
    cw = compute_class_weight(model.class_weight, classes=model.classes_, y=y,
                              sample_weight=sample_weight)
    return sw * cw[np.searchsorted(model.classes_, y)]


def _intercept(model):
    return model.intercept_ if model.fit_intercept else None


def _logistic_penalty(model):
    """``(C, l1_ratio)`` of a fitted LogisticRegression (``C=inf``: no penalty)."""
    penalty = getattr(model, "penalty", "deprecated")
    if penalty is None or penalty == "none":
        return np.inf, 0.0
    if penalty in ("l1", "l2"):
        return float(model.C), float(penalty == "l1")
    return float(model.C), float(model.l1_ratio or 0.0)


def logistic_objective(model, X, y, sample_weight, device, dtype, C, l1_ratio):
    """Objective of a fitted logistic model with inverse strength ``C`` and ``l1_ratio``.

    ``C * sum_i w_i logloss_i + l1_ratio ||W||_1 + (1 - l1_ratio) / 2 ||W||^2``; with an L1 part,
    on the active set.
    """
    row_scale, l2, l1 = (1.0, 0.0, 0.0) if np.isinf(C) else (C, 1.0 - l1_ratio, l1_ratio)
    y_idx = _encode_classes(model, y)
    weights = _classifier_weights(model, y, sample_weight)
    binary = model.coef_.shape[0] == 1
    if not binary and model.solver == "liblinear":
        raise ValueError(
            "A multiclass LogisticRegression fitted with solver='liblinear' is one-vs-rest: "
            "K separate objectives. Refit with solver='lbfgs' or 'newton-cholesky' (multinomial)."
        )
    intercept_l2 = 0.0
    if model.solver == "liblinear" and model.fit_intercept:
        if l1 > 0:
            raise ValueError(
                "liblinear penalises the intercept with the L1 penalty, which makes it part of "
                "the active set; refit with solver='saga' for an L1 LogisticRegression."
            )
        # liblinear penalises the weight of a constant feature of value intercept_scaling
        intercept_l2 = l2 / model.intercept_scaling**2
    return linear_objective(
        model.coef_, _intercept(model), X, y_idx, weights, row_scale,
        kind="binary" if binary else "multinomial", l2=l2, l1=l1, intercept_l2=intercept_l2,
        device=device, dtype=dtype, encode=lambda labels: _encode_classes(model, labels),
    )


@register_adapter(LogisticRegression)
def logistic_regression_adapter(model, X, y, sample_weight, device, dtype):
    return logistic_objective(model, X, y, sample_weight, device, dtype,
                              *_logistic_penalty(model))


def _check_single_target(model):
    if np.ndim(model.coef_) > 1 and np.shape(model.coef_)[0] > 1:
        raise ValueError(
            f"{type(model).__name__} was fitted on several targets; skinfluence supports one "
            "target column: fit one model per target."
        )


def _regression_weights(y, sample_weight):
    return np.ones(len(y)) if sample_weight is None else sample_weight


@register_adapter(LinearRegression)
def linear_regression_adapter(model, X, y, sample_weight, device, dtype):
    _check_single_target(model)
    return linear_objective(
        model.coef_, _intercept(model), X, y, _regression_weights(y, sample_weight), 1.0,
        kind="squared", l2=0.0, device=device, dtype=dtype,
    )


@register_adapter(Ridge)
def ridge_adapter(model, X, y, sample_weight, device, dtype):
    _check_single_target(model)
    if np.ndim(model.alpha) > 0:
        raise ValueError("Ridge with one alpha per target is not supported; use a scalar alpha.")
    return linear_objective(
        model.coef_, _intercept(model), X, y, _regression_weights(y, sample_weight), 1.0,
        kind="squared", l2=2.0 * model.alpha, device=device, dtype=dtype,
    )


def _sgd_l2(model):
    if model.penalty is None:
        return 0.0
    if model.penalty != "l2":
        raise ValueError(
            f"{type(model).__name__}(penalty={model.penalty!r}) has no smooth objective; refit "
            "with penalty='l2' or penalty=None."
        )
    return float(model.alpha)


@register_adapter(SGDClassifier)
def sgd_classifier_adapter(model, X, y, sample_weight, device, dtype):
    if model.loss != "log_loss":
        raise ValueError(
            f"SGDClassifier(loss={model.loss!r}) is not a likelihood model; influence needs "
            "loss='log_loss'."
        )
    if model.coef_.shape[0] != 1:
        raise ValueError(
            "A multiclass SGDClassifier is one-vs-rest (K separate objectives); use "
            "LogisticRegression for multiclass influence."
        )
    return linear_objective(
        model.coef_, _intercept(model), X, _encode_classes(model, y),
        _classifier_weights(model, y, sample_weight), 1.0 / len(y),
        kind="binary", l2=_sgd_l2(model), device=device, dtype=dtype,
        encode=lambda labels: _encode_classes(model, labels),
    )


@register_adapter(SGDRegressor)
def sgd_regressor_adapter(model, X, y, sample_weight, device, dtype):
    if model.loss != "squared_error":
        raise ValueError(
            f"SGDRegressor(loss={model.loss!r}) is not supported; influence needs "
            "loss='squared_error'."
        )
    # sklearn's squared loss is 0.5 (y - f)^2, averaged over the rows
    return linear_objective(
        model.coef_, _intercept(model), X, y, _regression_weights(y, sample_weight),
        0.5 / len(y), kind="squared", l2=_sgd_l2(model), device=device, dtype=dtype,
    )


SPARSE_ADAPTERS.update({logistic_regression_adapter, linear_regression_adapter, ridge_adapter,
                        sgd_classifier_adapter, sgd_regressor_adapter})
