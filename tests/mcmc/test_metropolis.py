"""Independent Metropolis-Hastings on a Gaussian target with a mismatched Gaussian proposal.

Target pi = N(MU, S^2) per coordinate (unnormalised), proposal q = N(MU_Q, T^2): the chain
must reproduce the target's mean and variance within 4 error bars (tau_int and binning).
"""

import math

import pytest
import torch

from neuralrg.estimators import binning_error
from neuralrg.mcmc import independent_metropolis, mean_with_autocorr_error

MU, S = 1.0, 0.5
MU_Q, T = 0.5, 1.0
EVENT = (2,)


def log_prob(x: torch.Tensor) -> torch.Tensor:
    return -((x - MU) ** 2).sum(1) / (2 * S**2) + 3.0  # arbitrary normalisation


def gaussian_proposal(mean: float, width: float, seed: int):
    gen = torch.Generator().manual_seed(seed)

    def propose(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = mean + width * torch.randn(n, *EVENT, generator=gen, dtype=torch.float64)
        log_q = -((x - mean) ** 2).sum(1) / (2 * width**2) - math.log(2 * math.pi * width**2)
        return x, log_q

    return propose


def run(propose, n_chains=64, n_steps=400, seed=0, **kwargs):
    gen = torch.Generator().manual_seed(seed)
    return independent_metropolis(propose, log_prob, n_chains, n_steps, generator=gen, **kwargs)


def test_mismatched_proposal_reproduces_target_moments():
    result = run(gaussian_proposal(MU_Q, T, seed=1), n_therm=20)
    assert result.samples.shape == (400, 64, *EVENT)
    assert 0.2 < result.acceptance < 0.9
    first = result.samples[..., 0]
    sq_dev = (result.samples[..., 1] - MU) ** 2
    for observable, exact in [(first, MU), (sq_dev, S**2)]:
        for estimate in (mean_with_autocorr_error(observable), binning_error(observable)):
            assert abs(estimate.value - exact) < 4 * estimate.err
    torch.testing.assert_close(result.log_pi, log_prob(result.samples.flatten(0, 1)).view(400, 64))
    assert result.n_nonfinite == 0 and result.n_nonfinite_initial == 0


def test_exact_proposal_is_always_accepted():
    result = run(gaussian_proposal(MU, S, seed=2), n_chains=8, n_steps=50)
    assert result.acceptance == 1.0
    torch.testing.assert_close(result.acceptance_per_chain, torch.ones(8, dtype=torch.float64))
    assert torch.allclose(result.log_w, result.log_w[0, 0])


def test_nonfinite_proposals_are_counted_rejections():
    base = gaussian_proposal(MU_Q, T, seed=3)
    gen = torch.Generator().manual_seed(7)
    bad_per_call = []

    def flaky(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, log_q = base(n)
        x[torch.rand(n, generator=gen) < 0.2] = math.nan  # NaN ln pi
        log_q[torch.rand(n, generator=gen) < 0.1] = math.inf  # -inf log-weight
        bad_per_call.append(int((torch.isnan(x).any(1) | torch.isinf(log_q)).sum()))
        return x, log_q

    result = run(flaky, n_chains=30, n_steps=40, n_therm=5, n_skip=1)
    assert len(bad_per_call) == 1 + 5 + 40 * 2
    assert result.n_nonfinite_initial == bad_per_call[0] > 0
    assert result.n_nonfinite == sum(bad_per_call[1:]) > 0
    assert result.n_proposals == 30 * (5 + 40 * 2)
    assert torch.isfinite(result.samples).all() and torch.isfinite(result.log_w).all()


def test_initial_buffer_is_kept_when_every_proposal_fails():
    x0 = torch.randn(4, *EVENT, dtype=torch.float64)
    log_q0 = torch.zeros(4, dtype=torch.float64)

    def broken(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.full((n, *EVENT), math.nan, dtype=torch.float64), torch.zeros(n)

    result = run(broken, n_chains=4, n_steps=3, initial=(x0, log_q0), n_skip=2)
    assert result.acceptance == 0.0 and result.n_nonfinite == 4 * 9
    torch.testing.assert_close(result.samples, x0.expand(3, 4, *EVENT))
    torch.testing.assert_close(result.log_q, torch.zeros(3, 4, dtype=torch.float64))


def test_nonfinite_initial_state_moves_at_first_finite_proposal():
    x0 = torch.zeros(3, *EVENT, dtype=torch.float64)
    x0[1] = math.nan
    result = run(
        gaussian_proposal(MU_Q, T, seed=4), n_chains=3, n_steps=1, initial=(x0, torch.zeros(3))
    )
    assert result.n_nonfinite_initial == 1
    assert torch.isfinite(result.samples).all()


def test_proposal_calls_and_reproducibility():
    calls = []
    base = gaussian_proposal(MU_Q, T, seed=5)

    def counting(n: int):
        calls.append(n)
        return base(n)

    first = run(counting, n_chains=5, n_steps=5, n_therm=3, n_skip=2)
    assert calls == [5] * (1 + 3 + 5 * 3)
    again = run(gaussian_proposal(MU_Q, T, seed=5), n_chains=5, n_steps=5, n_therm=3, n_skip=2)
    torch.testing.assert_close(first.samples, again.samples)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_chains": 0}, "n_chains=0 must be an integer >= 1"),
        ({"n_steps": 0}, "n_steps=0 must be an integer >= 1"),
        ({"n_steps": 2.5}, "n_steps=2.5 must be an integer >= 1"),
        ({"n_therm": -1}, "n_therm=-1 must be an integer >= 0"),
        ({"n_skip": -1}, "n_skip=-1 must be an integer >= 0"),
        ({"initial": (torch.zeros(3, 2), torch.zeros(3))}, "initial must be"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    arguments = {"n_chains": 4, "n_steps": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        run(gaussian_proposal(MU_Q, T, seed=6), **arguments)


def test_bad_proposal_shape_raises():
    def wrong(n: int):
        return torch.zeros(n, 2), torch.zeros(n, 1)

    with pytest.raises(ValueError, match="propose"):
        run(wrong, n_chains=4, n_steps=2)
