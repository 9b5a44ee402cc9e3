"""The contenders of ``vs_monte_carlo``: each advances its chains and returns per-step
observables |m| and e = E / N as ``(n_steps, n_chains)`` float64 arrays.

Flow- and HMC-based samplers work on the relaxed variables x and draw Ising spins from
P(s | x) for every recorded x, so all contenders measure the same Ising observables.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from benchmarks.wolff import IMPLEMENTATION as WOLFF_IMPLEMENTATION
from benchmarks.wolff import WolffChains
from neuralrg.mcmc import hmc_latent, hmc_physical, independent_metropolis
from neuralrg.targets.ising import RelaxedIsing, ising_energy

Observables = tuple[np.ndarray, np.ndarray]
TARGET_ACCEPTANCE = 0.7


def _steps_by_chains(values: Tensor, steps: int, chains: int) -> np.ndarray:
    return values.double().reshape(steps, chains).cpu().numpy()


def spin_observables(spins: Tensor) -> Observables:
    """|m| and e per configuration of ``spins`` ``(n_steps, n_chains, L, L)``."""
    steps, chains = spins.shape[:2]
    flat = spins.reshape(steps * chains, *spins.shape[2:])
    m_abs = flat.reshape(len(flat), -1).mean(1).abs()
    energy = ising_energy(flat) / flat[0].numel()
    return _steps_by_chains(m_abs, steps, chains), _steps_by_chains(energy, steps, chains)


def relaxed_observables(target: RelaxedIsing, x: Tensor) -> Observables:
    """Draw spins from P(s | x) and measure them."""
    return spin_observables(target.sample_spins(x))


class CheckerboardMetropolis:
    """Single-spin-flip Metropolis, vectorised over a checkerboard and over chains (torch)."""

    implementation = "torch, checkerboard-vectorised"
    unit = "sweep"

    def __init__(self, L: int, T: float, n_chains: int, device: torch.device, seed: int):
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.beta = 1.0 / T
        draw = torch.randint(0, 2, (n_chains, L, L), generator=self.generator, device=device)
        self.spins = (2 * draw - 1).float()
        i, j = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
        even = ((i + j) % 2 == 0).to(device)
        self.masks = (even, ~even)

    def _half_sweep(self, mask: Tensor) -> None:
        s = self.spins
        field = s.roll(1, 1) + s.roll(-1, 1) + s.roll(1, 2) + s.roll(-1, 2)
        delta = 2.0 * s * field
        u = torch.rand(s.shape, generator=self.generator, device=s.device)
        flip = mask & (u < torch.exp(-self.beta * delta))
        self.spins = torch.where(flip, -s, s)

    def advance(self, n_steps: int) -> Observables:
        records = []
        for _ in range(n_steps):
            for mask in self.masks:
                self._half_sweep(mask)
            records.append(self.spins)
        return spin_observables(torch.stack(records))


class Wolff:
    """Wolff cluster algorithm (see :mod:`benchmarks.wolff`), on the CPU."""

    implementation = WOLFF_IMPLEMENTATION
    unit = "cluster update"

    def __init__(self, L: int, T: float, n_chains: int, seed: int):
        self.chains = WolffChains(L, T, n_chains, seed)

    def advance(self, n_steps: int) -> Observables:
        return self.chains.advance(n_steps)


class FlowMetropolis:
    """Independent Metropolis-Hastings with the trained flow as proposal."""

    implementation = "neuralrg.mcmc.independent_metropolis"
    unit = "proposal per chain"

    def __init__(self, model, n_chains: int):
        self.model, self.n_chains = model, n_chains
        self.state: tuple[Tensor, Tensor] | None = None
        self.acceptance: float | None = None

    def advance(self, n_steps: int) -> Observables:
        sampler, target = self.model.sampler, self.model.target
        result = independent_metropolis(lambda n: sampler.sample(n), target.log_prob,
                                        self.n_chains, n_steps, initial=self.state)
        self.state = (result.samples[-1], result.log_q[-1].to(result.samples.dtype))
        self.acceptance = result.acceptance
        return relaxed_observables(target, result.samples)


class _HMCBase:
    """Shared step-size adaptation (only during thermalisation) for the HMC contenders."""

    unit = "trajectory"

    def __init__(self, step_size: float, n_leapfrog: int):
        self.step_size, self.n_leapfrog = step_size, n_leapfrog
        self.acceptance: float | None = None

    def adapt(self) -> None:
        """Multiplicative step toward the target acceptance rate."""
        if self.acceptance is not None:
            self.step_size *= math.exp(2.0 * (self.acceptance - TARGET_ACCEPTANCE))


class LatentHMC(_HMCBase):
    """HMC on U(z) = -ln pi(g(z)) - ln|det dg/dz| in the latent space of the trained flow."""

    implementation = "neuralrg.mcmc.hmc_latent (autograd)"

    def __init__(self, model, n_chains: int, step_size: float, n_leapfrog: int):
        super().__init__(step_size, n_leapfrog)
        self.model = model
        with torch.no_grad():
            self.z = model.flow.sample_latent(n_chains)

    def advance(self, n_steps: int) -> Observables:
        result = hmc_latent(self.model.flow.bijector, self.model.target.log_prob, self.z,
                            step_size=self.step_size, n_leapfrog=self.n_leapfrog, n_steps=n_steps)
        self.z, self.acceptance = result.latent[-1], result.acceptance
        return relaxed_observables(self.model.target, result.samples)


class PhysicalHMC(_HMCBase):
    """HMC on U(x) = -ln pi(x) of the relaxed model, with the analytic gradient
    dU/dx = (K + a I)^{-1} x - tanh x (one FFT pair, or a dense product for small L)."""

    implementation = "neuralrg.mcmc.hmc_physical (analytic gradient)"

    def __init__(self, target: RelaxedIsing, n_chains: int, step_size: float, n_leapfrog: int,
                 device: torch.device):
        super().__init__(step_size, n_leapfrog)
        self.target = target
        self.x = torch.randn(n_chains, *target.event_shape, device=device)

    def grad(self, x: Tensor) -> Tensor:
        return self.target.precision.apply(x) - torch.tanh(x)

    def advance(self, n_steps: int) -> Observables:
        result = hmc_physical(self.target.log_prob, self.x, step_size=self.step_size,
                              n_leapfrog=self.n_leapfrog, n_steps=n_steps, grad_fn=self.grad)
        self.x, self.acceptance = result.samples[-1], result.acceptance
        return relaxed_observables(self.target, result.samples)
