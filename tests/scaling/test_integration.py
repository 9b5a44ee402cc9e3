"""The free energy integrated from the measured energy between neighbouring temperatures,
checked on Kaufman's exact energies, heat capacities and free energies."""

import math

import numpy as np
import pytest

from neuralrg.exact import exact_ising
from neuralrg.scaling import (
    NeighbourEstimate,
    ThermoPoint,
    disagreement,
    energy_step,
    integrated_free_energies,
)


def exact_points(L, temperatures, err=0.0):
    results = [exact_ising(L, float(T)) for T in temperatures]
    points = [ThermoPoint(float(T), r.energy_per_site, err, r.heat_capacity_per_site, err)
              for T, r in zip(temperatures, results, strict=True)]
    return points, results


@pytest.mark.parametrize("L, grid, largest", [(8, np.linspace(2.1, 2.5, 9), 1e-7),
                                              (16, np.linspace(2.1, 2.5, 9), 1e-6),
                                              (32, np.linspace(2.0, 2.6, 13), 1e-5),
                                              (4, np.linspace(1.5, 3.5, 9), 1e-4)])
def test_each_step_is_within_its_quadrature_error_of_the_exact_difference(L, grid, largest):
    points, results = exact_points(L, grid)
    for k in range(len(points) - 1):
        step = energy_step(points, k)
        exact = (results[k + 1].ln_z - results[k].ln_z) / L**2
        assert abs(step.delta - exact) <= step.quad_err
        assert step.quad_err < largest and step.stat_err == 0


def test_the_corrected_trapezoid_converges_as_h_to_the_fifth():
    errors = []
    for h in (0.04, 0.02, 0.01):
        points, results = exact_points(8, [2.3, 2.3 + h])
        step = energy_step(points, 0)
        errors.append(abs(step.delta - (results[1].ln_z - results[0].ln_z) / 64))
    assert errors[0] / errors[1] > 25 and errors[1] / errors[2] > 25  # 2^5 = 32


def test_two_points_get_the_whole_end_correction_as_quadrature_error():
    points, results = exact_points(8, [2.2, 2.3])
    step = energy_step(points, 0)
    assert abs(step.delta - (results[1].ln_z - results[0].ln_z) / 64) < step.quad_err
    assert step.quad_err > 1e-5  # generous: the plain trapezoid's error


def test_statistical_errors_follow_the_error_bars_of_e_and_c():
    points, _ = exact_points(8, [2.2, 2.3], err=0.01)
    h = 1 / 2.3 - 1 / 2.2
    expected = math.sqrt((h / 2) ** 2 * 2e-4 + (h**2 / 12) ** 2 * 1e-4 * (2.2**4 + 2.3**4))
    assert energy_step(points, 0).stat_err == pytest.approx(expected)


def test_neighbour_estimates_agree_with_exact_free_energies_and_flag_an_outlier():
    grid = np.linspace(2.1, 2.5, 9)
    points, results = exact_points(16, grid, err=1e-4)
    f = [r.free_energy_per_site for r in results]
    f_err = [1e-4] * len(f)
    f[4] += 0.01  # one wrong free energy, 100 error bars off
    estimates = integrated_free_energies(points, f, f_err)
    assert [len(e) for e in estimates] == [1] + [2] * 7 + [1]
    for k, found in enumerate(estimates):
        for estimate in found:
            assert estimate.from_T in (grid[k - 1] if k else None, grid[k + 1] if k < 8 else None)
            neighbour = list(grid).index(estimate.from_T)
            if neighbour != 4:  # integrated from a correct free energy: the exact value
                assert abs(estimate.value - results[k].free_energy_per_site) < 3 * estimate.err
    flagged = [k for k, found in enumerate(estimates) if disagreement(found)]
    assert flagged == [4]


def test_a_neighbour_without_a_usable_free_energy_gives_no_estimate():
    points, results = exact_points(8, [2.2, 2.3, 2.4])
    f = [r.free_energy_per_site for r in results]
    estimates = integrated_free_energies(points, f, [1e-4, math.nan, 1e-4])
    assert [len(e) for e in estimates] == [0, 2, 0]
    assert all(e.pull is None for e in estimates[1])  # its own f is unusable: no pull
    assert disagreement(estimates[1]) is None


def test_an_end_point_that_disagrees_with_its_only_neighbour_is_flagged():
    far = NeighbourEstimate(-2.0, 0.001, 2.1, 0.0, 0.0, pull=4.0)
    near = NeighbourEstimate(-2.0, 0.001, 2.3, 0.0, 0.0, pull=0.5)
    assert "T=2.1 by 4.0 sigma" in disagreement([far])
    assert disagreement([far, near]) is None and disagreement([]) is None
