"""Values with error bars, and the array conventions of every estimator (float64)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from neuralrg.validation import check_int

ArrayLike = Tensor | np.ndarray | Sequence[float]
Combine = Callable[[Tensor], Tensor]  # means of the moments (float64 tensor) -> a scalar


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


def as_float64_tensor(values: ArrayLike) -> Tensor:
    """A detached float64 CPU copy of ``values``."""
    if isinstance(values, Tensor):
        return values.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def as_float64_array(values: ArrayLike) -> np.ndarray:
    if isinstance(values, Tensor):
        return values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)



def as_steps_by_chains(series: ArrayLike) -> np.ndarray:
    """A float64 array of shape ``(n_steps, n_chains)`` from a 1D or 2D series."""
    values = as_float64_array(series)
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
    values = as_steps_by_chains(series)
    n_steps, n_chains = values.shape
    check_int("min_blocks", min_blocks, 2)
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


def smooth_function(moments: np.ndarray, combine: Combine,
                    weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """A smooth function of means, ``f(mu)`` with ``mu = E[g]``, and the influence of each
    sample, ``psi = grad f(mu) . (g - mu)`` (first-order delta method; Wolff's Gamma method
    uses it for derived quantities such as a heat capacity).

    ``moments`` is ``(n_moments, *samples)``; ``weights`` (optional, normalised, of the
    samples' shape) turn the means into weighted ones. The gradient is taken by autograd.

    >>> g = np.array([[1.0, 3.0]])
    >>> value, psi = smooth_function(g, lambda mu: mu[0] ** 2)
    >>> value, psi.tolist()
    (4.0, [-4.0, 4.0])
    """
    flat = moments.reshape(len(moments), -1)
    mean = flat.mean(axis=1) if weights is None else flat @ weights.reshape(-1)
    mu = torch.tensor(mean, dtype=torch.float64, requires_grad=True)
    value = combine(mu)
    (grad,) = torch.autograd.grad(value, mu)
    influence = grad.numpy() @ (flat - mean[:, None])
    return float(value.detach()), influence.reshape(moments.shape[1:])
