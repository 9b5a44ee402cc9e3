"""Estimators of ln Z on Gaussian q vs Gaussian pi, where everything is analytic.

pi(x) = exp(-|x - mu|^2 / (2 s^2)) in d dimensions, so ln Z = (d/2) ln(2 pi s^2);
q = N(mu_q, t^2 I). Tolerances are in units of the reported error bar.
"""

import math

import numpy as np
import pytest
import torch

from neuralrg.estimators import (
    Estimate,
    binning_error,
    ess_per_sample,
    importance_ln_z,
    judge_importance,
    pareto_k,
    psis_log_weights,
    self_normalised,
    smooth_function,
    variational_bound,
)

D, S, MU = 3, 1.0, 0.5


def gaussian_log_w(n: int, t: float, mu_q: float, seed: int) -> torch.Tensor:
    """Log-weights ln pi - ln q for n samples x ~ N(mu_q, t^2 I_D)."""
    gen = torch.Generator().manual_seed(seed)
    x = mu_q + t * torch.randn(n, D, generator=gen, dtype=torch.float64)
    log_pi = -((x - MU) ** 2).sum(1) / (2 * S**2)
    log_q = -((x - mu_q) ** 2).sum(1) / (2 * t**2) - 0.5 * D * math.log(2 * math.pi * t**2)
    return log_pi - log_q


LN_Z = 0.5 * D * math.log(2 * math.pi * S**2)


def gaussian_kl(t: float, mu_q: float) -> float:
    """KL(N(mu_q, t^2) || N(MU, S^2)) in D dimensions."""
    return D * (math.log(S / t) + (t**2 + (mu_q - MU) ** 2) / (2 * S**2) - 0.5)


def test_importance_ln_z_within_four_error_bars():
    ln_z, err = importance_ln_z(gaussian_log_w(20000, 1.3, 0.3, seed=0))
    assert 0 < err < 0.05
    assert abs(ln_z - LN_Z) < 4 * err


def test_exact_proposal_gives_exact_ln_z_and_unit_ess():
    log_w = gaussian_log_w(1000, S, MU, seed=1)
    ln_z, err = importance_ln_z(log_w)
    assert ln_z == pytest.approx(LN_Z, abs=1e-12)
    assert err == pytest.approx(0.0, abs=1e-12)
    assert ess_per_sample(log_w) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("t", [0.5, 0.8, 1.3])
def test_pareto_k_matches_the_gaussian_tail_shape(t):
    """For q = N(mu, t^2) against pi = N(mu, S^2) the weights' tail has shape
    1 - t^2 / S^2 when t < S (PSIS paper, arXiv:1507.02646) and is bounded when t > S.
    Averaged over 8 seeds; tolerance 4 standard errors of that mean."""
    ks = np.array([pareto_k(gaussian_log_w(20000, t, MU, seed=s)) for s in range(8)])
    stderr = ks.std(ddof=1) / math.sqrt(len(ks))
    assert abs(ks.mean() - (1 - t**2 / S**2)) < 4 * stderr if t < S else ks.max() < 0


def test_pareto_k_needs_a_tail():
    with pytest.raises(ValueError, match="at least 25"):
        pareto_k(torch.zeros(20))


def test_variational_bound_equals_ln_z_minus_kl():
    t, mu_q = 1.3, 0.3
    mean, stderr = variational_bound(gaussian_log_w(20000, t, mu_q, seed=2))
    expected = LN_Z - gaussian_kl(t, mu_q)
    assert mean < LN_Z
    assert abs(mean - expected) < 4 * stderr


def test_ess_matches_analytic_for_different_widths():
    # For mu_q = MU: ESS/n -> 1 / E_q[(p/q)^2] = (S sqrt(2 t^2 - S^2) / t^2)^D.
    t = 1.5
    expected = (S * math.sqrt(2 * t**2 - S**2) / t**2) ** D
    assert ess_per_sample(gaussian_log_w(50000, t, MU, seed=3)) == pytest.approx(expected, rel=0.03)


def test_jackknife_error_matches_spread_over_seeds():
    estimates = [importance_ln_z(gaussian_log_w(2000, 1.3, 0.3, seed=100 + k)) for k in range(60)]
    spread = np.std([e.value for e in estimates], ddof=1)
    mean_err = np.mean([e.err for e in estimates])
    # The spread of 60 values is itself known to about 10%.
    assert 0.7 < mean_err / spread < 1.4


def test_importance_ln_z_is_stable_for_huge_log_weights():
    log_w = gaussian_log_w(5000, 1.3, 0.3, seed=4)
    shifted = importance_ln_z(log_w + 1e4)
    plain = importance_ln_z(log_w)
    assert shifted.value - 1e4 == pytest.approx(plain.value, abs=1e-8)
    assert shifted.err == pytest.approx(plain.err, rel=1e-6)


def test_one_dominant_weight_gives_finite_jackknife():
    log_w = torch.tensor([0.0, -50.0, -60.0, -70.0], dtype=torch.float64)
    ln_z, err = importance_ln_z(log_w)
    assert math.isfinite(ln_z) and math.isfinite(err) and err > 1.0


def test_negative_infinity_is_a_zero_weight():
    log_w = torch.tensor([0.0, 0.0, -math.inf, -math.inf])
    assert importance_ln_z(log_w).value == pytest.approx(math.log(0.5))
    assert ess_per_sample(log_w) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="2 -inf"):
        variational_bound(log_w)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("fn", [importance_ln_z, ess_per_sample, variational_bound])
def test_nan_and_positive_infinity_raise_with_count(fn, bad):
    log_w = torch.tensor([0.0, bad, 1.0, bad])
    with pytest.raises(ValueError, match="non-finite"):
        fn(log_w)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="1D"):
        importance_ln_z(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="at least 2"):
        variational_bound(torch.zeros(1))
    with pytest.raises(ValueError, match="all 2 log-weights are -inf"):
        ess_per_sample(torch.full((2,), -math.inf))


def test_estimate_unpacks_and_serialises():
    estimate = Estimate(1.0, 0.5)
    value, err = estimate
    assert (value, err) == (1.0, 0.5)
    assert estimate.to_dict() == {"value": 1.0, "err": 0.5}


def ar1(n_steps: int, n_chains: int, phi: float, seed: int) -> np.ndarray:
    """Stationary unit-variance AR(1) chains, shape (n_steps, n_chains)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n_steps, n_chains)) * math.sqrt(1 - phi**2)
    noise[0] = rng.normal(size=n_chains)
    return lfilter([1.0], [1.0, -phi], noise, axis=0, zi=np.zeros((1, n_chains)))[0]


def test_binning_error_of_ar1_mean_matches_analytic():
    phi, n_steps, n_chains = 0.8, 2**14, 16
    series = ar1(n_steps, n_chains, phi, seed=5)
    # var(mean) of unit-variance AR(1) ~ (1 + phi) / (1 - phi) / N = 2 tau / N.
    expected = math.sqrt((1 + phi) / (1 - phi) / series.size)
    mean, err = binning_error(series, block_size=256)
    assert err == pytest.approx(expected, rel=0.1)
    assert abs(mean) < 4 * expected
    assert binning_error(series).err == pytest.approx(expected, rel=0.3)
    naive = series.std() / math.sqrt(series.size)
    assert binning_error(series, block_size=1).err == pytest.approx(naive, rel=1e-3)


def test_binning_error_validates_input():
    with pytest.raises(ValueError, match="block_size"):
        binning_error(np.zeros(8), block_size=8)
    with pytest.raises(ValueError, match="non-finite"):
        binning_error(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="n_steps >= 2"):
        binning_error(np.zeros((1, 4)))


def test_self_normalised_estimates_of_gaussian_moments_are_within_four_error_bars():
    """pi = N(MU, S^2) per coordinate, q wider: E_pi[x_0] = MU and var = S^2."""
    gen = torch.Generator().manual_seed(11)
    x = MU + 1.5 * torch.randn(20000, D, generator=gen, dtype=torch.float64)
    log_pi = -((x - MU) ** 2).sum(1) / (2 * S**2)
    log_q = -((x - MU) ** 2).sum(1) / (2 * 1.5**2)
    moments = torch.stack([x[:, 0], x[:, 0] ** 2]).numpy()
    mean, mean_err = self_normalised(moments, log_pi - log_q, lambda mu: mu[0])
    var, var_err = self_normalised(moments, log_pi - log_q, lambda mu: mu[1] - mu[0] ** 2)
    assert abs(mean - MU) < 4 * mean_err and abs(var - S**2) < 4 * var_err
    assert 0 < mean_err < 0.05 and 0 < var_err < 0.05


def test_smooth_function_influence_is_the_delta_method_gradient():
    g = np.array([[1.0, 2.0, 6.0], [1.0, 4.0, 36.0]])
    value, psi = smooth_function(g, lambda mu: mu[1] - mu[0] ** 2)
    mean = g.mean(axis=1)
    assert value == pytest.approx(mean[1] - mean[0] ** 2)
    assert psi.tolist() == pytest.approx((g[1] - mean[1]) - 2 * mean[0] * (g[0] - mean[0]))


def test_psis_smooths_only_the_tail_and_never_raises_the_largest_weight():
    log_w = gaussian_log_w(5000, 0.7, 0.2, seed=4)  # too narrow a proposal: heavy tail
    smoothed = psis_log_weights(log_w)
    raw = log_w.numpy()
    tail = int(min(len(raw) / 5, 3 * math.sqrt(len(raw))))
    order = np.argsort(raw)
    assert np.array_equal(smoothed[order[:-tail]], raw[order[:-tail]])
    assert smoothed.max() <= raw.max() and np.all(np.diff(smoothed[order[-tail:]]) >= 0)


def test_heavy_tailed_importance_weights_are_flagged():
    log_w = gaussian_log_w(20000, 0.5, 0.0, seed=5)  # q much narrower than pi: k > 0.7
    k = pareto_k(log_w)
    verdict = judge_importance(k, ess_per_sample(log_w) * len(log_w), 0.1)
    assert k > 0.7 and not verdict.reliable and "Pareto k" in verdict.reason
    light = gaussian_log_w(20000, 1.5, 0.5, seed=5)
    assert judge_importance(pareto_k(light), 5000.0, 0.1).reliable
