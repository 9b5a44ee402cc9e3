"""Convergence diagnostics of several Markov chains: rank-normalised split R-hat and bulk ESS.

Vehtari, Gelman, Simpson, Carpenter and Buerkner, "Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16,
667 (2021). Each chain is split in halves (a trend inside a chain then shows up as a
difference between chains), the pooled draws are replaced by the normal scores of their
ranks, and between- and within-chain variances are compared. R-hat above
``RHAT_CONVERGED`` (1.01) means the chains have not mixed; a bulk ESS below ``MIN_BULK_ESS``
(400) leaves the error bar itself uncertain (the rules are in
:mod:`neuralrg.estimators.verdicts`).

Series are ``(n_steps, n_chains)`` as everywhere in :mod:`neuralrg.mcmc`. The bulk ESS is
Stan's estimator, ``n / (2 tau_int)`` in Sokal's convention ``tau_int = 1/2 + sum rho``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special, stats

from neuralrg.estimators import Combine, as_steps_by_chains, smooth_function
from neuralrg.estimators.verdicts import MIN_DIAGNOSTIC_STEPS
from neuralrg.mcmc.autocorr import autocorr_window


def split_chains(series: np.ndarray) -> np.ndarray:
    """``(n_steps, n_chains)`` -> ``(n_steps // 2, 2 n_chains)``: first and last halves
    (the middle draw of an odd-length chain is dropped)."""
    half = series.shape[0] // 2
    return np.concatenate([series[:half], series[series.shape[0] - half:]], axis=1)


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Blom's normal scores of the pooled ranks, Phi^-1((r - 3/8) / (n + 1/4)); ties get
    their average rank."""
    ranks = stats.rankdata(values, method="average").reshape(values.shape)
    return math.sqrt(2) * special.erfinv(2 * (ranks - 0.375) / (values.size + 0.25) - 1)


def _potential_scale_reduction(series: np.ndarray) -> float:
    n_steps = series.shape[0]
    within = series.var(axis=0, ddof=1).mean()
    between = n_steps * series.mean(axis=0).var(ddof=1)
    return float(np.sqrt((between / within + n_steps - 1) / n_steps))


def split_rhat(series) -> float:
    """Rank-normalised split R-hat, the larger of the bulk and the folded (tail) version.

    NaN when it cannot be computed: fewer than ``MIN_DIAGNOSTIC_STEPS`` steps, or a
    series that never changes. Chains stuck in two different modes give R-hat >> 1:

    >>> rng = np.random.default_rng(0)
    >>> round(split_rhat(rng.normal(size=(1000, 4))), 2)
    1.0
    >>> split_rhat(rng.normal(size=(1000, 4)) + [0, 0, 5, 5]) > 1.5
    True
    """
    values = as_steps_by_chains(series)
    if values.shape[0] < MIN_DIAGNOSTIC_STEPS or np.ptp(values) == 0:
        return math.nan
    split = split_chains(values)
    folded = np.abs(split - np.median(split))
    return max(_potential_scale_reduction(normal_scores(split)),
               _potential_scale_reduction(normal_scores(folded)))


def _autocovariance(series: np.ndarray) -> np.ndarray:
    """Per-chain autocovariance (1/n normalisation) at every lag, by FFT."""
    n_steps = series.shape[0]
    deviations = series - series.mean(axis=0)
    n_fft = 1 << (2 * n_steps - 1).bit_length()
    spectrum = np.fft.rfft(deviations, n=n_fft, axis=0)
    return np.fft.irfft(np.abs(spectrum) ** 2, n=n_fft, axis=0)[:n_steps] / n_steps


def _geyer_tau(rho: np.ndarray) -> float:
    """Stan's 2 tau_int from the multi-chain autocorrelation ``rho``: Geyer's initial positive
    sequence of pair sums rho(2t) + rho(2t+1), made monotone (a running minimum)."""
    n_steps = len(rho)
    kept = np.zeros(n_steps)
    kept[:2] = rho[:2]
    t, even, odd = 1, rho[0], rho[1]
    while t < n_steps - 3 and even + odd > 0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd >= 0:
            kept[t + 1], kept[t + 2] = even, odd
        t += 2
    last = t - 2
    if even > 0:
        kept[last + 1] = even
    pairs = np.minimum.accumulate(kept[: last + 1].reshape(-1, 2).sum(axis=1))
    return -1.0 + 2.0 * float(pairs.sum()) + float(kept[last + 1])


def effective_sample_size(series) -> float:
    """Effective sample size of the mean of ``(n_steps, n_chains)`` draws (Stan's estimator).

    >>> rng = np.random.default_rng(1)
    >>> 3000 < effective_sample_size(rng.normal(size=(1000, 4))) < 5000
    True
    """
    values = as_steps_by_chains(series)
    n_steps, n_chains = values.shape
    if np.ptp(values) < np.finfo(float).resolution:
        return float(values.size)
    autocov = _autocovariance(values)
    mean_var = autocov[0].mean() * n_steps / (n_steps - 1)
    var_plus = mean_var * (n_steps - 1) / n_steps
    if n_chains > 1:
        var_plus += values.mean(axis=0).var(ddof=1)
    rho = 1.0 - (mean_var - autocov.mean(axis=1)) / var_plus
    rho[0] = 1.0
    tau = max(_geyer_tau(rho), 1 / math.log10(values.size))
    return float(values.size / tau)


def bulk_ess(series) -> float:
    """Bulk effective sample size: :func:`effective_sample_size` of the rank-normalised split
    chains; NaN for fewer than ``MIN_DIAGNOSTIC_STEPS`` steps."""
    values = as_steps_by_chains(series)
    if values.shape[0] < MIN_DIAGNOSTIC_STEPS:
        return math.nan
    return effective_sample_size(normal_scores(split_chains(values)))


@dataclass(frozen=True)
class ChainEstimate:
    """A Markov-chain estimate of a smooth function of means, with its diagnostics.

    ``err`` is Wolff's Gamma method: ``sqrt(2 tau_int var(psi) / n)`` for the influence
    series ``psi`` (see :func:`neuralrg.estimators.smooth_function`), with ``tau_int`` from
    Sokal's window over the chain-averaged autocorrelation; for chains shorter than
    ``MIN_DIAGNOSTIC_STEPS`` it is the spread over the (independent) chains, and R-hat,
    bulk ESS and ``tau_int`` are NaN.
    """

    value: float
    err: float
    tau_int: float
    window_converged: bool
    rhat: float
    ess_bulk: float
    n_steps: int
    n_chains: int

    def to_dict(self) -> dict:
        return asdict(self)


def chain_estimate(moments: np.ndarray, combine: Combine) -> ChainEstimate:
    """``combine(E[g])`` from ``moments`` ``(n_moments, n_steps, n_chains)`` of Markov chains.

    >>> rng = np.random.default_rng(2)
    >>> estimate = chain_estimate(rng.normal(size=(1, 2000, 8)), lambda mu: mu[0])
    >>> abs(estimate.value) < 4 * estimate.err, round(estimate.rhat, 2)
    (True, 1.0)
    """
    n_steps, n_chains = moments.shape[1:]
    value, psi = smooth_function(moments, combine)
    if n_steps < MIN_DIAGNOSTIC_STEPS:
        spread = psi.mean(axis=0).std(ddof=1) / math.sqrt(n_chains) if n_chains > 1 else math.nan
        return ChainEstimate(value, float(spread), math.nan, False, math.nan, math.nan,
                             n_steps, n_chains)
    window = autocorr_window(psi)
    variance = float(psi.var())
    err = math.sqrt(2 * max(window.tau, 0.5) * variance / psi.size) if variance > 0 else 0.0
    return ChainEstimate(value, err, window.tau, window.converged, split_rhat(psi),
                         bulk_ess(psi), n_steps, n_chains)
