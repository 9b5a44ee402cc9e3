"""Integrated autocorrelation time against AR(1), tau_int = (1 + phi) / (2 (1 - phi))."""

import math

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from neuralrg.mcmc import autocorrelation, integrated_autocorr_time, mean_with_autocorr_error


def ar1(n_steps: int, n_chains: int, phi: float, seed: int) -> np.ndarray:
    """Stationary unit-variance AR(1) chains, shape (n_steps, n_chains)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n_steps, n_chains)) * math.sqrt(1 - phi**2)
    noise[0] = rng.normal(size=n_chains)
    return lfilter([1.0], [1.0, -phi], noise, axis=0, zi=np.zeros((1, n_chains)))[0]


def ar1_tau(phi: float) -> float:
    return (1 + phi) / (2 * (1 - phi))


@pytest.mark.parametrize("phi", [0.5, 0.8, 0.95])
def test_tau_of_ar1_chains_within_ten_percent(phi):
    # Sokal: relative error of tau ~ sqrt(2 (2W + 1) / N), about 3-5% here.
    series = ar1(20000, 8, phi, seed=0)
    tau, window = integrated_autocorr_time(series, return_window=True)
    assert tau == pytest.approx(ar1_tau(phi), rel=0.1)
    rho = autocorrelation(series)
    taus = 0.5 + np.cumsum(rho[1:])  # taus[W - 1] = tau(W)
    taus_abs = 0.5 + np.cumsum(np.abs(rho[1:]))
    assert tau == pytest.approx(taus[window - 1], rel=1e-12)
    assert window >= 5.0 * taus_abs[window - 1] and window - 1 < 5.0 * taus_abs[window - 2]


@pytest.mark.parametrize("phi, rel", [(-0.5, 0.1), (-0.8, 0.15)])
def test_tau_of_anticorrelated_ar1(phi, rel):
    # tau < 1/2; the window must still cover the oscillating tail of rho. The residual
    # tail (-phi)^(W+1) / (1 - phi) is a few percent of the small tau at phi = -0.8.
    series = ar1(20000, 32, phi, seed=6)
    tau, window = integrated_autocorr_time(series, return_window=True)
    assert tau == pytest.approx(ar1_tau(phi), rel=rel)
    assert window >= 5.0 * (1 + abs(phi)) / (2 * (1 - abs(phi))) * 0.8


def test_tau_of_single_chain_and_tensor_input():
    series = ar1(100000, 1, 0.8, seed=1)[:, 0]
    assert integrated_autocorr_time(series) == pytest.approx(ar1_tau(0.8), rel=0.1)
    assert integrated_autocorr_time(torch.from_numpy(series)) == pytest.approx(
        integrated_autocorr_time(series), rel=1e-12
    )


def test_white_noise_has_tau_one_half():
    series = np.random.default_rng(2).normal(size=(10000, 4))
    assert integrated_autocorr_time(series) == pytest.approx(0.5, abs=0.05)


def test_autocorrelation_matches_direct_sum():
    series = ar1(300, 3, 0.6, seed=3)
    deviations = series - series.mean()
    direct = np.array([(deviations[: 300 - t] * deviations[t:]).sum(0).mean() for t in range(300)])
    np.testing.assert_allclose(autocorrelation(series), direct / direct[0], atol=1e-12)


def test_mean_error_of_ar1_matches_analytic():
    phi = 0.8
    series = ar1(2**14, 16, phi, seed=4)
    mean, err = mean_with_autocorr_error(series)
    expected = math.sqrt(2 * ar1_tau(phi) / series.size)
    assert err == pytest.approx(expected, rel=0.1)
    assert abs(mean) < 4 * err


def test_constant_series_gives_nan_tau_and_zero_error():
    tau, window = integrated_autocorr_time(np.ones((50, 2)), return_window=True)
    assert math.isnan(tau) and window == 0
    assert mean_with_autocorr_error(np.ones((50, 2))).err == 0.0


def test_chains_stuck_apart_have_no_window_and_large_tau():
    # Deviations from the global mean never decorrelate: rho(t) = 1 - t / n.
    series = np.stack([np.ones(20), -np.ones(20)], axis=1)
    tau, window = integrated_autocorr_time(series, return_window=True)
    assert window == 19
    assert tau == pytest.approx(0.5 + sum(1 - t / 20 for t in range(1, 20)), rel=1e-12)


@pytest.mark.parametrize("c", [0.0, -1.0, math.nan, math.inf])
def test_bad_window_constant_raises(c):
    with pytest.raises(ValueError, match=r"c=\S+ must be a finite number > 0"):
        integrated_autocorr_time(np.zeros(10), c=c)


def test_bad_series_raises():
    with pytest.raises(ValueError, match="n_steps"):
        integrated_autocorr_time(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        integrated_autocorr_time(np.array([0.0, math.inf, 1.0]))
