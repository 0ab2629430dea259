"""Products with a design matrix that is either a dense torch tensor or a ``scipy.sparse`` CSR
matrix, so that the linear models' derivatives never densify a sparse ``X``.

A sparse matrix stays a scipy CSR matrix (CPU only) in the dtype of the computation; its products
with dense torch blocks go through numpy without copying the sparse data.
"""

import numpy as np
import scipy.sparse as sp
import torch


def is_sparse(X):
    """Whether ``X`` is a scipy sparse matrix or array."""
    return sp.issparse(X)


def as_csr(X, dtype):
    """``X`` as a CSR matrix of the torch ``dtype`` (a copy: the user's matrix is never shared)."""
    return sp.csr_matrix(X, dtype=torch.empty(0, dtype=dtype).numpy().dtype, copy=True)


def _from_numpy(array, like):
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype=like.dtype)


def matmul(X, M, shift=None):
    """``X @ M (+ shift)`` for a dense block ``M`` (d, m) and a row ``shift`` (1, m) broadcast
    over the rows: shape (n, m)."""
    if not is_sparse(X):
        return X @ M if shift is None else torch.addmm(shift, X, M)
    out = _from_numpy(X @ M.detach().cpu().numpy(), M)
    return out if shift is None else out.add_(shift)


def rmatmul(X, M):
    """``X^T @ M`` for a dense block ``M`` (n, m): shape (d, m)."""
    if not is_sparse(X):
        return X.T @ M
    return _from_numpy(X.T @ M.detach().cpu().numpy(), M)


def weighted_gram(X, c):
    """``X^T diag(c) X``, shape (d, d), for row weights ``c`` (n,)."""
    if not is_sparse(X):
        return X.T @ (c.unsqueeze(1) * X)
    weighted = X.multiply(c.detach().cpu().numpy()[:, None]).tocsr()
    return _from_numpy((X.T @ weighted).toarray(), c)


def squares_times(X, c):
    """``(X * X)^T c``: the weighted sums of squares of ``X``'s columns, shape (d,)."""
    if not is_sparse(X):
        return (X * X).T @ c
    return _from_numpy(X.multiply(X).T @ c.detach().cpu().numpy(), c)


def dense_rows(X, like):
    """A (small) chunk of rows ``X`` as a dense tensor of ``like``'s dtype and device."""
    if not is_sparse(X):
        return X
    return _from_numpy(X.toarray(), like)
