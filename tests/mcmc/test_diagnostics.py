"""Split R-hat, bulk ESS and the Gamma-method chain estimate: against ArviZ (arviz-stats) on
the same draws, on AR(1) chains with a known tau_int, and on chains stuck in two modes."""

import math

import numpy as np
import pytest
from arviz_stats.base import array_stats

from neuralrg.estimators import judge_chain
from neuralrg.mcmc import (
    bulk_ess,
    chain_estimate,
    effective_sample_size,
    hmc,
    split_rhat,
)


def ar1(phi: float, n_steps: int, n_chains: int, seed: int) -> np.ndarray:
    """Stationary AR(1) chains x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t, unit variance;
    Sokal's tau_int = (1 + phi) / (2 (1 - phi))."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n_steps, n_chains))
    x = np.empty_like(noise)
    x[0] = noise[0]
    for t in range(1, n_steps):
        x[t] = phi * x[t - 1] + math.sqrt(1 - phi**2) * noise[t]
    return x


def tau_ar1(phi: float) -> float:
    return (1 + phi) / (2 * (1 - phi))


@pytest.mark.parametrize("shape, phi", [((5, 2), 0.0), ((7, 4), 0.5), ((50, 8), 0.9),
                                        ((1001, 16), 0.3), ((3000, 3), -0.5), ((400, 1), 0.7)])
def test_rhat_and_ess_agree_with_arviz(shape, phi):
    draws = ar1(phi, *shape, seed=sum(shape))
    theirs = draws.T  # ArviZ: (chain, draw)
    if shape[1] > 1:
        expected = array_stats.rhat(theirs, chain_axis=0, draw_axis=1, method="rank")
        assert split_rhat(draws) == pytest.approx(expected, rel=1e-10)
    expected = array_stats.ess(theirs, chain_axis=0, draw_axis=1, method="bulk")
    assert bulk_ess(draws) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8])
def test_ess_of_ar1_chains_is_n_over_two_tau(phi):
    draws = ar1(phi, 20000, 4, seed=int(10 * phi))
    expected = draws.size / (2 * tau_ar1(phi))
    assert effective_sample_size(draws) == pytest.approx(expected, rel=0.1)
    assert bulk_ess(draws) == pytest.approx(expected, rel=0.1)
    assert split_rhat(draws) < 1.01


def test_chains_stuck_in_two_modes_have_a_large_rhat():
    draws = ar1(0.5, 2000, 4, seed=1) + np.array([-3.0, -3.0, 3.0, 3.0])
    assert split_rhat(draws) > 1.5
    verdict = judge_chain(2000, 0.1, True, split_rhat(draws), bulk_ess(draws))
    assert not verdict.reliable and "R-hat" in verdict.reason


def test_gamma_method_error_matches_the_known_tau():
    phi = 0.8
    estimate = chain_estimate(ar1(phi, 20000, 8, seed=3)[None], lambda mu: mu[0])
    expected = math.sqrt(2 * tau_ar1(phi) / (20000 * 8))
    assert estimate.err == pytest.approx(expected, rel=0.1)
    assert estimate.tau_int == pytest.approx(tau_ar1(phi), rel=0.1)
    assert abs(estimate.value) < 4 * estimate.err and estimate.window_converged


def test_gamma_method_error_bars_cover_the_truth():
    """Many short independent runs: the pulls of the mean have unit spread (within 20%)."""
    phi, pulls = 0.6, []
    for seed in range(200):
        estimate = chain_estimate(ar1(phi, 200, 16, seed=100 + seed)[None], lambda mu: mu[0])
        pulls.append(estimate.value / estimate.err)
    assert np.std(pulls) == pytest.approx(1.0, abs=0.2)
    assert abs(np.mean(pulls)) < 4 / math.sqrt(len(pulls))


def test_nonlinear_observable_gets_its_error_from_the_influence_series():
    """var(x) of unit-variance AR(1) chains: the delta-method error against the spread over
    independent runs."""
    values, errors = [], []
    for seed in range(60):
        x = ar1(0.5, 500, 8, seed=300 + seed)
        estimate = chain_estimate(np.stack([x, x**2]), lambda mu: mu[1] - mu[0] ** 2)
        values.append(estimate.value)
        errors.append(estimate.err)
    assert np.std(values) == pytest.approx(np.mean(errors), rel=0.25)
    assert abs(np.mean(values) - 1.0) < 4 * np.mean(errors) / math.sqrt(len(values))


def test_one_step_chains_say_too_short_instead_of_crashing():
    estimate = chain_estimate(np.random.default_rng(0).normal(size=(1, 1, 64)), lambda m: m[0])
    assert math.isnan(estimate.rhat) and math.isnan(estimate.ess_bulk)
    assert math.isfinite(estimate.value) and estimate.err > 0
    verdict = judge_chain(estimate.n_steps, estimate.err, estimate.window_converged,
                          estimate.rhat, estimate.ess_bulk)
    assert not verdict.reliable and "too short" in verdict.reason


def test_chains_started_far_out_of_equilibrium_are_flagged():
    """HMC on N(0, 1) from q = 20 with short trajectories: after 40 steps the chains are
    still on their way in, and the verdict says so."""
    import torch

    start = torch.full((16, 1), 20.0, dtype=torch.float64) + torch.randn(16, 1).double()
    result = hmc(lambda q: 0.5 * q.pow(2).sum(1), start, step_size=0.05, n_leapfrog=3,
                 n_steps=40, generator=torch.Generator().manual_seed(0))
    draws = result.samples[:, :, 0].numpy()
    estimate = chain_estimate(draws[None], lambda mu: mu[0])
    verdict = judge_chain(estimate.n_steps, estimate.err, estimate.window_converged,
                          estimate.rhat, estimate.ess_bulk)
    assert abs(estimate.value) > 4 * estimate.err  # badly biased ...
    assert not verdict.reliable  # ... and flagged
