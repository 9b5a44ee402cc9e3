"""Ising observables from Markov-chain samples of the relaxed model, with error bars.

Spins are drawn given each configuration x, s_i ~ Bernoulli(sigmoid(2 x_i)), so
that their marginal is exactly the Ising distribution. Error bars come from a
jackknife over groups of independent chains (when there are at least
``MIN_GROUPS`` chains) or over blocks of consecutive steps otherwise, so that
non-linear estimators (heat capacity, Binder cumulant) get honest errors too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from neuralrg.estimators import Estimate
from neuralrg.exact import MAX_ENUMERATION_SITES, enumerate_ising, exact_ising
from neuralrg.targets.ising import RelaxedIsing

MIN_GROUPS = 16
MAX_GROUPS = 32
OBSERVABLES = ("energy_per_site", "heat_capacity_per_site", "m2", "abs_m", "binder")


def spin_series(
    target: RelaxedIsing, samples: Tensor, generator: torch.Generator | None = None
) -> dict[str, np.ndarray]:
    """Energy per site and magnetisation per site of spins drawn from ``samples``.

    ``samples`` has shape ``(n_steps, n_chains, *lattice)``; the returned arrays
    have shape ``(n_steps, n_chains)``, in float64.
    """
    n_steps, n_chains = samples.shape[:2]
    flat = samples.reshape(n_steps * n_chains, *target.event_shape)
    spins = target.sample_spins(flat, generator).double()
    energy = target.energy(spins) / target.n_sites
    magnetisation = spins.reshape(len(spins), -1).mean(1)
    shape = (n_steps, n_chains)
    return {name: values.reshape(shape).cpu().numpy()
            for name, values in (("e", energy), ("m", magnetisation))}


def _groups(n_steps: int, n_chains: int) -> tuple[int, int]:
    """(axis, number of jackknife groups): chains when there are enough, else time blocks."""
    if n_chains >= MIN_GROUPS:
        return 1, min(n_chains, MAX_GROUPS)
    return 0, max(2, min(n_steps // 2, MAX_GROUPS))


def jackknife(
    series: dict[str, np.ndarray], estimator: Callable[[dict[str, np.ndarray]], float]
) -> Estimate:
    """Jackknife estimate of ``estimator`` over groups of chains or blocks of steps."""
    n_steps, n_chains = next(iter(series.values())).shape
    axis, n_groups = _groups(n_steps, n_chains)
    labels = np.arange(series["e"].shape[axis]) * n_groups // series["e"].shape[axis]
    full = estimator({k: v.reshape(-1) for k, v in series.items()})

    def without(group: int) -> dict[str, np.ndarray]:
        keep = labels != group
        return {k: np.compress(keep, v, axis=axis).reshape(-1) for k, v in series.items()}

    leave_out = np.array([estimator(without(g)) for g in range(n_groups)])
    bias_corrected = n_groups * full - (n_groups - 1) * leave_out.mean()
    err = np.sqrt((n_groups - 1) * np.mean((leave_out - leave_out.mean()) ** 2))
    return Estimate(float(bias_corrected), float(err))


def _estimators(n_sites: int, T: float) -> dict[str, Callable[[dict], float]]:
    def binder(s):
        m2 = np.mean(s["m"] ** 2)
        return 1 - np.mean(s["m"] ** 4) / (3 * m2**2)

    return {
        "energy_per_site": lambda s: np.mean(s["e"]),
        "heat_capacity_per_site": lambda s: n_sites * np.var(s["e"]) / T**2,
        "m2": lambda s: np.mean(s["m"] ** 2),
        "abs_m": lambda s: np.mean(np.abs(s["m"])),
        "binder": binder,
    }


def exact_observables(L: int, T: float, d: int) -> dict[str, float | None]:
    """Exact values where known: energy and heat capacity always (Kaufman / transfer
    matrix); magnetisation moments by enumeration for at most 25 sites."""
    exact = exact_ising(L, T, d)
    values: dict[str, float | None] = {
        "energy_per_site": exact.energy_per_site,
        "heat_capacity_per_site": exact.heat_capacity_per_site,
        "m2": None, "abs_m": None, "binder": None,
    }
    if L**d <= MAX_ENUMERATION_SITES:
        enum = enumerate_ising(L, T, d)
        values.update(m2=enum.m2, abs_m=enum.m_abs, binder=enum.binder)
    return values


def ising_observables(
    target: RelaxedIsing, samples: Tensor, generator: torch.Generator | None = None
) -> dict[str, dict[str, float | None]]:
    """``{name: {value, err, exact}}`` for each of :data:`OBSERVABLES`."""
    series = spin_series(target, samples, generator)
    exact = exact_observables(target.L, target.T, target.d)
    return {
        name: {**jackknife(series, estimator).to_dict(), "exact": exact[name]}
        for name, estimator in _estimators(target.n_sites, target.T).items()
    }
