"""Importance sampling: the variational bound, ln Z, ESS, the Pareto-k diagnostic, PSIS and
self-normalised estimates of observables, accumulated in float64.

Log-weights are ``log_w = ln pi(x) - ln q(x)`` for samples ``x ~ q`` (docs/physics.md,
"Estimating ln Z").

Non-finite log-weights are never silently dropped or averaged:

- NaN and ``+inf`` always raise ``ValueError`` naming how many there are;
- ``-inf`` (a sample where ``pi = 0``) is a legitimate zero importance weight for
  :func:`importance_ln_z` and :func:`ess_per_sample`, but makes the variational
  bound ``-inf``, so :func:`variational_bound` raises on it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from neuralrg.estimators.base import (
    ArrayLike,
    Combine,
    Estimate,
    as_float64_tensor,
    smooth_function,
)


def _log_weights(log_w: ArrayLike, allow_neg_inf: bool, min_size: int) -> Tensor:
    """Validate a 1D vector of log-weights; see the module docstring for the policy."""
    w = as_float64_tensor(log_w)
    if w.ndim != 1 or w.numel() < min_size:
        raise ValueError(
            f"log_w must be 1D with at least {min_size} entries, got shape {tuple(w.shape)}"
        )
    n_nan, n_pos_inf = int(torch.isnan(w).sum()), int((w == math.inf).sum())
    n_neg_inf = int((w == -math.inf).sum())
    if n_nan or n_pos_inf or (n_neg_inf and not allow_neg_inf):
        raise ValueError(
            f"log_w has non-finite entries ({n_nan} NaN, {n_pos_inf} +inf, {n_neg_inf} -inf) "
            f"out of {w.numel()}; {'-inf (zero weight) is allowed, ' if allow_neg_inf else ''}"
            "NaN and +inf are not"
        )
    if n_neg_inf == w.numel():
        raise ValueError(f"all {w.numel()} log-weights are -inf: every importance weight is zero")
    return w


def variational_bound(log_w: ArrayLike) -> Estimate:
    """Mean log-weight ``E_q[ln pi - ln q] <= ln Z`` with its standard error.

    >>> mean, stderr = variational_bound(torch.tensor([0.0, -1.0, -2.0]))
    >>> mean
    -1.0
    """
    w = _log_weights(log_w, allow_neg_inf=False, min_size=2)
    return Estimate(float(w.mean()), float(w.std(unbiased=True) / math.sqrt(w.numel())))


def _leave_one_out_logsumexp(w: Tensor) -> Tensor:
    """``logsumexp(w without w_k)`` for every k, via prefix and suffix sums (no cancellation)."""
    neg_inf = w.new_full((1,), -math.inf)
    prefix = torch.cat([neg_inf, torch.logcumsumexp(w, 0)[:-1]])
    suffix = torch.cat([torch.logcumsumexp(w.flip(0), 0).flip(0)[1:], neg_inf])
    return torch.logaddexp(prefix, suffix)


def importance_ln_z(log_w: ArrayLike) -> Estimate:
    """Importance-sampled ``ln Z ~= logsumexp(log_w) - ln n`` with a jackknife error bar.

    The estimate is consistent but biased low by about ``var(w)/2n``; the error is the
    leave-one-out jackknife, computed exactly in log space.

    >>> ln_z, err = importance_ln_z(torch.zeros(10))
    >>> ln_z, err
    (0.0, 0.0)
    """
    w = _log_weights(log_w, allow_neg_inf=True, min_size=2)
    n = w.numel()
    ln_z = torch.logsumexp(w, 0) - math.log(n)
    loo = _leave_one_out_logsumexp(w) - math.log(n - 1)
    if not bool(torch.isfinite(loo).all()):
        raise ValueError("jackknife needs at least two samples with finite log-weight")
    variance = (n - 1) / n * ((loo - loo.mean()) ** 2).sum()
    return Estimate(float(ln_z), float(variance.sqrt()))


def ess_per_sample(log_w: ArrayLike) -> float:
    """Effective sample size per sample, ``exp(2 lse(w) - lse(2w)) / n`` in ``(0, 1]``.

    >>> ess_per_sample(torch.zeros(5))
    1.0
    """
    w = _log_weights(log_w, allow_neg_inf=True, min_size=1)
    log_ess = 2 * torch.logsumexp(w, 0) - torch.logsumexp(2 * w, 0) - math.log(w.numel())
    return min(1.0, float(torch.exp(log_ess)))


PARETO_K_RELIABLE = 0.7  # above this, importance-sampling estimates are not to be trusted
PARETO_K_MIN_SAMPLES = 25  # leaves a tail of at least 5 weights to fit


def _sorted_finite(log_w: ArrayLike) -> np.ndarray:
    w = _log_weights(log_w, allow_neg_inf=True, min_size=1)
    w = w[torch.isfinite(w)].sort().values.numpy()
    if len(w) < PARETO_K_MIN_SAMPLES:
        raise ValueError(f"pareto_k needs at least {PARETO_K_MIN_SAMPLES} finite log-weights, "
                         f"got {len(w)}")
    return w


def _tail_size(n: int) -> int:
    return int(min(n / 5, 3 * math.sqrt(n)))


def pareto_k(log_w: ArrayLike) -> float:
    """Shape ``k`` of a generalized Pareto fit to the largest importance weights.

    The diagnostic of Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao
    and Gabry, arXiv:1507.02646): with ``k > 0.7`` (:data:`PARETO_K_RELIABLE`) the weights
    are so heavy-tailed that importance-sampling estimates and their error bars are
    unreliable however many samples are drawn (ln Z is then typically biased low); for
    ``0.5 < k <= 0.7`` they converge slowly and the error bars are optimistic. The tail is
    the ``min(n/5, 3 sqrt(n))`` largest weights; the fit is the posterior-mean method of
    Zhang and Stephens (Technometrics 51, 316 (2009)), then shrunk towards 0.5 with the
    weak prior of the paper above (weight of 10 observations).

    >>> _ = torch.manual_seed(0)
    >>> w = torch.distributions.Pareto(1.0, 2.0).sample((20000,)).log()  # tail shape 1/2
    >>> abs(pareto_k(w) - 0.5) < 0.15
    True
    """
    w = _sorted_finite(log_w)
    return _fit_tail(w, _tail_size(len(w)))[0]


def _fit_tail(w: np.ndarray, n_tail: int) -> tuple[float, float]:
    """(k, sigma) of the exceedances of the ``n_tail`` largest of the sorted log-weights
    ``w``, in units of the largest weight."""
    weights = np.exp(w - w[-1])  # the fit is scale invariant
    return _generalized_pareto_fit(weights[-n_tail:] - weights[-n_tail - 1])


def _generalized_pareto_fit(x: np.ndarray) -> tuple[float, float]:
    """Zhang-Stephens estimate (shape k with the PSIS prior, scale sigma) of a generalized
    Pareto sample ``x >= 0`` (sorted ascending); (0, 0) when all exceedances vanish."""
    n = len(x)
    if x[-1] <= 0:
        return 0.0, 0.0
    m = 30 + int(math.sqrt(n))
    quartile = x[max(int(n / 4 + 0.5) - 1, 0)] or x[-1]
    # theta = shape / scale on Zhang and Stephens' grid; profile log-likelihood at each
    theta = -1 / x[-1] - (1 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))) / (3 * quartile)
    shape = np.log1p(np.outer(theta, x)).mean(axis=1)
    profile = n * (np.log(theta / shape) - shape - 1)
    posterior = np.exp(profile - profile.max())
    theta_mean = float((theta * posterior).sum() / posterior.sum())
    k = float(np.log1p(theta_mean * x).mean())
    return (n * k + 10 * 0.5) / (n + 10), k / theta_mean


def psis_log_weights(log_w: ArrayLike) -> np.ndarray:
    """Pareto-smoothed log-weights (PSIS, arXiv:1507.02646), in the order given.

    The ``min(n/5, 3 sqrt(n))`` largest weights are replaced by the expected order
    statistics of the generalized Pareto distribution fitted to them, capped at the largest
    raw weight; this lowers the variance of importance-sampling estimates at a small bias.
    Non-finite entries (zero weights) stay as they are.

    >>> w = np.log(np.arange(1.0, 101.0))
    >>> bool(psis_log_weights(w).max() <= w.max())
    True
    """
    raw = as_float64_tensor(log_w).numpy().copy()
    finite = np.flatnonzero(np.isfinite(raw))
    order = finite[np.argsort(raw[finite])]
    w = raw[order]
    if len(w) < PARETO_K_MIN_SAMPLES:
        raise ValueError(f"PSIS needs at least {PARETO_K_MIN_SAMPLES} finite log-weights, "
                         f"got {len(w)}")
    n_tail = _tail_size(len(w))
    k, sigma = _fit_tail(w, n_tail)
    if sigma <= 0 or not math.isfinite(k):
        return raw
    p = (np.arange(1, n_tail + 1) - 0.5) / n_tail
    quantiles = -sigma * np.log1p(-p) if k == 0 else sigma / k * ((1 - p) ** -k - 1)
    cutoff = math.exp(w[-n_tail - 1] - w[-1])
    raw[order[-n_tail:]] = np.minimum(np.log(cutoff + quantiles), 0.0) + w[-1]
    return raw


def self_normalised(moments: np.ndarray, log_w: ArrayLike,
                    combine: Combine) -> tuple[float, float]:
    """Self-normalised importance-sampling estimate of ``combine(E_pi[g])`` with its
    delta-method error, ``sqrt(sum_k p_k^2 psi_k^2)`` (``p`` the normalised weights, ``psi``
    the influence of sample ``k``; docs/physics.md).

    ``moments`` is ``(n_moments, n)``: the functions g of each sample ``x_k ~ q``.

    >>> g = np.array([[0.0, 1.0, 2.0, 3.0]])
    >>> value, err = self_normalised(g, np.zeros(4), lambda mu: mu[0])
    >>> value
    1.5
    """
    w = _log_weights(log_w, allow_neg_inf=True, min_size=2)
    p = torch.softmax(w, 0).numpy()
    value, influence = smooth_function(moments, combine, p)
    return value, float(np.sqrt((p**2 * influence**2).sum()))


def expected_acceptance(w_proposals: ArrayLike, w_states: ArrayLike) -> float | None:
    """Long-run acceptance of independent Metropolis with proposal q: the mean of
    min(1, exp(w' - w)) over all pairs of proposals (log-weights ``w_proposals`` of samples of
    q) and states (``w_states`` of samples of pi), computed exactly over the pairs by sorting;
    ``None`` if either set is empty.

    >>> expected_acceptance(np.zeros(3), np.zeros(5))  # q = pi: every proposal accepted
    1.0
    """
    w_q = as_float64_tensor(w_proposals).reshape(-1)
    w_pi = as_float64_tensor(w_states).reshape(-1).sort().values
    if not len(w_q) or not len(w_pi):
        return None
    below = torch.searchsorted(w_pi, w_q, right=True)  # states with w <= w': accepted surely
    tail = torch.logcumsumexp((-w_pi).flip(0), 0).flip(0)  # ln sum_{j >= i} exp(-w_j)
    tail = torch.cat([tail, tail.new_full((1,), -math.inf)])
    accepted = below + torch.exp(w_q + tail[below])
    return float(accepted.sum() / (len(w_q) * len(w_pi)))
