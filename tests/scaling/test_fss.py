"""Binder crossings and heat-capacity peaks on synthetic curves with known answers: the
estimate within its error bar, error bars that cover, the unresolvable cases flagged."""

import numpy as np
import pytest

from neuralrg.scaling import Curve, binder_crossing, collapse, peak

GRID = np.linspace(2.1, 2.5, 9)
CROSSING = 2.2731


def binder_like(L, x, noise, rng):
    """Curves of two sizes that cross exactly at CROSSING (a tanh, steeper for larger L)."""
    y = 0.62 - 0.25 * np.tanh((x - CROSSING) * L / 8) + 0.03 * (x - CROSSING) ** 2
    return Curve.of(L, x, y + noise * rng.standard_normal(len(x)), np.full(len(x), noise))


def test_the_crossing_of_exact_curves_is_found_to_high_precision():
    rng = np.random.default_rng(0)
    found = binder_crossing(binder_like(8, GRID, 1e-9, rng), binder_like(16, GRID, 1e-9, rng),
                            resamples=50)
    assert found.reliable and found.position == pytest.approx(CROSSING, abs=2e-3)


def test_crossing_error_bars_cover_the_true_crossing():
    rng, inside, errors = np.random.default_rng(1), 0, []
    for seed in range(40):
        a, b = binder_like(8, GRID, 0.002, rng), binder_like(16, GRID, 0.002, rng)
        found = binder_crossing(a, b, resamples=200, seed=seed)
        assert found.reliable, found.reason
        errors.append(found.position_err)
        inside += abs(found.position - CROSSING) < 2 * found.position_err
    assert inside >= 34  # 95% expected; at least 85% of 40
    assert 0.002 < np.median(errors) < 0.02


def test_curves_that_do_not_cross_or_cannot_be_told_apart_are_flagged():
    rng = np.random.default_rng(2)
    a = Curve.of(8, GRID, 0.6 - 0.1 * (GRID - 2.1), np.full(9, 1e-3))
    b = Curve.of(16, GRID, 0.5 - 0.1 * (GRID - 2.1), np.full(9, 1e-3))
    assert not binder_crossing(a, b, resamples=50).reliable
    assert "do not cross" in binder_crossing(a, b, resamples=50).reason
    blurred = binder_crossing(binder_like(8, GRID, 0.5, rng), binder_like(16, GRID, 0.5, rng),
                              resamples=200)
    assert not blurred.reliable and "resamples" in blurred.reason


def test_a_peak_is_located_with_its_height_and_an_edge_maximum_is_flagged():
    rng = np.random.default_rng(3)
    y = 1.2 - 8 * (GRID - 2.34) ** 2
    found = peak(Curve.of(8, GRID, y + 0.005 * rng.standard_normal(9), np.full(9, 0.005)), 300)
    assert found.reliable
    assert abs(found.position - 2.34) < 3 * found.position_err and found.position_err < 0.02
    assert abs(found.height - 1.2) < 3 * found.height_err
    edge = peak(Curve.of(8, GRID, -GRID, np.full(9, 0.01)), 50)
    assert not edge.reliable and "edge" in edge.reason


def test_collapse_coordinates_use_the_exponents():
    curve = Curve.of(16, [2.0, 2.5], [0.5, 0.1], [0.01, 0.01])
    x, y, err = collapse(curve, "m2", 2.25)
    assert x == pytest.approx([(2.0 - 2.25) / 2.25 * 16, (2.5 - 2.25) / 2.25 * 16])
    assert y == pytest.approx([0.5 * 16**0.25, 0.1 * 16**0.25])
    assert err == pytest.approx([0.01 * 2, 0.01 * 2])
    with pytest.raises(ValueError, match="quantity='e' has no collapse"):
        collapse(curve, "e", 2.25)
