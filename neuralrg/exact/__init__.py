"""Exact reference results (Ising: 1D ring, 2D Kaufman torus, enumeration, transfer matrix)."""

from neuralrg.exact.ising import (
    MAX_ENUMERATION_SITES,
    MAX_TRANSFER_L,
    T_CRITICAL_2D,
    IsingEnumeration,
    IsingExact,
    enumerate_ising,
    exact_ising,
    ising_1d_energy_per_site,
    ising_1d_heat_capacity_per_site,
    ising_1d_ln_z,
    ising_2d_energy_per_site,
    ising_2d_heat_capacity_per_site,
    ising_2d_ln_z,
    ising_2d_transfer_ln_z,
)

__all__ = [
    "MAX_ENUMERATION_SITES",
    "MAX_TRANSFER_L",
    "T_CRITICAL_2D",
    "IsingEnumeration",
    "IsingExact",
    "enumerate_ising",
    "exact_ising",
    "ising_1d_energy_per_site",
    "ising_1d_heat_capacity_per_site",
    "ising_1d_ln_z",
    "ising_2d_energy_per_site",
    "ising_2d_heat_capacity_per_site",
    "ising_2d_ln_z",
    "ising_2d_transfer_ln_z",
]
