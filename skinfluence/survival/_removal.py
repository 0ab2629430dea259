"""Closed forms for removing one row from a Cox model's partial likelihood.

Notation (per event term ``k``, see ``_partial_likelihood``): ``a_k = S0 - c_k D0`` the Efron
denominator, ``mu_k = N1_k / a_k`` the risk-weighted mean covariate, ``w_i = exp(x_i theta)``.
Removing row ``i`` from a risk set turns ``a_k`` into ``a_k - w_i`` and ``mu_k`` into
``mu_k - (x_i - mu_k) w_i / (a_k - w_i)`` (appendix C.3, the ``eps / (1 - eps)`` factor); if ``i``
is an event its own tied group is recomputed with one event fewer.
"""

import torch


class RemovalTerms:
    """Risk-set pieces at the fitted ``theta``, shared by the closed forms below."""

    def __init__(self, X, theta, risk_sets, hessian_pieces=False):
        self.X, self.rs = X, risk_sets
        eta = X @ theta
        self.w = torch.exp(eta - eta.max())
        c = risk_sets.fraction(X.dtype)
        self.S0, self.D0 = risk_sets.risk_and_tied_sums(self.w)
        self.S1, self.D1 = risk_sets.risk_and_tied_sums(self.w[:, None] * X)
        self.a = self.S0 - c * self.D0
        self.mu = (self.S1 - c[:, None] * self.D1) / self.a[:, None]
        if hessian_pieces:
            outer = X[:, :, None] * X[:, None, :]
            self.S2, self.D2 = risk_sets.risk_and_tied_sums(self.w[:, None, None] * outer)
            self.N2 = self.S2 - c[:, None, None] * self.D2
            self.V = self.N2 / self.a[:, None, None] - self.mu[:, :, None] * self.mu[:, None, :]

    def _risk_prefix(self, rows):
        """Event terms whose risk set loses row ``i`` (its own tied group handled apart)."""
        rs = self.rs
        return torch.where(rs.is_event[rows], rs.before[rows], rs.through[rows])

    def _removed_inverse_denominators(self):
        """Yield ``(rows, rho)`` with ``rho[r, k] = 1 / (a_k - w_i)`` for the event terms
        ``k < P_i`` whose risk set loses row ``i = rows[r]``, zero for ``P_i <= k < rho.shape[1]``.

        Rows are visited in order of ``P_i`` so each chunk only computes its terms ``k < max P``
        and masks the few columns between its smallest and largest ``P``.
        """
        prefix = self._risk_prefix(torch.arange(self.rs.n, device=self.X.device))
        order = torch.argsort(prefix)
        size = max(1, int(4e6) // max(1, self.rs.n_terms))
        for rows in order.split(size):
            lo, hi = int(prefix[rows[0]]), int(prefix[rows[-1]])
            rho = torch.reciprocal_(self.a[None, :hi] - self.w[rows, None])
            inside = torch.arange(lo, hi, device=rho.device) < prefix[rows, None]
            rho[:, lo:hi] = torch.where(inside, rho[:, lo:hi], 0.0)
            yield rows, rho

    def _own_group(self):
        """Tied groups recomputed without each event (Efron fractions ``l / (m - 1)``)."""
        rs = self.rs
        rows = rs.event_row
        w, x = self.w[rows], self.X[rows]
        m = rs.tied
        slots = torch.arange(int(m.max()) - 1, device=x.device, dtype=x.dtype)
        valid = slots[None, :] < (m - 1)[:, None]
        if rs.ties == "efron":
            c = slots[None, :] / (m - 1).clamp_min(1)[:, None].to(x.dtype)
        else:
            c = torch.zeros_like(valid, dtype=x.dtype)
        a = (self.S0 - w)[:, None] - c * (self.D0 - w)[:, None]
        a = torch.where(valid, a, 1.0)
        n1 = (self.S1 - w[:, None] * x)[:, None, :] - c[..., None] * (self.D1 - w[:, None] * x)[
            :, None, :
        ]
        mu = n1 / a[..., None] * valid[..., None]
        return rows, w, x, c, a, mu, valid

    def gradient_drop(self):
        """``grad L(theta, 1) - grad L(theta, 1_-i)`` for every row ``i``, shape (n, d)."""
        out = torch.empty_like(self.X)
        for rows, rho in self._removed_inverse_denominators():
            w = self.w[rows, None]
            out[rows] = w * (rho.sum(1)[:, None] * self.X[rows] - rho @ self.mu[: rho.shape[1]])
        events, _, x, _, _, mu_after, _ = self._own_group()
        out[events] += self.rs.segment_sum(self.mu) - x - mu_after.sum(1)
        return out

    def hessian_drop(self):
        """``H(theta, 1) - H(theta, 1_-i)`` for every row ``i``, shape (n, d, d)."""
        n, d = self.X.shape
        out = torch.empty((n, d, d), dtype=self.X.dtype, device=self.X.device)
        N1N1 = (self.a[:, None] * self.mu)[:, :, None] * (self.a[:, None] * self.mu)[:, None, :]
        for rows, rho in self._removed_inverse_denominators():
            hi = rho.shape[1]
            rho2 = rho**2
            x, w = self.X[rows], self.w[rows][:, None, None]
            xx = x[:, :, None] * x[:, None, :]
            u = rho2 @ (self.a[:hi, None] * self.mu[:hi])
            xu = x[:, :, None] * u[:, None, :]
            after = (
                (rho @ self.N2[:hi].flatten(1)).unflatten(1, (d, d))
                - w * rho.sum(1)[:, None, None] * xx
                - (rho2 @ N1N1[:hi].flatten(1)).unflatten(1, (d, d))
                + w * (xu + xu.transpose(1, 2))
                - w**2 * rho2.sum(1)[:, None, None] * xx
            )
            out[rows] = self.rs.prefix(self.V, self._risk_prefix(rows)) - after
        events, w, x, c, a, mu_after, valid = self._own_group()
        w3 = w[:, None, None]
        xx = x[:, :, None] * x[:, None, :]
        n2 = (self.S2 - w3 * xx)[:, None] - c[..., None, None] * (self.D2 - w3 * xx)[:, None]
        group_after = (
            n2 / a[..., None, None] * valid[..., None, None]
            - mu_after[..., :, None] * mu_after[..., None, :]
        ).sum(1)
        out[events] += self.rs.segment_sum(self.V) - group_after
        return out

    def score_residuals(self):
        """Reid-Crepeau score residuals (appendix C.3) with Breslow risk sets.

        ``r_i = delta_i (x_i - mu_i) - w_i sum_{k: Y_k <= Y_i} (x_i - mu_k) / S0_k``; the
        upweighting influence is ``H^-1 r_i`` (lifelines' ``score`` residuals).
        """
        rs = self.rs
        inv = 1.0 / self.S0
        mu = self.S1 * inv[:, None]
        A = rs.prefix(inv, rs.through)
        B = rs.prefix(mu * inv[:, None], rs.through)
        r = -self.w[:, None] * (A[:, None] * self.X - B)
        r[rs.event_row] += self.X[rs.event_row] - mu
        return r
