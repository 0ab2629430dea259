"""Cox proportional-hazards regression fitted by Newton's method in torch."""

import numbers
import warnings
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import DeviceOption
from ..backend.device import as_tensor, resolve_device
from ._partial_likelihood import RiskSets, cox_derivatives
from ._separation import monotone_columns
from ._validation import check_constant_columns, check_survival_target


def newton_fit(X, risk_sets, alpha, theta0, tol, max_iter):
    """Minimise the penalised negative log partial likelihood from ``theta0``.

    Newton steps with step halving; converged when half the Newton decrement
    ``g^T H^-1 g / 2`` (the predicted loss reduction) is below ``tol * (1 + |loss|)``, after
    which the final step is taken. Returns ``(theta, n_iter, converged, decrement)``.
    """
    theta = theta0.clone()
    loss, grad, hessian = cox_derivatives(X, theta, risk_sets, alpha)
    decrement = float("inf")
    for n_iter in range(1, max_iter + 1):
        factor, info = torch.linalg.cholesky_ex(hessian)
        if info.item() != 0:
            return theta, n_iter, False, decrement
        step = torch.cholesky_solve(grad[:, None], factor)[:, 0]
        decrement = float(grad @ step)
        if decrement / 2 <= tol * (1.0 + abs(float(loss))):
            return theta - step, n_iter, True, decrement
        scale = 1.0
        while True:
            candidate = theta - scale * step
            new = cox_derivatives(X, candidate, risk_sets, alpha)
            if torch.isfinite(new[0]) and new[0] <= loss - 0.25 * scale * decrement:
                break
            scale /= 2
            if scale < 1e-10:
                return theta, n_iter, False, decrement
        theta, (loss, grad, hessian) = candidate, new
    return theta, max_iter, False, decrement


class CoxRegression(BaseEstimator):
    """Cox proportional-hazards regression with an L2 penalty, fitted by Newton's method.

    Minimises the negative log partial likelihood (Cox 1972; equation 9 of the VIF paper)
    plus ``0.5 * alpha * ||coef||^2``, the same objective as scikit-survival's
    ``CoxPHSurvivalAnalysis(alpha=alpha)`` (which divides both by ``n``).

    Parameters
    ----------
    alpha : float or array-like of shape (n_features,), default=0.0
        L2 penalty strength, per feature when an array.
    ties : {"efron", "breslow"}, default="efron"
        How tied event times enter the partial likelihood.
    tol : float, default=1e-9
        Stop when the Newton decrement predicts a relative loss reduction below ``tol``.
    max_iter : int, default=100
        Maximum number of Newton iterations.
    device : str or torch.device, default="auto"
        Where the Newton iterations run.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Fitted log hazard ratios.
    n_iter_ : int
        Newton iterations performed.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Defined when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.survival import CoxRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> time = rng.exponential(np.exp(-X @ np.array([1.0, -0.5])))
    >>> y = np.column_stack([time, rng.random(200) < 0.8])
    >>> model = CoxRegression().fit(X, y)
    >>> model.coef_.round(1)
    array([ 1.1, -0.6])
    """

    _parameter_constraints: ClassVar[dict] = {
        "alpha": [Interval(numbers.Real, 0, None, closed="left"), "array-like"],
        "ties": [StrOptions({"efron", "breslow"})],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [DeviceOption()],
    }

    def __init__(self, alpha=0.0, ties="efron", tol=1e-9, max_iter=100, device="auto"):
        self.alpha = alpha
        self.ties = ties
        self.tol = tol
        self.max_iter = max_iter
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : structured array (event, time) or array-like of shape (n_samples, 2)
            A scikit-survival structured array with a boolean event field and a float time
            field, or two columns (time, event).

        Returns
        -------
        self : CoxRegression
        """
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        time, event = check_survival_target(y, X.shape[0])
        alpha = self._alpha_vector(X.shape[1])
        check_constant_columns(X, alpha, getattr(self, "feature_names_in_", None))
        for j in monotone_columns(X, time, event, alpha):
            warnings.warn(
                f"Feature {j} separates the events perfectly: its unpenalised coefficient is "
                "infinite. Set alpha > 0 or drop the feature.",
                ConvergenceWarning,
                stacklevel=2,
            )
        device = resolve_device(self.device)
        Xt, alpha_t = as_tensor(X, device), as_tensor(alpha, device)
        risk_sets = RiskSets(time, event, self.ties, device)
        theta0 = torch.zeros(X.shape[1], dtype=Xt.dtype, device=device)
        theta, self.n_iter_, converged, decrement = newton_fit(
            Xt, risk_sets, alpha_t, theta0, self.tol, self.max_iter
        )
        if not converged:
            warnings.warn(
                f"Newton's method did not converge in {self.n_iter_} iterations (Newton "
                f"decrement {decrement:.3g}); increase max_iter or alpha.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.coef_ = theta.cpu().numpy()
        return self

    def _alpha_vector(self, n_features):
        alpha = np.asarray(self.alpha, dtype=np.float64)
        if alpha.ndim > 1 or alpha.size not in (1, n_features):
            raise ValueError(
                f"alpha has shape {alpha.shape} but X has {n_features} features; pass a float "
                f"or one value per feature (shape ({n_features},))."
            )
        alpha = np.broadcast_to(alpha, (n_features,)).copy()
        if np.any(alpha < 0) or not np.all(np.isfinite(alpha)):
            raise ValueError(f"alpha must be finite and non-negative; got {self.alpha!r}.")
        return alpha

    def predict(self, X):
        """Log relative risk ``X @ coef_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_risk : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_

    def score(self, X, y):
        """Harrell's concordance index of the predicted risks.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : structured array (event, time) or array-like of shape (n_samples, 2)

        Returns
        -------
        cindex : float
        """
        time, event = check_survival_target(y)
        return concordance_index(time, event, self.predict(X))


def concordance_index(time, event, risk):
    """Harrell's C: among comparable pairs (an event, and a row still at risk after it or
    censored at the same time), the share where the event has the higher risk; ties in risk
    count one half (as scikit-survival's ``concordance_index_censored``)."""
    time, event, risk = map(np.asarray, (time, event, risk))
    order = np.argsort(time, kind="stable")
    time, event, risk = time[order], event[order], risk[order]
    concordant = comparable = 0.0
    for start in range(0, time.size, 512):
        rows = np.arange(start, min(start + 512, time.size))
        rows = rows[event[rows]]
        later = (time[None, :] > time[rows, None]) | (
            (time[None, :] == time[rows, None]) & ~event[None, :]
        )
        diff = risk[rows, None] - risk[None, :]
        comparable += later.sum()
        concordant += ((diff > 0) * later).sum() + 0.5 * ((diff == 0) * later).sum()
    if comparable == 0:
        raise ValueError("No comparable pairs: the concordance index is undefined.")
    return concordant / comparable


def split_survival_frame(frame, duration_col, event_col):
    """Split a DataFrame with duration and event columns into ``(X, y)``.

    Parameters
    ----------
    frame : pandas.DataFrame
    duration_col, event_col : str
        Names of the observed-time column and of the event-indicator column.

    Returns
    -------
    X : pandas.DataFrame
        The remaining columns.
    y : structured ndarray with fields ``("event", bool)`` and ``("time", float)``
    """
    missing = [c for c in (duration_col, event_col) if c not in frame.columns]
    if missing:
        raise ValueError(f"Columns {missing} are not in the DataFrame: {list(frame.columns)}.")
    time, event = check_survival_target(
        np.column_stack([frame[duration_col].to_numpy(float), frame[event_col].to_numpy(float)])
    )
    y = np.empty(time.size, dtype=[("event", bool), ("time", np.float64)])
    y["event"], y["time"] = event, time
    return frame.drop(columns=[duration_col, event_col]), y
