"""The hybrid kernel (flow-proposal Metropolis + local HMC moves) leaves its target invariant:
a Gaussian with a mismatched Gaussian proposal, and the 4x4 relaxed Ising model against
enumeration. Tolerances are 4 error bars (Gamma method)."""

import math

import pytest
import torch

from neuralrg.exact import T_CRITICAL_2D, enumerate_ising
from neuralrg.mcmc import LocalMoves, chain_estimate, hybrid_metropolis
from neuralrg.measure.observables import chain_moments
from neuralrg.targets.ising import RelaxedIsing

PULL = 4.0


def gaussian(mean: float, width: float, shape: tuple[int, ...], seed: int):
    """(propose_and_score, initial state) of N(mean, width^2) per coordinate."""
    generator = torch.Generator().manual_seed(seed)
    dim = math.prod(shape)

    def log_q(x):
        flat = x.reshape(len(x), -1)
        return -((flat - mean) ** 2).sum(1) / (2 * width**2) - dim * math.log(
            width * math.sqrt(2 * math.pi))

    def propose(n):
        x = mean + width * torch.randn(n, *shape, generator=generator, dtype=torch.float64)
        return x, log_q(x)

    def propose_and_score(n, x):
        return (*propose(n), log_q(x))

    return propose_and_score, propose


def test_gaussian_target_is_left_invariant():
    mu, s = 1.0, 0.5
    step, propose = gaussian(0.0, 1.5, (2,), seed=1)
    result = hybrid_metropolis(step, lambda x: -((x - mu) ** 2).sum(1) / (2 * s**2),
                               propose(32), 2000, n_therm=100,
                               local=LocalMoves(2, 0.3, 5),
                               generator=torch.Generator().manual_seed(2))
    x = result.samples.numpy()  # (steps, chains, 2)
    for coordinate in range(2):
        values = x[:, :, coordinate]
        mean = chain_estimate(values[None], lambda m: m[0])
        var = chain_estimate(torch.tensor(values).pow(torch.arange(1, 3)[:, None, None]).numpy(),
                             lambda m: m[1] - m[0] ** 2)
        assert abs(mean.value - mu) < PULL * mean.err
        assert abs(var.value - s**2) < PULL * var.err
    assert 0 < result.acceptance < 1 and 0.5 < result.local_acceptance <= 1
    assert result.n_grad_evals == (100 + 2000) * (1 + 2 * 5)


@pytest.mark.slow
def test_relaxed_ising_4x4_matches_enumeration():
    target = RelaxedIsing(4, T_CRITICAL_2D)
    step, propose = gaussian(0.0, 2.0, (4, 4), seed=3)
    generator = torch.Generator().manual_seed(4)
    result = hybrid_metropolis(step, target.log_prob, propose(64), 600, n_therm=100,
                               grad_fn=lambda x: -target.grad_log_prob(x),
                               generator=generator)
    moments = chain_moments(target, result.samples, generator)
    exact = enumerate_ising(4, T_CRITICAL_2D)
    expected = {"energy_per_site": exact.energy_per_site, "m2": exact.m2,
                "abs_m": exact.m_abs, "heat_capacity_per_site": exact.heat_capacity_per_site,
                "binder": exact.binder}
    for name, combine in target.observables.items():
        estimate = chain_estimate(moments, combine)
        assert abs(estimate.value - expected[name]) < PULL * estimate.err, (name, estimate)
        assert estimate.rhat < 1.05


@pytest.mark.parametrize("kwargs, match", [
    ({"moves": 0}, "local_moves=0 must be an integer >= 1"),
    ({"moves": True}, "local_moves=True must be an integer >= 1"),
    ({"step_size": 0.0}, "local_step_size=0.0 must be a finite number > 0"),
    ({"step_size": math.nan}, "local_step_size=nan"),
    ({"n_leapfrog": 0}, "local_leapfrog=0 must be an integer >= 1"),
])
def test_bad_local_moves_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LocalMoves(**kwargs)


def test_bad_run_lengths_raise():
    step, propose = gaussian(0.0, 1.0, (1,), seed=0)
    with pytest.raises(ValueError, match="n_therm=-1 must be an integer >= 0"):
        hybrid_metropolis(step, lambda x: -x[:, 0] ** 2, propose(4), 5, n_therm=-1)
