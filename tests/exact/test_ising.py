"""Exact Ising references against brute force, the row transfer matrix and Onsager."""

import dataclasses
import doctest
import math

import numpy as np
import pytest

import neuralrg.exact.ising as ising_module
from neuralrg.exact import (
    T_CRITICAL_2D,
    enumerate_ising,
    exact_ising,
    ising_1d_energy_per_site,
    ising_1d_heat_capacity_per_site,
    ising_1d_ln_z,
    ising_2d_energy_per_site,
    ising_2d_heat_capacity_per_site,
    ising_2d_ln_z,
    ising_2d_transfer_ln_z,
)

CATALAN = 0.915965594177219015054603514932384110774
TC = T_CRITICAL_2D
FIELDS = ("ln_z", "energy_per_site", "heat_capacity_per_site")


def _assert_matches(exact, brute, rtol: float) -> None:
    for field in FIELDS:
        got, want = getattr(exact, field), getattr(brute, field)
        assert got == pytest.approx(want, rel=rtol, abs=0.0), field


def test_critical_temperature() -> None:
    assert TC == pytest.approx(2.269185314213022, rel=1e-15)
    assert math.sinh(2 / TC) == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("T", [0.7, 1.0, 1.5, TC, 2.0, 3.5, 5.0, 50.0], ids=lambda t: f"T{t:.3g}")
@pytest.mark.parametrize("L", [2, 3, 4], ids=lambda n: f"L{n}")
def test_kaufman_matches_enumeration(L: int, T: float) -> None:
    _assert_matches(exact_ising(L, T, d=2), enumerate_ising(L, T, d=2), rtol=1e-10)


@pytest.mark.parametrize("T", [0.2, 0.5, 1.0, 2.5, 10.0], ids=lambda t: f"T{t:g}")
@pytest.mark.parametrize("L", range(2, 13), ids=lambda n: f"L{n}")
def test_ring_matches_enumeration(L: int, T: float) -> None:
    _assert_matches(exact_ising(L, T, d=1), enumerate_ising(L, T, d=1), rtol=1e-12)


@pytest.mark.parametrize("T", [1.5, TC, 3.5], ids=["below", "at", "above"])
@pytest.mark.parametrize("L", [5, 6, 7], ids=lambda n: f"L{n}")
def test_kaufman_matches_row_transfer_matrix(L: int, T: float) -> None:
    assert ising_2d_ln_z(L, T) == pytest.approx(ising_2d_transfer_ln_z(L, T), rel=1e-12)
    h = 1e-4  # central difference in K of the transfer-matrix ln Z
    ln_z_plus = ising_2d_transfer_ln_z(L, 1 / (1 / T + h))
    ln_z_minus = ising_2d_transfer_ln_z(L, 1 / (1 / T - h))
    energy = -(ln_z_plus - ln_z_minus) / (2 * h) / L**2
    assert ising_2d_energy_per_site(L, T) == pytest.approx(energy, rel=1e-7)


def test_large_lattice_at_tc_approaches_onsager() -> None:
    result = exact_ising(256, TC)
    onsager = -TC * (math.log(2) / 2 + 2 * CATALAN / math.pi)
    assert result.free_energy_per_site == pytest.approx(onsager, abs=1e-4)
    assert result.energy_per_site == pytest.approx(-math.sqrt(2), abs=5e-3)
    assert 2.0 < result.heat_capacity_per_site < 4.0  # grows like (8 / pi) K_c^2 ln L


@pytest.mark.parametrize("L", [3, 16, 256], ids=lambda n: f"L{n}")
def test_smooth_through_critical_temperature(L: int) -> None:
    at = exact_ising(L, TC)
    for T in (TC * (1 - 1e-9), TC * (1 + 1e-9)):
        near = exact_ising(L, T)
        assert near.energy_per_site == pytest.approx(at.energy_per_site, rel=1e-7)
        assert near.heat_capacity_per_site == pytest.approx(at.heat_capacity_per_site, rel=1e-6)


@pytest.mark.parametrize("T", [0.01, 0.1, 1.0, 100.0, 1e4], ids=lambda t: f"T{t:g}")
@pytest.mark.parametrize("L", [2, 7, 256], ids=lambda n: f"L{n}")
def test_extreme_temperatures_stay_finite_and_bounded(L: int, T: float) -> None:
    result = exact_ising(L, T)
    n = L * L
    assert all(math.isfinite(getattr(result, f)) for f in FIELDS)
    # Z >= 2^N (Jensen over uniform spins) and Z >= 2 exp(2N/T) (two ground states).
    assert result.ln_z >= max(n * math.log(2), 2 * n / T + math.log(2)) * (1 - 1e-14)
    assert -2.0 <= result.energy_per_site <= 0.0


def test_long_ring_is_stable_and_approaches_infinite_chain() -> None:
    L, T = 10**6, 0.5
    assert ising_1d_ln_z(L, T) == pytest.approx(L * math.log(2 * math.cosh(1 / T)), rel=1e-14)
    assert ising_1d_energy_per_site(L, T) == pytest.approx(-math.tanh(1 / T), rel=1e-12)
    want = (1 / T) ** 2 / math.cosh(1 / T) ** 2
    assert ising_1d_heat_capacity_per_site(L, T) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("d", [1, 2])
def test_front_door_dispatch_and_fields(d: int) -> None:
    L, T = 5, 2.0
    result = exact_ising(L, T, d=d)
    functions = {1: (ising_1d_ln_z, ising_1d_energy_per_site, ising_1d_heat_capacity_per_site),
                 2: (ising_2d_ln_z, ising_2d_energy_per_site, ising_2d_heat_capacity_per_site)}[d]
    assert [f(L, T) for f in functions] == [getattr(result, f) for f in FIELDS]
    assert result.free_energy_per_site == -T * result.ln_z / L**d
    assert (result.L, result.T, result.d) == (L, T, d)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.ln_z = 0.0  # type: ignore[misc]


def test_enumeration_moments_of_two_site_ring() -> None:
    T = 0.8
    result = enumerate_ising(2, T, d=1)  # aligned pair: E = -2, m = +-1; opposed: E = 2, m = 0
    aligned = math.exp(2 / T) / (2 * math.cosh(2 / T))
    for moment in (result.m2, result.m_abs, result.m4):
        assert moment == pytest.approx(aligned, rel=1e-14)
    assert result.binder == pytest.approx(1 - 1 / (3 * aligned), rel=1e-14)


@pytest.mark.parametrize("L, d", [(9, 1), (3, 2), (4, 2)])
def test_enumeration_limits(L: int, d: int) -> None:
    n = L**d
    hot = enumerate_ising(L, 1e9, d=d)  # independent spins
    assert hot.m2 == pytest.approx(1 / n, rel=1e-7)
    assert hot.m4 == pytest.approx((3 * n * n - 2 * n) / n**4, rel=1e-7)
    assert hot.binder == pytest.approx(2 / (3 * n), rel=1e-6)
    cold = enumerate_ising(L, 0.05, d=d)  # two ground states
    assert cold.m_abs == pytest.approx(1.0, rel=1e-12)
    assert cold.binder == pytest.approx(2 / 3, rel=1e-12)
    assert cold.energy_per_site == pytest.approx(-d, rel=1e-12)


def test_enumeration_accepts_numpy_integers() -> None:
    assert enumerate_ising(np.int64(3), 2.0).ln_z == enumerate_ising(3, 2.0).ln_z


BAD_INPUTS = [
    (exact_ising, (1, 2.0), {}, ["L", "1", ">= 2"]),
    (exact_ising, (2.5, 2.0), {}, ["L", "2.5", "int"]),
    (exact_ising, (True, 2.0), {}, ["L", "True", "int"]),
    (exact_ising, ("4", 2.0), {}, ["L", "'4'", "int"]),
    (exact_ising, (4, 0.0), {}, ["T", "0.0", "> 0"]),
    (exact_ising, (4, -1.0), {}, ["T", "-1.0", "> 0"]),
    (exact_ising, (4, math.inf), {}, ["T", "inf", "finite"]),
    (exact_ising, (4, math.nan), {}, ["T", "nan", "finite"]),
    (exact_ising, (4, "2"), {}, ["T", "'2'", "number"]),
    (exact_ising, (4, 2.0), {"d": 3}, ["d", "3", "[1, 2]"]),
    (exact_ising, (4, 2.0), {"d": 2.0}, ["d", "2.0", "[1, 2]"]),
    (ising_1d_ln_z, (0, 1.0), {}, ["L", "0", ">= 2"]),
    (ising_2d_heat_capacity_per_site, (8, -2.0), {}, ["T", "-2.0"]),
    (ising_2d_transfer_ln_z, (13, 1.0), {}, ["L", "13", "[2, 12]"]),
    (ising_2d_transfer_ln_z, (5, 0), {}, ["T", "0", "> 0"]),
    (enumerate_ising, (6, 1.0), {"d": 2}, ["N = 36", "<= 25", "L = 6"]),
    (enumerate_ising, (26, 1.0), {"d": 1}, ["N = 26", "<= 25"]),
    (enumerate_ising, (3, 1.0), {"d": 0}, ["d", "0", "[1, 2]"]),
]


@pytest.mark.parametrize("function, args, kwargs, fragments", BAD_INPUTS,
                         ids=[f"{f.__name__}{a}{k or ''}" for f, a, k, _ in BAD_INPUTS])
def test_bad_input_raises_value_error_with_helpful_message(function, args, kwargs, fragments):
    with pytest.raises(ValueError) as info:
        function(*args, **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_docstring_examples() -> None:
    failed, attempted = doctest.testmod(ising_module)
    assert attempted > 0 and failed == 0


def test_exact_results_also_under_no_grad():
    import torch

    with torch.no_grad():
        assert exact_ising(8, 2.5).ln_z == pytest.approx(exact_ising(8, 2.5).ln_z)
