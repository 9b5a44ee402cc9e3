"""Annealed SMC from a flow: ln Z against closed forms, quadrature and enumeration, the error
bar's calibration over repeats, and the verdict on the cases where repeats agree and are
wrong."""

import math

import numpy as np
import pytest
import torch

from neuralrg.estimators import verdict_entry
from neuralrg.exact import T_CRITICAL_2D
from neuralrg.flows.flow import FlowConfig, build_flow
from neuralrg.flows.symmetry import Z2SymmetricFlow
from neuralrg.mcmc.smc import SMCConfig, next_beta, smc, smc_repeats, systematic_resample
from neuralrg.measure.free_energy import reverse_ln_z, smc_entry
from neuralrg.targets import RelaxedIsing, ToyDensity
from neuralrg.training import TrainConfig, Trainer


class Gaussian:
    """q = N(mean, width^2 I) in ``dim`` dimensions, float64."""

    def __init__(self, dim: int, width: float = 1.0, mean: float = 0.0):
        self.dim, self.width, self.mean = dim, width, mean

    def sample(self, n, generator=None):
        x = self.mean + self.width * torch.randn(n, self.dim, generator=generator,
                                                 dtype=torch.float64)
        return x, self.log_prob(x)

    def log_prob(self, x):
        return (-((x - self.mean) ** 2).sum(1) / (2 * self.width**2)
                - self.dim * math.log(self.width * math.sqrt(2 * math.pi)))


def standard_normal(x):  # ln Z = (dim / 2) ln 2 pi
    return -(x**2).sum(1) / 2


def test_error_bar_is_calibrated_over_40_repeats():
    dim, generator = 8, torch.Generator().manual_seed(0)
    exact = dim / 2 * math.log(2 * math.pi)
    config = SMCConfig(particles=128, step_size=0.3)
    entries = [smc_entry(smc_repeats(Gaussian(dim, 0.8), standard_normal, config, 4,
                                     generator)) for _ in range(40)]
    values = np.array([fields["value"] for fields, _ in entries])
    errors = np.array([fields["err"] for fields, _ in entries])
    ratio = values.std(ddof=1) / errors.mean()
    assert 0.7 < ratio < 1.4, ratio
    assert abs(values.mean() - exact) < 4 * values.std(ddof=1) / math.sqrt(len(values))
    assert sum(verdict.reliable for _, verdict in entries) >= 36


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mog2", "ring2d", "wave"])
def test_toy_densities_from_an_untrained_flow_match_quadrature(name):
    torch.manual_seed(0)
    flow = build_flow(FlowConfig(L=2, d=1, hidden_s=8, hidden_t=8)).double()
    target = ToyDensity(name)
    runs = smc_repeats(flow, target.log_prob, SMCConfig(particles=128, step_size=0.2), 4,
                       torch.Generator().manual_seed(1))
    fields, verdict = smc_entry(runs)
    exact = target.quadrature_ln_z()
    assert verdict.reliable, verdict
    assert abs(fields["value"] - exact) < 4 * fields["err"], (fields["value"], exact)


@pytest.mark.slow
@pytest.mark.parametrize("L,T,d", [(4, T_CRITICAL_2D, 2), (8, 1.0, 1)], ids=["4x4-Tc", "ring8"])
def test_ising_from_a_briefly_trained_flow_matches_the_exact_ln_z(L, T, d):
    """200 training steps, then SMC: reliable and within 4 error bars. (From an untrained
    flow the estimate is right too, but the AIS path weights are too heavy-tailed to call it
    reliable.)"""
    torch.manual_seed(0)
    flow = build_flow(FlowConfig(L=L, d=d, hidden_s=8, hidden_t=8, n_layers=2)).double()
    target = RelaxedIsing(L, T, d)
    trainer = Trainer(flow, target.log_prob, TrainConfig(steps=200, batch_size=64),
                      z2_symmetric=True)
    for _ in range(200):
        trainer.train_step()
    runs = smc_repeats(Z2SymmetricFlow(flow), target.log_prob,
                       SMCConfig(particles=128, step_size=0.1), 4, torch.Generator().manual_seed(2))
    fields, verdict = smc_entry(runs)
    assert verdict.reliable, verdict
    assert abs(fields["value"] - target.exact_ln_z()) < 4 * fields["err"], fields


def test_tight_and_wrong_is_caught_by_the_chains():
    """A flow that covers one of two modes: every SMC run misses the other mode's half of Z
    by the same amount, repeats and ladders agree, and the weights are tame; the reverse
    estimate from equilibrium samples disagrees, and the verdict flags both."""
    dim, generator = 4, torch.Generator().manual_seed(3)
    centre = torch.zeros(dim, dtype=torch.float64)
    centre[0] = 8.0

    def mixture(x):  # two unit Gaussians at +-centre, ln Z = (dim / 2) ln 2 pi
        return torch.logaddexp(-((x - centre) ** 2).sum(1) / 2,
                               -((x + centre) ** 2).sum(1) / 2) - math.log(2)

    flow = Gaussian(dim, 0.9, 0.0)
    flow.mean = centre
    runs = smc_repeats(flow, mixture, SMCConfig(particles=256, step_size=0.3), 4, generator)
    fields, own = smc_entry(runs)
    exact = dim / 2 * math.log(2 * math.pi)
    assert own.reliable and fields["value"] < exact - 0.6  # tight, wrong by about ln 2
    signs = torch.where(torch.rand(400, 16, generator=generator) < 0.5, -1.0, 1.0)
    states = signs[..., None] * centre + torch.randn(400, 16, dim, generator=generator,
                                                     dtype=torch.float64)
    flat = states.reshape(-1, dim)
    chain_log_w = (mixture(flat) - flow.log_prob(flat)).reshape(400, 16).numpy()
    entry = verdict_entry({"smc": (fields, own), "markov_chain": reverse_ln_z(chain_log_w)},
                          exact)
    assert not entry["estimates"]["smc"]["reliable"]
    assert "disagree" in entry["estimates"]["smc"]["reason"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_particles_that_never_move_are_flagged(seed):
    """Without moves, SMC from a too narrow q is importance sampling with extra steps: every
    run is low (here by 2 to 8 error bars), but the AIS path weights show the heavy tail."""
    config = SMCConfig(particles=512, flow_moves=0, hmc_moves=0)
    runs = smc_repeats(Gaussian(12, 0.4), standard_normal, config, 4,
                       torch.Generator().manual_seed(seed))
    fields, verdict = smc_entry(runs)
    assert fields["pareto_k"] > 0.7 and not verdict.reliable
    assert "Pareto k" in verdict.reason


def test_ladder_and_resampling_pieces():
    w = torch.linspace(-3, 3, 100, dtype=torch.float64)
    beta = next_beta(0.0, torch.zeros(100, dtype=torch.float64), w, 0.9)
    inc = beta * w
    cess = float(torch.logsumexp(inc, 0).mul(2).sub(torch.logsumexp(2 * inc, 0)).exp()) / 100
    assert 0 < beta < 1 and cess == pytest.approx(0.9, abs=1e-6)
    assert next_beta(0.5, torch.zeros(100, dtype=torch.float64), 0 * w, 0.9) == 1.0
    index = systematic_resample(torch.log(torch.tensor([0.0, 1.0, 0.0, 3.0])),
                                torch.Generator().manual_seed(0))
    assert sorted(index.tolist()) == [1, 3, 3, 3]


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="smc_particles=1"):
        SMCConfig(particles=1)
    with pytest.raises(ValueError, match="smc_ess_fraction=1"):
        SMCConfig(ess_fraction=1.0)
    with pytest.raises(ValueError, match="smc_max_rungs"):
        smc(Gaussian(2, 0.1), standard_normal, SMCConfig(max_rungs=1, ess_fraction=0.999))
