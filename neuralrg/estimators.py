"""Target-agnostic estimators of ln Z and of Markov-chain means, accumulated in float64.

Log-weights are ``log_w = ln pi(x) - ln q(x)`` for samples ``x ~ q`` (PHYSICS.md,
"Variational free energy and estimators").

Non-finite log-weights are never silently dropped or averaged:

- NaN and ``+inf`` always raise ``ValueError`` naming how many there are;
- ``-inf`` (a sample where ``pi = 0``) is a legitimate zero importance weight for
  :func:`importance_ln_z` and :func:`ess_per_sample`, but makes the variational
  bound ``-inf``, so :func:`variational_bound` raises on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray | Sequence[float]


@dataclass(frozen=True)
class Estimate:
    """A value with its one-standard-deviation error bar; unpacks as ``(value, err)``.

    >>> value, err = Estimate(1.5, 0.1)
    >>> Estimate(1.5, 0.1).to_dict()
    {'value': 1.5, 'err': 0.1}
    """

    value: float
    err: float

    def __iter__(self) -> Iterator[float]:
        return iter((self.value, self.err))

    def to_dict(self) -> dict[str, float]:
        """JSON-ready ``{"value": ..., "err": ...}``."""
        return {"value": self.value, "err": self.err}


def _as_float64_tensor(values: ArrayLike) -> Tensor:
    """A detached float64 CPU copy of ``values``."""
    if isinstance(values, Tensor):
        return values.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def _as_float64_array(values: ArrayLike) -> np.ndarray:
    if isinstance(values, Tensor):
        return values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)


def _log_weights(log_w: ArrayLike, allow_neg_inf: bool, min_size: int) -> Tensor:
    """Validate a 1D vector of log-weights; see the module docstring for the policy."""
    w = _as_float64_tensor(log_w)
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


def pareto_k(log_w: ArrayLike) -> float:
    """Shape ``k`` of a generalized Pareto fit to the largest importance weights.

    The diagnostic of Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao
    and Gabry, arXiv:1507.02646): with ``k > 0.7`` (:data:`PARETO_K_RELIABLE`) the weights
    are so heavy-tailed that the importance-sampled ln Z and its jackknife error bar are
    unreliable however many samples are drawn, typically biased low. The tail is the
    ``min(n/5, 3 sqrt(n))`` largest weights; the fit is the posterior-mean method of
    Zhang and Stephens (Technometrics 51, 316 (2009)), then shrunk towards 0.5 with the
    weak prior of the paper above (weight of 10 observations).

    >>> _ = torch.manual_seed(0)
    >>> w = torch.distributions.Pareto(1.0, 2.0).sample((20000,)).log()  # tail shape 1/2
    >>> abs(pareto_k(w) - 0.5) < 0.15
    True
    """
    w = _log_weights(log_w, allow_neg_inf=True, min_size=1)
    w = w[torch.isfinite(w)].sort().values.numpy()
    if len(w) < PARETO_K_MIN_SAMPLES:
        raise ValueError(f"pareto_k needs at least {PARETO_K_MIN_SAMPLES} finite log-weights, "
                         f"got {len(w)}")
    n_tail = int(min(len(w) / 5, 3 * math.sqrt(len(w))))
    weights = np.exp(w - w[-1])  # the fit is scale invariant
    exceedances = weights[-n_tail:] - weights[-n_tail - 1]
    return _generalized_pareto_shape(exceedances)


def _generalized_pareto_shape(x: np.ndarray) -> float:
    """Zhang-Stephens estimate of the shape of a generalized Pareto sample ``x >= 0``
    (sorted ascending), with the PSIS prior; 0 when all exceedances vanish."""
    n = len(x)
    if x[-1] <= 0:
        return 0.0
    m = 30 + int(math.sqrt(n))
    quartile = x[max(int(n / 4 + 0.5) - 1, 0)] or x[-1]
    # theta = shape / scale on Zhang and Stephens' grid; profile log-likelihood at each
    theta = -1 / x[-1] - (1 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))) / (3 * quartile)
    shape = np.log1p(np.outer(theta, x)).mean(axis=1)
    profile = n * (np.log(theta / shape) - shape - 1)
    posterior = np.exp(profile - profile.max())
    theta_mean = float((theta * posterior).sum() / posterior.sum())
    k = float(np.log1p(theta_mean * x).mean())
    return (n * k + 10 * 0.5) / (n + 10)


def _as_steps_by_chains(series: ArrayLike) -> np.ndarray:
    """A float64 array of shape ``(n_steps, n_chains)`` from a 1D or 2D series."""
    values = _as_float64_array(series)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] < 2 or values.shape[1] < 1:
        raise ValueError(
            "series must be (n_steps,) or (n_steps, n_chains) with n_steps >= 2 and "
            f"n_chains >= 1, got shape {values.shape}"
        )
    n_bad = int((~np.isfinite(values)).sum())
    if n_bad:
        raise ValueError(f"series has {n_bad} non-finite entries out of {values.size}")
    return values


def _auto_block_size(n_steps: int, n_chains: int, min_blocks: int) -> int:
    """Largest block size leaving at least ``min_blocks`` blocks over all chains."""
    blocks_per_chain = min(n_steps, -(-min_blocks // n_chains))
    return n_steps // blocks_per_chain


def binning_error(
    series: ArrayLike, block_size: int | None = None, min_blocks: int = 32
) -> Estimate:
    """Mean of a Markov-chain series and its error from binning (blocking) analysis.

    ``series`` is ``(n_steps,)`` or ``(n_steps, n_chains)`` (independent chains). Each
    chain is cut into blocks of ``block_size`` steps; the error is the standard error of
    the block means over all chains, rescaled by ``sqrt(n_used / n_steps)`` when a trailing
    remainder of ``n_steps - n_used`` steps is left out of the blocks (the mean uses all
    steps). By default ``block_size`` is the largest size that leaves at least
    ``min_blocks`` blocks in total; it must be well above the autocorrelation time.

    >>> mean, err = binning_error(np.arange(64.0), block_size=8)
    >>> mean
    31.5
    """
    values = _as_steps_by_chains(series)
    n_steps, n_chains = values.shape
    if min_blocks < 2:
        raise ValueError(f"min_blocks must be >= 2, got {min_blocks}")
    if block_size is None:
        block_size = _auto_block_size(n_steps, n_chains, min_blocks)
    n_blocks = n_steps // block_size if block_size >= 1 else 0
    if n_blocks * n_chains < 2:
        raise ValueError(
            f"block_size must be in [1, n_steps] leaving >= 2 blocks in total, got {block_size}"
            f" for n_steps={n_steps}, n_chains={n_chains}"
        )
    blocks = values[: n_blocks * block_size].reshape(n_blocks, block_size, n_chains).mean(1)
    err = blocks.std(ddof=1) / math.sqrt(blocks.size) * math.sqrt(n_blocks * block_size / n_steps)
    return Estimate(float(values.mean()), float(err))
