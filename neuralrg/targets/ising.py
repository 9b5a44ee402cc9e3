"""Continuous relaxation of the Ising model (Gaussian integral trick).

ln pi(x) = -x^T (K + a I)^{-1} x / 2 + sum_i ln cosh x_i with K = J A / T, and
ln Z_Ising = ln Z_relaxed + c exactly (see docs/physics.md). Given x the spins are
independent with P(s_i = +1 | x) = sigmoid(2 x_i).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neuralrg.exact import (
    T_CRITICAL_2D,
    exact_ising,
    magnetisation_moments,
    moments_within_reach,
)
from neuralrg.mcmc.thermodynamic import ThermodynamicPath
from neuralrg.targets.base import random_signs
from neuralrg.targets.clusters import swendsen_wang
from neuralrg.targets.lattice import Circulant, LatticeTarget, PeriodicLattice
from neuralrg.validation import check_real

PAPER_MARGIN = 0.1  # a = 0.1 - lambda_min(K), the paper's choice


def log_cosh(x: Tensor) -> Tensor:
    """ln cosh x without overflow: softplus(2x) - x - ln 2."""
    return F.softplus(2 * x) - x - math.log(2.0)


def ising_energy(spins: Tensor, J: float = 1.0) -> Tensor:
    """E(s) = -J sum_i sum_mu s_i s_{i + e_mu} on the periodic lattice, per configuration."""
    dims = tuple(range(1, spins.dim()))
    bonds = sum(spins * spins.roll(1, dim) for dim in dims)
    return -J * bonds.reshape(spins.shape[0], -1).sum(1)


class RelaxedIsing(LatticeTarget):
    """Relaxed Ising model on the ``L^d`` periodic lattice at temperature ``T`` (default: the
    2D critical point).

    >>> target = RelaxedIsing(L=4, T=2.269, d=2)
    >>> target.log_prob(torch.zeros(2, 4, 4)).tolist()
    [0.0, 0.0]
    """

    z2_symmetric = True
    scan_parameter = "T"

    def __init__(
        self, L: int = 8, T: float = T_CRITICAL_2D, d: int = 2, J: float = 1.0,
        diagonal_shift: float | None = None, dense: bool | None = None,
    ):
        check_real("T", T, 0)
        if check_real("J", J) == 0:
            raise ValueError("J=0 must be a finite number other than 0")
        self.lattice = PeriodicLattice(L, d)
        self.L, self.T, self.d, self.J, self.dense = L, float(T), d, float(J), dense
        coupling_spectrum = (self.J / self.T) * self.lattice.adjacency_spectrum()
        lambda_min = float(coupling_spectrum.min())
        a = PAPER_MARGIN - lambda_min if diagonal_shift is None else float(diagonal_shift)
        if not (math.isfinite(a) and a + lambda_min > 0):
            raise ValueError(
                f"diagonal_shift={diagonal_shift!r} must make K + aI positive definite: "
                f"a > {-lambda_min:.6g}"
            )
        self.diagonal_shift = a
        self.spectrum = coupling_spectrum + a
        self.precision = Circulant(1 / self.spectrum, dense=dense)  # (K + aI)^{-1}
        self.covariance = Circulant(self.spectrum, dense=dense)  # K + aI: x | s is N(A s, A)
        self.covariance_root = Circulant(self.spectrum.sqrt(), dense=dense)

    def log_prob(self, x: Tensor) -> Tensor:
        """Unnormalised ln pi(x) for ``x`` of shape ``(batch, *lattice_shape)``."""
        self.check_shape(x)
        cosh_term = log_cosh(x).reshape(x.shape[0], -1).sum(1)
        return cosh_term - 0.5 * self.precision.quadratic(x)

    def grad_log_prob(self, x: Tensor) -> Tensor:
        """d ln pi / dx = -(K + aI)^{-1} x + tanh(x), analytic (for HMC in x)."""
        self.check_shape(x)
        return torch.tanh(x) - self.precision.apply(x)

    def describe(self) -> str:
        return f"{self.L}^{self.d} Ising, T = {self.T:.4g}"

    def exact_ln_z(self) -> float | None:
        """Exact ln Z of the relaxed model: the Ising ln Z (Kaufman, or the ring's transfer
        matrix) minus the shift c; ``None`` for J != 1."""
        if self.J != 1.0:
            return None
        return exact_ising(self.L, self.T, self.d).ln_z - self.ln_z_shift

    def summary_extras(self, ln_z_bound: float) -> dict[str, float | None]:
        """The Ising model's ln Z beside the relaxed one's (they differ by the exact c)."""
        exact = self.exact_ln_z()
        return {"ising_ln_z_bound": ln_z_bound + self.ln_z_shift, "ln_z_shift": self.ln_z_shift,
                "ising_ln_z_exact": None if exact is None else exact + self.ln_z_shift}

    def derived_ln_z(self) -> dict[str, tuple[float, float]]:
        """The Ising model's ln Z = ln Z_relaxed + c and its free energy per site
        f = -T ln Z_Ising / N, as (scale, offset) of the relaxed ln Z."""
        c, scale = self.ln_z_shift, -self.T / self.n_sites
        return {"ising_ln_z": (1.0, c), "free_energy_per_site": (scale, scale * c)}

    @property
    def ln_z_shift(self) -> float:
        """c with ln Z_Ising = ln Z_relaxed + c (float64)."""
        n, a = self.n_sites, self.diagonal_shift
        log_det = float(torch.log(self.spectrum).sum())
        return n * math.log(2.0) - a * n / 2 - n / 2 * math.log(2 * math.pi) - log_det / 2

    def sample_spins(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Spins s = +-1 drawn from P(s_i = +1 | x) = sigmoid(2 x_i)."""
        up = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return torch.where(up < torch.sigmoid(2 * x), 1.0, -1.0).to(x.dtype)

    def sample_given_spins(self, spins: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x ~ N(A s, A), A = K + aI: the relaxed variables given the spins (through the
        lattice spectrum, so no N x N matrix for large L)."""
        noise = torch.randn(spins.shape, generator=generator, dtype=spins.dtype,
                            device=spins.device)
        return self.covariance.apply(spins) + self.covariance_root.apply(noise)

    def exact_move(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One exact equilibrium move of the relaxed model: spins given x, a Swendsen-Wang
        update of the spins, x given the new spins. The joint weight
        exp(-x^T A^{-1} x / 2 + s . x) has pi(x) and the Ising weight as its marginals, so the
        move leaves pi invariant, and it inherits the cluster update's freedom from critical
        slowing down. ``generator`` is on ``x``'s device (the clusters are labelled on the CPU,
        the rest stays where ``x`` is).

        >>> target = RelaxedIsing(L=4)
        >>> target.exact_move(torch.zeros(3, 4, 4), torch.Generator().manual_seed(0)).shape
        torch.Size([3, 4, 4])
        """
        self.check_shape(x)
        spins = swendsen_wang(self.sample_spins(x, generator), self.J / self.T, generator)
        return self.sample_given_spins(spins, generator)

    def ising_energy_series(self, beta: float, chains: int, steps: int, therm: int,
                            generator: torch.Generator | None = None) -> np.ndarray:
        """Energies ``(steps, chains)`` (float64) of Swendsen-Wang chains of the Ising spins at
        inverse temperature ``beta``, started from random spins, after ``therm`` sweeps."""
        shape = (chains, *self.event_shape)
        spins = random_signs(shape, generator)
        series = []
        for sweep in range(therm + steps):
            spins = swendsen_wang(spins, self.J * beta, generator)
            if sweep >= therm:
                series.append(self.energy(spins))
        return torch.stack(series).cpu().numpy()

    def thermodynamic_path(self, generator: torch.Generator | None = None) -> ThermodynamicPath:
        """Thermodynamic integration of the Ising energy from beta = 0 (ln Z = N ln 2) to
        1 / T, shifted to the relaxed model's ln Z (see :mod:`neuralrg.mcmc.thermodynamic`)."""
        return ThermodynamicPath(
            1 / self.T, self.n_sites * math.log(2.0), self.ln_z_shift,
            lambda beta, chains, steps, therm: self.ising_energy_series(beta, chains, steps,
                                                                        therm, generator))

    @staticmethod
    def improved_spins(x: Tensor) -> Tensor:
        """tanh(x) = E[s | x], the improved estimator of the spins."""
        return torch.tanh(x)

    def energy(self, spins: Tensor) -> Tensor:
        """Ising energy of spin configurations."""
        return ising_energy(spins, self.J)

    def observable_moments(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The moments behind :attr:`observables` for a batch of ``x``, ``(5, batch)`` float64:
        e, e^2, m^2, |m|, m^4 of spins drawn given each x (e = E / N, m = sum s / N)."""
        spins = self.sample_spins(x, generator).double()
        e = self.energy(spins) / self.n_sites
        m = spins.reshape(len(spins), -1).mean(1)
        return torch.stack([e, e**2, m**2, m.abs(), m**4])

    def exact_observables(self) -> dict[str, float | None]:
        """Exact values of :attr:`observables`: energy and heat capacity from Kaufman's solution
        (the ring's transfer matrix in 1D), magnetisation moments from the row transfer
        matrix with a fugacity (``None`` beyond :data:`neuralrg.exact.MAX_MOMENT_L`)."""
        exact = exact_ising(self.L, self.T, self.d)
        values: dict[str, float | None] = {
            "energy_per_site": exact.energy_per_site,
            "heat_capacity_per_site": exact.heat_capacity_per_site,
            "m2": None, "abs_m": None, "binder": None}
        if self.J == 1.0 and moments_within_reach(self.L, self.d):
            moments = magnetisation_moments(self.L, self.T, self.d)
            values.update(m2=moments.m2, abs_m=moments.m_abs, binder=moments.binder)
        return values

    @property
    def observables(self) -> dict[str, Callable[[Tensor], Tensor]]:
        """Per-site Ising observables as functions of the means of :meth:`observable_moments`:
        energy, heat capacity N var(e) / T^2, <m^2>, <|m|>, Binder 1 - <m^4> / (3 <m^2>^2)."""
        n, T = self.n_sites, self.T
        return {
            "energy_per_site": lambda mu: mu[0],
            "heat_capacity_per_site": lambda mu: n * (mu[1] - mu[0] ** 2) / T**2,
            "m2": lambda mu: mu[2],
            "abs_m": lambda mu: mu[3],
            "binder": lambda mu: 1 - mu[4] / (3 * mu[2] ** 2),
        }
