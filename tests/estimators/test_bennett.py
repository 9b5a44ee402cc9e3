"""Bennett's acceptance ratio against a known ln Z: calibration of the error bar over repeats,
its limits, chains of correlated samples, and the overlap gate."""

import math

import numpy as np
import pytest
import torch

from neuralrg.estimators import bennett_ln_z, expected_acceptance
from neuralrg.measure.free_energy import MIN_OVERLAP, bennett_entry

LN_Z = math.log(5.0)
DIM = 6


def log_weights(x: np.ndarray, shift: float, width: float) -> np.ndarray:
    """ln pi~ - ln q for q = N(0, I) and pi~ = 5 N(shift, width^2 I) in DIM dimensions."""
    log_pi = LN_Z - ((x - shift) ** 2).sum(1) / (2 * width**2) - DIM * math.log(width)
    return log_pi + (x**2).sum(1) / 2


def draws(rng, n_f: int, n_r: int, shift=0.4, width=1.2):
    forward = log_weights(rng.normal(size=(n_f, DIM)), shift, width)
    reverse = log_weights(rng.normal(shift, width, size=(n_r, DIM)), shift, width)
    return forward, reverse


def test_error_bar_is_calibrated_over_repeats():
    rng = np.random.default_rng(0)
    values, errors = [], []
    for _ in range(60):
        forward, reverse = draws(rng, 2000, 1000)
        result = bennett_ln_z(forward, reverse)
        values.append(result.value)
        errors.append(result.err_independent())
    ratio = np.std(values, ddof=1) / np.mean(errors)
    assert 0.7 < ratio < 1.4, ratio
    assert abs(np.mean(values) - LN_Z) < 4 * np.std(values) / math.sqrt(len(values))


def test_one_sided_limits():
    rng = np.random.default_rng(1)
    forward, reverse = draws(rng, 20000, 2)
    one_sided = math.log(np.exp(forward).mean())  # importance sampling of q's samples
    assert bennett_ln_z(forward, reverse).value == pytest.approx(one_sided, abs=0.02)
    forward, reverse = draws(rng, 2, 20000)
    reverse_is = -math.log(np.exp(-reverse).mean())
    assert bennett_ln_z(forward, reverse).value == pytest.approx(reverse_is, abs=0.02)


def test_chain_shaped_reverse_samples_get_the_gamma_method_error():
    """Reverse samples repeated 4 times in a row (a chain with tau_int = 2): the entry's
    error bar is about twice the one that treats them as independent."""
    rng = np.random.default_rng(2)
    forward, reverse = draws(rng, 200, 16000)
    chains = np.repeat(reverse.reshape(1000, 16), 4, axis=0)  # (4000 steps, 16 chains)
    fields, verdict = bennett_entry(torch.from_numpy(forward), chains)
    independent = bennett_ln_z(forward, chains).err_independent()
    assert 1.5 < fields["err"] / independent < 2.5, (fields["err"], independent)
    assert abs(fields["value"] - LN_Z) < 4 * fields["err"]


def test_poor_overlap_is_flagged():
    rng = np.random.default_rng(3)
    forward, reverse = draws(rng, 4000, 4000, shift=3.0, width=0.5)
    fields, verdict = bennett_entry(torch.from_numpy(forward), reverse.reshape(500, 8))
    assert min(fields["overlap_forward"], fields["overlap_reverse"]) < MIN_OVERLAP
    assert not verdict.reliable and "overlap" in verdict.reason


def test_non_finite_weights_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        bennett_ln_z(np.array([0.0, np.nan]), np.zeros(3))


def test_expected_acceptance_equals_the_pair_average():
    rng = np.random.default_rng(4)
    w_q, w_pi = rng.normal(size=70), rng.normal(0.5, 2.0, size=(20, 3))
    brute = np.minimum(1, np.exp(w_q[:, None] - w_pi.reshape(1, -1))).mean()
    assert expected_acceptance(w_q, w_pi) == pytest.approx(brute, rel=1e-12)
    assert expected_acceptance(np.zeros(0), w_pi) is None
