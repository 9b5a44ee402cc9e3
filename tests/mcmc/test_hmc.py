"""HMC in physical and latent space on Gaussian targets pi = N(MU, S^2) per site.

The latent flow is affine, x = A z + B with ln|det| = D ln A. Moments are checked within
4 error bars from the integrated autocorrelation time.
"""

import math

import pytest
import torch

from neuralrg.mcmc import hmc, hmc_latent, hmc_physical, mean_with_autocorr_error

MU, S = 1.0, 0.7
A, B = 0.5, 0.2
EVENT = (2, 3)
D = 6


def log_prob(x: torch.Tensor) -> torch.Tensor:
    return -((x - MU) ** 2).flatten(1).sum(1) / (2 * S**2)


def grad_potential(x: torch.Tensor) -> torch.Tensor:
    return (x - MU) / S**2


def affine(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return A * z + B, z.new_full((z.shape[0],), D * math.log(A))


def grad_latent_potential(z: torch.Tensor) -> torch.Tensor:
    return A * grad_potential(A * z + B)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_gaussian_moments(samples: torch.Tensor) -> None:
    first = samples[..., 0, 0]
    sq_dev = (samples[..., 1, 2] - MU) ** 2
    for observable, exact in [(first, MU), (sq_dev, S**2)]:
        estimate = mean_with_autocorr_error(observable)
        assert abs(estimate.value - exact) < 4 * estimate.err


# Trajectory lengths of about a quarter period (physical omega = 1/S, latent omega = A/S),
# away from the half-period resonance where successive states anticorrelate.
SETTINGS = {"n_steps": 300, "n_therm": 20}


def test_physical_hmc_reproduces_gaussian_moments():
    x0 = torch.zeros(32, *EVENT, dtype=torch.float64)
    result = hmc_physical(
        log_prob, x0, step_size=0.15, n_leapfrog=7, generator=generator(0), **SETTINGS
    )
    assert result.samples.shape == (300, 32, *EVENT)
    assert 0.7 < result.acceptance < 1.0 and result.n_nonfinite == 0
    assert_gaussian_moments(result.samples)
    torch.testing.assert_close(result.log_pi, -result.energies)
    assert result.latent is None


def test_latent_hmc_reproduces_gaussian_moments():
    z0 = torch.zeros(32, *EVENT, dtype=torch.float64)
    result = hmc_latent(
        affine, log_prob, z0, step_size=0.25, n_leapfrog=8, generator=generator(1), **SETTINGS
    )
    assert 0.7 < result.acceptance < 1.0
    torch.testing.assert_close(result.samples, A * result.latent + B)
    assert_gaussian_moments(result.samples)
    log_pi = log_prob(result.samples.flatten(0, 1)).view(300, 32)
    torch.testing.assert_close(result.log_pi, log_pi)
    torch.testing.assert_close(result.energies, -log_pi - D * math.log(A))


def test_latent_potential_of_exact_flow_is_half_z_squared():
    def exact_flow(z):
        return S * z + MU, z.new_full((z.shape[0],), D * math.log(S))

    z0 = torch.randn(4, *EVENT, dtype=torch.float64, generator=generator(2))
    result = hmc_latent(exact_flow, log_prob, z0, step_size=0.5, n_leapfrog=3, n_steps=5)
    half_z2 = 0.5 * result.latent.pow(2).flatten(2).sum(2)
    torch.testing.assert_close(result.energies, half_z2 - D * math.log(S))


@pytest.mark.parametrize("space", ["physical", "latent"])
def test_analytic_gradient_agrees_with_autograd(space):
    start = torch.randn(6, *EVENT, dtype=torch.float64, generator=generator(3))
    runs = []
    for grad_fn in (None, grad_potential if space == "physical" else grad_latent_potential):
        kwargs = {
            "step_size": 0.3,
            "n_leapfrog": 5,
            "n_steps": 10,
            "n_therm": 2,
            "n_skip": 1,
            "grad_fn": grad_fn,
            "generator": generator(4),
        }
        if space == "physical":
            runs.append(hmc_physical(log_prob, start, **kwargs))
        else:
            runs.append(hmc_latent(affine, log_prob, start, **kwargs))
    autograd, analytic = runs
    torch.testing.assert_close(analytic.samples, autograd.samples)
    torch.testing.assert_close(analytic.energies, autograd.energies)
    assert analytic.acceptance == autograd.acceptance
    assert analytic.n_grad_evals == autograd.n_grad_evals == 1 + 5 * (2 + 10 * 2)
    assert analytic.n_trajectories == 22


def test_small_steps_conserve_energy():
    x0 = torch.zeros(8, *EVENT, dtype=torch.float64)
    result = hmc_physical(log_prob, x0, step_size=0.01, n_leapfrog=10, n_steps=20)
    assert result.acceptance > 0.99


def test_float32_state_is_kept():
    result = hmc_physical(log_prob, torch.zeros(4, *EVENT), step_size=0.2, n_leapfrog=3, n_steps=4)
    assert result.samples.dtype == torch.float32 and result.energies.dtype == torch.float64


def test_nonfinite_energies_are_counted_rejections():
    def boxed(x):  # NaN outside the box |x - MU| < 0.8
        inside = ((x - MU).abs() < 0.8).flatten(1).all(1)
        return torch.where(inside, log_prob(x), torch.full_like(log_prob(x), math.nan))

    x0 = torch.full((16, *EVENT), MU, dtype=torch.float64)
    result = hmc_physical(
        boxed, x0, step_size=0.4, n_leapfrog=4, n_steps=50, generator=generator(5)
    )
    assert 0 < result.n_nonfinite < 16 * 50
    assert ((result.samples - MU).abs() < 0.8).all() and torch.isfinite(result.energies).all()
    assert result.acceptance <= 1 - result.n_nonfinite / (16 * 50)


def test_nonfinite_initial_state_raises():
    x0 = torch.zeros(3, *EVENT)
    x0[1, 0, 0] = math.nan
    with pytest.raises(ValueError, match="1 of 3 initial states"):
        hmc_physical(log_prob, x0, step_size=0.1, n_leapfrog=2, n_steps=2)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"step_size": 0.0}, "step_size=0.0 must be a finite number > 0"),
        ({"step_size": -0.1}, "step_size"),
        ({"step_size": math.nan}, "step_size"),
        ({"step_size": math.inf}, "step_size"),
        ({"step_size": True}, "step_size"),
        ({"n_leapfrog": 0}, "n_leapfrog=0 must be an integer >= 1"),
        ({"n_steps": 0}, "n_steps=0 must be an integer >= 1"),
        ({"n_steps": 3.0}, "n_steps=3.0 must be an integer >= 1"),
        ({"n_therm": -1}, "n_therm=-1 must be an integer >= 0"),
        ({"n_skip": -2}, "n_skip=-2 must be an integer >= 0"),
        ({"q0": torch.zeros(3)}, "n_chains >= 1"),
        ({"q0": torch.zeros(0, 2)}, "n_chains >= 1"),
        ({"q0": torch.zeros(3, 2, dtype=torch.int64)}, "floating-point"),
        ({"potential": lambda q: q.sum()}, "potential must return shape"),
        ({"grad_fn": lambda q: q[:, :1]}, "grad_fn must return shape"),
    ],
)
def test_bad_inputs_raise(change, match):
    kwargs = {
        "potential": lambda q: 0.5 * q.pow(2).sum(1),
        "q0": torch.zeros(3, 2),
        "step_size": 0.1,
        "n_leapfrog": 2,
        "n_steps": 2,
        **change,
    }
    with pytest.raises(ValueError, match=match):
        hmc(kwargs.pop("potential"), kwargs.pop("q0"), **kwargs)
