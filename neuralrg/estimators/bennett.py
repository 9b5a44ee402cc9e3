"""Bennett's acceptance ratio: ln Z from samples of a normalised density q and of pi itself.

With ``n_F`` samples of q (log-weights w_F = ln pi~ - ln q) and ``n_R`` samples of pi
(log-weights w_R), ln Z is the root c of

    sum_F f(w_F - c - M) = sum_R f(c + M - w_R),   f(u) = 1 / (1 + e^-u),  M = ln(n_F / n_R),

the minimum-variance combination of the two one-sided estimators (Bennett, J. Comput. Phys.
22, 245 (1976); with a learned q, Wirnsberger et al., J. Chem. Phys. 153, 144112 (2020)).
It reduces to importance sampling E_q[pi~/q] when n_R -> 0 and to reverse importance
sampling 1/Z = E_pi[q/pi~] when n_F -> 0. Every term is in [0, 1], so it never has the
heavy tails of either one-sided estimator; what it needs is overlap, which the effective
number of contributing samples on each side measures (:attr:`Bennett.overlap_forward`,
:attr:`Bennett.overlap_reverse`).

The error bar is the delta method on the estimating equation: c - c* ~ -g(c*) / g'(c*), so each
sample contributes an influence term; the caller turns the reverse side's influence series
into an error with the chains' autocorrelation (Gamma method), since samples of pi usually
come from Markov chains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from neuralrg.estimators.base import ArrayLike, as_float64_array


@dataclass(frozen=True)
class Bennett:
    """The root ``value`` of Bennett's equation with the influence of each sample on it:
    ``influence_forward`` (i.i.d. samples of q; their variance / n_F is the forward part of
    the error's square) and ``influence_reverse`` (the samples of pi in the shape given; the
    error of their mean is the reverse part). ``overlap_*``: Kish's effective number of
    samples among the terms of each side's sum (few means poor overlap)."""

    value: float
    influence_forward: np.ndarray
    influence_reverse: np.ndarray
    overlap_forward: float
    overlap_reverse: float

    @property
    def err_forward(self) -> float:
        """The forward samples' part of the error bar."""
        return float(self.influence_forward.std() / math.sqrt(self.influence_forward.size))

    def err_independent(self) -> float:
        """The error bar if the samples of pi were independent too."""
        reverse = self.influence_reverse.std() / math.sqrt(self.influence_reverse.size)
        return math.hypot(self.err_forward, float(reverse))


def _kish(terms: np.ndarray) -> float:
    total = terms.sum()
    return float(total**2 / (terms**2).sum()) if total > 0 else 0.0


def _finite(name: str, values: ArrayLike) -> np.ndarray:
    array = as_float64_array(values)
    if array.size < 2 or not np.isfinite(array).all():
        raise ValueError(f"{name} must hold at least 2 finite log-weights, got {array.size} "
                         f"with {int((~np.isfinite(array)).sum())} non-finite")
    return array


def bennett_ln_z(w_forward: ArrayLike, w_reverse: ArrayLike) -> Bennett:
    """Bennett's estimate of ln Z from log-weights ``w_forward`` of samples of q and
    ``w_reverse`` of samples of pi (any shape, e.g. ``(n_steps, n_chains)``).

    >>> rng = np.random.default_rng(0)  # q = N(0, 1), pi~ = 3 N(0.5, 1): ln Z = ln 3
    >>> def w(x):
    ...     return np.log(3.0) - (x - 0.5) ** 2 / 2 + x**2 / 2
    >>> result = bennett_ln_z(w(rng.normal(size=4000)), w(rng.normal(0.5, 1.0, 4000)))
    >>> bool(abs(result.value - np.log(3.0)) < 4 * result.err_independent())
    True
    """
    forward, reverse = _finite("w_forward", w_forward), _finite("w_reverse", w_reverse)
    n_f, n_r = forward.size, reverse.size
    shift = math.log(n_f / n_r)

    def imbalance(c: float) -> float:
        return float(expit(forward - c - shift).sum() - expit(c + shift - reverse).sum())

    low, high = _bracket(imbalance, forward, reverse)
    c = brentq(imbalance, low, high, xtol=1e-12, rtol=4 * np.finfo(float).eps)
    terms_f, terms_r = expit(forward - c - shift), expit(c + shift - reverse)
    slope = float((terms_f * (1 - terms_f)).sum() + (terms_r * (1 - terms_r)).sum()) / n_f
    return Bennett(float(c), terms_f / slope, terms_r * (n_r / n_f) / slope,
                   _kish(terms_f), _kish(terms_r))


def _bracket(imbalance, forward: np.ndarray, reverse: np.ndarray) -> tuple[float, float]:
    """An interval where the (decreasing) imbalance changes sign."""
    low = min(forward.min(), reverse.min()) - 1.0
    high = max(forward.max(), reverse.max()) + 1.0
    while imbalance(low) < 0:
        low -= 2 * (high - low)
    while imbalance(high) > 0:
        high += 2 * (high - low)
    return float(low), float(high)
