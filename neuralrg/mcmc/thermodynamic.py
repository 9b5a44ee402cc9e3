"""Thermodynamic integration: ln Z(beta) = ln Z(0) - int_0^beta <E>_b db, the classical route to a
free energy that needs no flow.

The integrand is measured by Markov chains at the nodes of a Gauss-Legendre rule on
[0, beta] (each node's mean energy with its Gamma-method error and diagnostics); the errors
add in quadrature with the rule's weights. A target offers the route through
``thermodynamic_path()``: a :class:`ThermodynamicPath` with its inverse temperature,
ln Z at beta = 0, the shift from that model's ln Z to the target's own, and chains of
energies at any beta (for the relaxed Ising model: Swendsen-Wang chains of the Ising spins).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neuralrg.mcmc.diagnostics import ChainEstimate, chain_estimate
from neuralrg.validation import check_int

EnergySeries = Callable[[float, int, int, int], np.ndarray]


@dataclass(frozen=True)
class ThermodynamicPath:
    """What thermodynamic integration needs from a target: ``beta``, ``ln_z_at_zero``,
    ``ln_z_shift`` (target's ln Z = integrated ln Z - shift) and
    ``energy_series(beta, chains, steps, therm) -> (steps, chains)`` energies of equilibrium
    chains at inverse temperature ``beta`` (float64)."""

    beta: float
    ln_z_at_zero: float
    ln_z_shift: float
    energy_series: EnergySeries


@dataclass(frozen=True)
class ThermodynamicEstimate:
    """ln Z of the target with its error bar, and the chain estimate at every node."""

    value: float
    err: float
    nodes: tuple[float, ...]
    weights: tuple[float, ...]
    energies: tuple[ChainEstimate, ...]


def thermodynamic_ln_z(path: ThermodynamicPath, n_nodes: int = 40, chains: int = 8,
                       steps: int = 400, therm: int = 100) -> ThermodynamicEstimate:
    """Integrate ``path``'s mean energy over ``n_nodes`` Gauss-Legendre nodes in [0, beta].

    >>> rng = np.random.default_rng(0)  # two-level system, E = +-1: ln Z = ln(2 cosh beta)
    >>> def two_level(beta, chains, steps, therm):
    ...     up = rng.random((steps, chains)) < 1 / (1 + np.exp(-2 * beta))
    ...     return np.where(up, -1.0, 1.0)
    >>> path = ThermodynamicPath(0.7, np.log(2.0), 0.0, two_level)
    >>> result = thermodynamic_ln_z(path, n_nodes=8, chains=4, steps=2000)
    >>> bool(abs(result.value - np.log(2 * np.cosh(0.7))) < 4 * result.err)
    True
    """
    check_int("n_nodes", n_nodes, 1)
    points, weights = np.polynomial.legendre.leggauss(n_nodes)
    nodes = path.beta * (points + 1) / 2
    weights = path.beta * weights / 2
    energies = tuple(chain_estimate(path.energy_series(float(b), chains, steps, therm)[None],
                                    lambda mu: mu[0]) for b in nodes)
    integral = sum(w * e.value for w, e in zip(weights, energies, strict=True))
    err = math.sqrt(sum((w * e.err) ** 2 for w, e in zip(weights, energies, strict=True)))
    return ThermodynamicEstimate(path.ln_z_at_zero - integral - path.ln_z_shift, err,
                                 tuple(map(float, nodes)), tuple(map(float, weights)), energies)
