"""Cox negative log partial likelihood over sorted risk sets (Breslow and Efron ties).

Everything here works on event *terms*: one term per observed event, ordered by time. With
``m`` tied events at time ``t``, risk-set sums ``S(t) = sum_{Y_r >= t} w_r v_r`` and tied-event
sums ``D(t) = sum_{events at t} w_r v_r``, the l-th tied term (l = 0..m-1) uses
``S(t) - c_l D(t)`` with ``c_l = l / m`` (Efron) or ``c_l = 0`` (Breslow). Sums run as
cumulative sums over the time-sorted rows, so the loss and its derivatives cost O(n d^2).
"""

import numpy as np
import torch


def _reverse_cumsum(v):
    return torch.flip(torch.cumsum(torch.flip(v, (0,)), 0), (0,))


def _zero_padded_cumsum(v):
    zero = torch.zeros((1, *v.shape[1:]), dtype=v.dtype, device=v.device)
    return torch.cat([zero, torch.cumsum(v, 0)])


class RiskSets:
    """Time-sorted bookkeeping of a right-censored sample.

    Parameters
    ----------
    time : ndarray of shape (n,)
    event : ndarray of shape (n,), bool
    ties : {"efron", "breslow"}
    device : torch.device

    Attributes
    ----------
    event_row : LongTensor of shape (n_terms,)
        Original row index of each event term (terms sorted by time).
    before, through : LongTensor of shape (n,)
        Per original row ``r``: number of event terms at times ``< Y_r`` and ``<= Y_r``.
    """

    def __init__(self, time, event, ties, device):
        time = np.asarray(time, dtype=np.float64)
        event = np.asarray(event, dtype=bool)
        order = np.lexsort((event, time))
        t_sorted, e_sorted = time[order], event[order]
        new_time = np.r_[True, t_sorted[1:] != t_sorted[:-1]]
        row_group = np.cumsum(new_time) - 1
        n_groups = int(row_group[-1]) + 1
        event_pos = np.flatnonzero(e_sorted)
        term_group = row_group[event_pos]
        per_group = np.bincount(term_group, minlength=n_groups)
        first_term = np.r_[0, np.cumsum(per_group)[:-1]]
        rank = np.arange(event_pos.size) - first_term[term_group]
        tied = per_group[term_group]
        before_sorted = first_term[row_group]

        as_long = lambda a: torch.as_tensor(a, dtype=torch.long, device=device)
        self.device, self.ties, self.n = device, ties, time.size
        self.order = as_long(order)
        self.group_start_of_term = as_long(np.flatnonzero(new_time)[term_group])
        self.event_row = as_long(order[event_pos])
        self.term_start = as_long(first_term[term_group])
        self.term_end = as_long(first_term[term_group] + tied)
        self.tied = as_long(tied)
        self.efron_fraction = torch.as_tensor(
            rank / tied if ties == "efron" else np.zeros(rank.size), device=device
        )
        unsort = np.empty_like(order)
        unsort[order] = np.arange(order.size)
        self.before = as_long(before_sorted[unsort])
        self.through = as_long((before_sorted + per_group[row_group])[unsort])
        self.is_event = torch.as_tensor(event, device=device)

    @property
    def n_terms(self):
        return self.event_row.numel()

    def fraction(self, dtype):
        return self.efron_fraction.to(dtype)

    def segment_sum(self, v):
        """Sum of a per-term array over each term's tied group, returned per term."""
        padded = _zero_padded_cumsum(v)
        return padded[self.term_end] - padded[self.term_start]

    def risk_and_tied_sums(self, v):
        """Per event term: the risk-set sum ``S`` and the tied-event sum ``D`` of ``v`` (n, ...)."""
        risk = _reverse_cumsum(v[self.order])[self.group_start_of_term]
        return risk, self.segment_sum(v[self.event_row])

    def term_sums(self, v):
        """Per event term: ``S - c D`` (Efron) or ``S`` (Breslow) of ``v`` (n, ...)."""
        risk, tied = self.risk_and_tied_sums(v)
        c = self.fraction(v.dtype).reshape((-1,) + (1,) * (v.ndim - 1))
        return risk - c * tied

    def prefix(self, v, lengths):
        """``sum_{k < lengths[r]} v[k]`` over event terms, for each entry of ``lengths``."""
        return _zero_padded_cumsum(v)[lengths]

    def loss_terms(self, eta):
        """Negative log partial likelihood per event term, ``-eta_k + log(S - c D)``.

        ``eta`` has shape (n,) or (n, B) (B parameter vectors at once); the result has shape
        (n_terms,) or (n_terms, B).
        """
        shift = eta.max(0).values
        log_denominator = torch.log(self.term_sums(torch.exp(eta - shift))) + shift
        return log_denominator - eta[self.event_row]

    def masked_loss(self, eta, mask):
        """Negative log partial likelihood of the rows with ``mask == 1`` (Definition 2.1).

        Written with cumulative sums and gathers only, so ``torch.func.vmap`` can batch it over
        masks. Efron fractions are recomputed among the tied events still present.
        """
        shift = eta.max()
        w = mask * torch.exp(eta - shift)
        risk, tied = self.risk_and_tied_sums(w)
        present = mask[self.event_row]
        count = self.segment_sum(present)
        if self.ties == "efron":
            rank = _zero_padded_cumsum(present)[:-1] - _zero_padded_cumsum(present)[self.term_start]
            denominator = risk - rank / count.clamp_min(1.0) * tied
        else:
            denominator = risk
        denominator = torch.where(present > 0, denominator, torch.ones_like(denominator))
        return (present * (torch.log(denominator) + shift - eta[self.event_row])).sum()


def cox_derivatives(X, theta, risk_sets, alpha):
    """Loss, gradient and Hessian of ``sum_k loss_k + 0.5 * sum_j alpha_j theta_j^2``.

    The Hessian ``sum_k (N2_k / a_k - mu_k mu_k^T)`` is accumulated as one weighted Gram matrix:
    row ``r`` enters every term whose risk set holds it (weight ``w_r / a_k``), minus the Efron
    share ``c_k w_r / a_k`` of its own tied group.
    """
    eta = X @ theta
    shift = eta.max()
    w = torch.exp(eta - shift)
    a = risk_sets.term_sums(w)
    mu = risk_sets.term_sums(w[:, None] * X) / a[:, None]
    loss = (torch.log(a) + shift - eta[risk_sets.event_row]).sum() + 0.5 * (alpha * theta**2).sum()
    grad = (mu - X[risk_sets.event_row]).sum(0) + alpha * theta

    inv_a = 1.0 / a
    efron_share = risk_sets.fraction(X.dtype) * inv_a
    row_weight = risk_sets.prefix(inv_a, risk_sets.through)
    own_group = risk_sets.prefix(efron_share, risk_sets.through) - risk_sets.prefix(
        efron_share, risk_sets.before
    )
    row_weight = w * (row_weight - risk_sets.is_event.to(X.dtype) * own_group)
    hessian = X.T @ (row_weight[:, None] * X) - mu.T @ mu + torch.diag(alpha)
    return loss, grad, hessian
