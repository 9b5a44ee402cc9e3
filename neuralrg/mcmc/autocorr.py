"""Integrated autocorrelation time with Sokal's self-consistent window.

For a stationary series with normalised autocorrelation ``rho(t)``,
``tau_int = 1/2 + sum_{t >= 1} rho(t)`` (so an uncorrelated series has ``tau_int = 1/2``)
and the error of a chain mean of ``n`` samples is ``sqrt(2 tau_int var / n)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neuralrg.estimators import ArrayLike, Estimate, as_steps_by_chains
from neuralrg.validation import check_real


def autocorrelation(series: ArrayLike) -> np.ndarray:
    """Normalised autocorrelation ``rho(t)``, ``t = 0 .. n_steps - 1``, averaged over chains.

    ``series`` is ``(n_steps,)`` or ``(n_steps, n_chains)``. Deviations are taken from the
    mean over all chains (so chains stuck in different places show up as correlation);
    the autocovariance uses the ``1/n`` (Sokal) normalisation and is computed by FFT.
    A series with zero variance gives ``rho = nan``.

    >>> rho = autocorrelation(np.array([1.0, -1.0, 1.0, -1.0]))
    >>> float(rho[0]), float(rho[1])
    (1.0, -0.75)
    """
    values = as_steps_by_chains(series)
    n_steps = values.shape[0]
    deviations = values - values.mean()
    n_fft = 1 << (2 * n_steps - 1).bit_length()
    spectrum = np.fft.rfft(deviations, n=n_fft, axis=0)
    autocov = np.fft.irfft(np.abs(spectrum) ** 2, n=n_fft, axis=0)[:n_steps].mean(axis=1)
    if autocov[0] <= 0.0:
        return np.full(n_steps, math.nan)
    return autocov / autocov[0]


def integrated_autocorr_time(
    series: ArrayLike, c: float = 5.0, return_window: bool = False
) -> float | tuple[float, int]:
    """``tau_int = 1/2 + sum_{t=1}^{W} rho(t)`` at Sokal's self-consistent window ``W``.

    ``W`` is the first window with ``W >= c (1/2 + sum_{t=1}^{W} |rho(t)|)``: Sokal's rule
    ``W >= c tau_int(W)`` where ``rho >= 0``, and a window wide enough for the
    oscillating ``rho`` of an anticorrelated series (e.g. HMC with long trajectories),
    where Sokal's rule would stop at ``W = 1`` on a small or negative partial sum.
    ``series`` is ``(n_steps,)`` or ``(n_steps, n_chains)``; ``rho`` is averaged over the
    chains (see :func:`autocorrelation`). If no window satisfies Sokal's condition the
    series is too short for a reliable estimate and the sum over the whole series
    (``W = n_steps - 1``) is returned. A constant series gives ``nan`` (window 0).
    With ``return_window=True`` the result is ``(tau, W)``.

    >>> rng = np.random.default_rng(0)
    >>> tau = integrated_autocorr_time(rng.normal(size=(4000, 4)))
    >>> abs(tau - 0.5) < 0.1
    True
    """
    result = autocorr_window(series, c)
    return (result.tau, result.window) if return_window else result.tau


@dataclass(frozen=True)
class AutocorrTime:
    """``tau_int`` at window ``W``; ``converged`` is False when no window satisfied Sokal's
    condition (the series is too short for its own autocorrelation)."""

    tau: float
    window: int
    converged: bool


def autocorr_window(series: ArrayLike, c: float = 5.0) -> AutocorrTime:
    """:func:`integrated_autocorr_time` with its window and whether the window converged.

    >>> rng = np.random.default_rng(0)
    >>> autocorr_window(rng.normal(size=(500, 4))).converged
    True
    >>> autocorr_window(np.cumsum(rng.normal(size=50))).converged  # a random walk
    False
    """
    check_real("c", c, 0)
    rho = autocorrelation(series)
    if not math.isfinite(rho[0]):
        return AutocorrTime(math.nan, 0, False)
    taus = 0.5 + np.cumsum(rho[1:])  # taus[W - 1] = tau_int(W)
    taus_abs = 0.5 + np.cumsum(np.abs(rho[1:]))
    windows = np.arange(1, rho.size)
    good = np.flatnonzero(windows >= c * taus_abs)
    window = int(windows[good[0]]) if good.size else int(windows[-1])
    return AutocorrTime(float(taus[window - 1]), window, bool(good.size))


def mean_with_autocorr_error(series: ArrayLike, c: float = 5.0) -> Estimate:
    """Mean over all steps and chains with error ``sqrt(2 tau_int var / (n_steps n_chains))``.

    A negative ``tau_int`` (strong anticorrelation, or noise) is clipped to 0 in the error.

    >>> rng = np.random.default_rng(1)
    >>> mean, err = mean_with_autocorr_error(rng.normal(size=(1000, 4)))
    >>> abs(mean) < 4 * err
    True
    """
    values = as_steps_by_chains(series)
    tau = integrated_autocorr_time(values, c=c)
    variance = float(values.var())
    if variance == 0.0:
        return Estimate(float(values.mean()), 0.0)
    return Estimate(float(values.mean()), math.sqrt(2.0 * max(tau, 0.0) * variance / values.size))
