"""Swendsen-Wang updates and the relaxed model's exact move: detailed balance on tiny
lattices (every transition counted), the Ising marginal against enumeration, x | s against
its Gaussian law. Tolerances in units of the statistical error, seeded."""

import itertools
import math

import numpy as np
import pytest
import torch

from neuralrg.exact import T_CRITICAL_2D, enumerate_ising
from neuralrg.mcmc import chain_estimate
from neuralrg.targets import RelaxedIsing
from neuralrg.targets.clusters import cluster_labels, swendsen_wang
from neuralrg.targets.ising import ising_energy
from neuralrg.targets.lattice import PeriodicLattice


def _states(shape: tuple[int, ...]) -> torch.Tensor:
    n = math.prod(shape)
    values = list(itertools.product([-1.0, 1.0], repeat=n))
    return torch.tensor(values, dtype=torch.float64).reshape(-1, *shape)


@pytest.mark.parametrize("shape,coupling", [((3,), 0.7), ((2, 2), 0.4), ((2, 2), -0.5)],
                         ids=["ring3", "2x2", "2x2-antiferro"])
def test_detailed_balance(shape, coupling):
    """pi(s) P(s -> s') = pi(s') P(s' -> s) for every pair, P counted from 4000 updates of
    every state; each pair's difference within 4.5 of its standard errors."""
    states, copies = _states(shape), 4000
    n_states = len(states)
    generator = torch.Generator().manual_seed(1)
    start = states.repeat_interleave(copies, 0)
    moved = swendsen_wang(start, coupling, generator)
    index = {tuple(s.flatten().tolist()): k for k, s in enumerate(states)}
    counts = np.zeros((n_states, n_states))
    for k, s in enumerate(moved):
        counts[k // copies, index[tuple(s.flatten().tolist())]] += 1
    p = counts / copies
    weight = np.exp(-coupling * ising_energy(states).numpy())
    pi = weight / weight.sum()
    flow = pi[:, None] * p
    pooled = (flow + flow.T) / 2  # the common value under detailed balance
    p_null = pooled / pi[:, None]  # each direction's transition probability under it
    variance = pi[:, None] ** 2 * p_null * (1 - p_null) / copies
    err = np.sqrt(variance + variance.T)
    assert np.all(np.abs(flow - flow.T) <= 4.5 * err + 1e-15)
    assert np.allclose(p.sum(1), 1.0)


def test_strong_bonds_make_one_cluster_per_aligned_chain():
    spins = torch.ones(3, 4, 4)
    spins[1] = -1
    labels, n = cluster_labels(spins, coupling=40.0)
    assert n == 3 and len(set(labels[:16])) == 1 and len(set(labels[16:32])) == 1


def test_zero_coupling_flips_every_site_independently():
    generator = torch.Generator().manual_seed(0)
    new = swendsen_wang(torch.ones(2000, 6), 0.0, generator)
    assert abs(float(new.mean())) < 4 / math.sqrt(new.numel())


@pytest.mark.parametrize("L,d,T", [(4, 2, T_CRITICAL_2D), (4, 2, 1.8), (3, 2, 3.0), (5, 1, 1.0)],
                         ids=["4x4-Tc", "4x4-T1.8", "3x3-T3", "ring5-T1"])
def test_exact_moves_sample_the_ising_marginal(L, d, T):
    """Chains of exact moves of the relaxed model, spins drawn given x: energy and <m^2>
    against enumeration within 4 error bars (Gamma method over 32 chains)."""
    target, generator = RelaxedIsing(L, T, d), torch.Generator().manual_seed(3)
    x = target.sample_given_spins(torch.ones(32, *target.event_shape, dtype=torch.float64))
    for _ in range(50):
        x = target.exact_move(x, generator)
    series = []
    for _ in range(1500):
        x = target.exact_move(x, generator)
        series.append(target.observable_moments(x, generator))
    moments = torch.stack(series, 1).numpy()  # (5, steps, chains)
    exact = enumerate_ising(L, T, d)
    for k, value in ((0, exact.energy_per_site), (2, exact.m2)):
        estimate = chain_estimate(moments, lambda mu, k=k: mu[k])
        assert abs(estimate.value - value) < 4 * estimate.err, (k, estimate, value)


def test_x_given_spins_is_gaussian_with_mean_a_s_and_covariance_a():
    target = RelaxedIsing(3, 2.0, 2)
    n = target.n_sites
    a = PeriodicLattice(3, 2).adjacency_matrix() / 2.0 + target.diagonal_shift * torch.eye(n)
    spins = torch.tensor([1.0, -1, 1, 1, 1, -1, -1, 1, 1], dtype=torch.float64).reshape(1, 3, 3)
    generator = torch.Generator().manual_seed(5)
    x = target.sample_given_spins(spins.expand(40000, 3, 3).contiguous(), generator)
    flat = x.reshape(len(x), -1)
    mean_err = (torch.diag(a) / len(x)).sqrt()
    assert torch.all((flat.mean(0) - a @ spins.flatten()).abs() < 4.5 * mean_err)
    covariance = torch.cov(flat.T)
    cov_err = ((a**2 + torch.outer(torch.diag(a), torch.diag(a))) / len(x)).sqrt()
    assert torch.all((covariance - a).abs() < 4.5 * cov_err)


def test_exact_move_on_a_large_lattice_needs_no_dense_matrix():
    target = RelaxedIsing(64)
    assert not target.covariance.dense
    x = target.exact_move(torch.zeros(2, 64, 64), torch.Generator().manual_seed(0))
    assert torch.isfinite(x).all() and x.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_exact_moves_take_a_generator_on_the_configurations_device():
    """A flow on a GPU draws with a CUDA generator; the clusters are labelled on the CPU and
    the moved configurations stay on the GPU."""
    generator = torch.Generator(device="cuda").manual_seed(0)
    target = RelaxedIsing(4, T_CRITICAL_2D)
    x = target.exact_move(torch.zeros(8, 4, 4, device="cuda"), generator)
    assert x.device.type == "cuda" and x.shape == (8, 4, 4) and bool(x.isfinite().all())
    energies = target.ising_energy_series(0.4, chains=2, steps=3, therm=1, generator=generator)
    assert energies.shape == (3, 2)
