"""Exact curves of the Ising model along a temperature range, to draw beside a scan: the
free energy, energy and heat capacity per site from Kaufman's solution at any L (the ring's
transfer matrix in 1D), the magnetisation moments where the transfer matrix is cheap, and
the exact heat-capacity peak of a finite lattice."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from neuralrg.exact import exact_ising, magnetisation_moments, moments_within_reach

FINE_POINTS = 121
MAX_FINE_MOMENT_SITES = 64  # the moments cost 0.06 s per T at L = 8 and 11 s at L = 10
MOMENT_POINTS = 41
THERMAL = ("free_energy_per_site", "energy_per_site", "heat_capacity_per_site")
MOMENTS = {"m2": "m2", "abs_m": "m_abs", "binder": "binder"}


def thermal_lines(L: int, T: np.ndarray, d: int = 2) -> dict[str, np.ndarray]:
    """f, e and c per site at every temperature of ``T``.

    >>> lines = thermal_lines(4, np.array([2.0, 3.0]))
    >>> [round(float(v), 4) for v in lines["energy_per_site"]]
    [-1.7554, -1.0171]
    """
    results = [exact_ising(L, float(t), d) for t in T]
    return {name: np.array([getattr(r, name) for r in results]) for name in THERMAL}


def moment_lines(L: int, T: np.ndarray, d: int = 2) -> dict[str, np.ndarray]:
    """<m^2>, <|m|> and the Binder cumulant at every temperature of ``T`` (within the
    transfer matrix's reach, see :func:`neuralrg.exact.moments_within_reach`)."""
    results = [magnetisation_moments(L, float(t), d) for t in T]
    return {name: np.array([getattr(r, field) for r in results])
            for name, field in MOMENTS.items()}


def exact_lines(L: int, lo: float, hi: float, d: int = 2) -> dict[str, tuple[np.ndarray,
                                                                            np.ndarray]]:
    """Quantity -> (T, exact values) on a fine grid from ``lo`` to ``hi``: the thermal ones
    always, the magnetisation moments for lattices of at most
    :data:`MAX_FINE_MOMENT_SITES` sites (beyond, the scan draws the exact values at its own
    grid points where they are known).

    >>> sorted(exact_lines(4, 2.0, 2.5))[:3]
    ['abs_m', 'binder', 'energy_per_site']
    """
    T = np.linspace(lo, hi, FINE_POINTS)
    lines = {name: (T, values) for name, values in thermal_lines(L, T, d).items()}
    if L**d <= MAX_FINE_MOMENT_SITES and moments_within_reach(L, d):
        coarse = np.linspace(lo, hi, MOMENT_POINTS)
        lines.update({name: (coarse, values)
                      for name, values in moment_lines(L, coarse, d).items()})
    return lines


def heat_capacity_peak(L: int, lo: float, hi: float, d: int = 2) -> tuple[float, float]:
    """(T, c) of the largest heat capacity per site of the finite lattice within [lo, hi].

    >>> T, c = heat_capacity_peak(8, 2.1, 2.6)
    >>> round(T, 3), round(c, 3)
    (2.362, 1.192)
    """
    found = minimize_scalar(lambda t: -exact_ising(L, t, d).heat_capacity_per_site,
                            bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return float(found.x), float(-found.fun)
