"""Numerical diagnostics: say what is wrong with a fit before its influence estimates mislead.

:func:`diagnose` runs on every objective built with ``check_convergence=True`` and warns with a
:class:`DiagnosticWarning` that names the problem, the measured figure and the fix:

* the fitted parameters are not a minimum of the training objective on the given data (not
  converged, or fitted on other rows);
* a linear model without a penalty on data where its minimum is not unique or not finite:
  constant or duplicated columns (named), fewer rows than parameters, perfectly separated classes.

An indefinite Hessian is reported by :class:`~skinfluence.backend.CholeskySolver`, with its
smallest eigenvalue and the damping it falls back to.
"""

import warnings

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["CONVERGENCE_TOL", "DiagnosticWarning", "diagnose"]

#: Relative gradient norm above which a model is reported as not at a minimum.
CONVERGENCE_TOL = 1e-3


class DiagnosticWarning(UserWarning, RuntimeWarning):
    """A fitted model or its data make influence estimates unreliable; the message says why.

    A :class:`UserWarning` (the fix is in the user's hands: a penalty, a tighter fit, other
    data) and a :class:`RuntimeWarning` (it is measured at run time), so filters for either
    catch it.
    """


def _warn(message):
    warnings.warn(message, DiagnosticWarning, stacklevel=4)


def _column_labels(columns, names):
    labels = [str(names[j]) if names is not None else f"column {j}" for j in columns]
    return ", ".join(labels[:10]) + (" ..." if len(labels) > 10 else "")


def _unpenalised(objective):
    return objective.penalty(torch.ones_like(objective.theta)).item() == 0.0


def check_stationary(objective, name):
    """Warn when ``theta`` is not a stationary point of the training objective on its data."""
    norm = objective.gradient_norm(refine_above=CONVERGENCE_TOL)
    if norm > CONVERGENCE_TOL:
        _warn(
            f"{name} does not look converged on this data: the gradient of its training "
            f"objective at the fitted parameters has relative norm {norm:.2e} (> "
            f"{CONVERGENCE_TOL:g}). Influence estimates assume a minimum. Pass the exact X, y "
            "and sample_weight the model was fitted on, or refit with a tighter tolerance "
            "(e.g. tol=1e-10, more iterations, or solver='newton-cholesky')."
        )
    return norm


def check_columns(X, name, names=None, intercept=True, columns=None, n_features=None):
    """Warn about constant and duplicated columns of ``X`` (an unpenalised model's blind spot).

    A constant column is reported when the model has an intercept it duplicates, or when it is
    zero. ``X`` is a dense tensor or a scipy sparse matrix (checked without densifying). When
    the objective kept only the ``columns`` of the user's ``n_features`` (a sparse ``X`` drops
    the unused ones), the dropped columns are zero and all reports name the user's columns.
    """
    X = sp.csc_matrix(X if sp.issparse(X) else X.detach().cpu().numpy())
    X.eliminate_zeros()
    X.sort_indices()
    if columns is None:
        columns, n_features = np.arange(X.shape[1]), X.shape[1]
    low, high = np.zeros(n_features), np.zeros(n_features)
    low[columns], high[columns] = (np.ravel(bound(axis=0).toarray()) for bound in (X.min, X.max))
    spread = high - low if X.shape[0] > 1 else np.ones(n_features)
    constant = np.flatnonzero((spread == 0) & (intercept | (high == 0)))
    if constant.size:
        _warn(
            f"{name} has no penalty and X has constant columns ({_column_labels(constant, names)}"
            "): their coefficients are not identified (the Hessian is singular), so influence "
            "estimates depend on the damping. Drop those columns or add a penalty."
        )
    duplicated = _duplicated_columns(X, np.flatnonzero(~np.isin(columns, constant)))
    if duplicated.size:
        _warn(
            f"{name} has no penalty and X has duplicated columns "
            f"({_column_labels(columns[duplicated], names)} repeat earlier columns): their "
            "coefficients are not identified (the Hessian is singular). Drop the copies or add "
            "a penalty."
        )


def _duplicated_columns(X, candidates):
    """The ``candidates`` (column indices of a canonical CSC matrix ``X``) equal to an earlier
    candidate: equal columns have equal stored row indices and values."""
    seen, duplicated = set(), []
    for j in candidates:
        rows = slice(X.indptr[j], X.indptr[j + 1])
        key = (X.indices[rows].tobytes(), X.data[rows].tobytes())
        if key in seen:
            duplicated.append(j)
        seen.add(key)
    return np.array(duplicated, dtype=int)


def check_identifiable(objective, name):
    """Warn when an unpenalised linear model has fewer rows than parameters."""
    n_rows = int((objective.weights > 0).sum().item())
    if n_rows < objective.n_params:
        _warn(
            f"{name} has {objective.n_params} parameters but only {n_rows} training rows and no "
            "penalty: the fit interpolates, its Hessian is singular and influence estimates are "
            "meaningless (near zero where retraining moves predictions a lot). Add a penalty "
            "(e.g. Ridge, or C < inf) or use leave_one_out."
        )


def check_separation(objective, name):
    """Warn when an unpenalised linear classifier separates its training classes perfectly."""
    Z = objective.outputs(objective.theta, objective.X)
    y = objective.y.long()
    if Z.shape[1] == 1:
        separated = bool(((2 * y - 1) * Z[:, 0] > 0).all())
    else:
        separated = bool((Z.argmax(1) == y).all())
    if separated:
        _warn(
            f"{name} has no penalty and classifies every training row correctly: the classes "
            "are linearly separable, the maximum-likelihood weights are infinite and the "
            f"fitted ones (norm {objective.theta.norm().item():.3g}) depend on where the solver "
            "stopped; influence estimates can be off by several times. Add a penalty (C < inf)."
        )


def diagnose(objective, model):
    """Run every diagnostic on the objective of ``model`` (warnings only, nothing returned)."""
    name = type(model).__name__
    if objective.linear and _unpenalised(objective):
        names = getattr(model, "feature_names_in_", None)
        if objective.X.ndim == 2:
            check_columns(objective.X, name, names, getattr(model, "fit_intercept", False),
                          getattr(objective, "columns", None),
                          getattr(model, "n_features_in_", None))
        check_identifiable(objective, name)
        if objective.is_classifier:
            check_separation(objective, name)
    check_stationary(objective, name)
