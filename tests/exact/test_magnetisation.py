"""Exact magnetisation moments against enumeration, a plain transfer matrix and closed forms."""

import dataclasses
import doctest
import math

import numpy as np
import pytest

import neuralrg.exact.magnetisation as magnetisation_module
from neuralrg.exact import (
    MAX_MOMENT_L,
    MAX_RING_L,
    T_CRITICAL_2D,
    enumerate_ising,
    exact_ising,
    magnetisation_distribution,
    magnetisation_moments,
)

TC = T_CRITICAL_2D
TEMPERATURES = [0.5, 1.5, TC, 3.5, 50.0]
MOMENTS = ("m2", "m_abs", "m4", "binder")


def _temperature_id(T: float) -> str:
    return f"T{T:.3g}"


def _assert_matches_enumeration(L: int, T: float, d: int, rtol: float) -> None:
    got, want = magnetisation_moments(L, T, d=d), enumerate_ising(L, T, d=d)
    for field in (*MOMENTS, "ln_z"):
        assert getattr(got, field) == pytest.approx(getattr(want, field), rel=rtol), field


@pytest.mark.parametrize("T", TEMPERATURES, ids=_temperature_id)
@pytest.mark.parametrize("L", [2, 3, 4, 5], ids=lambda n: f"L{n}")
def test_torus_matches_enumeration(L: int, T: float) -> None:
    _assert_matches_enumeration(L, T, d=2, rtol=1e-10)


@pytest.mark.parametrize("T", TEMPERATURES, ids=_temperature_id)
@pytest.mark.parametrize("L", [2, 3, 4, 7, 12, 20], ids=lambda n: f"L{n}")
def test_ring_matches_enumeration(L: int, T: float) -> None:
    _assert_matches_enumeration(L, T, d=1, rtol=1e-10)


def test_critical_4x4_reference_values() -> None:
    result = magnetisation_moments(4, TC)
    assert result.m2 == pytest.approx(0.76135891, abs=1e-8)
    assert result.m_abs == pytest.approx(0.84386045, abs=1e-8)


def _plain_transfer_distribution(L: int, T: float) -> np.ndarray:
    """Reference without symmetry blocks: Tr[(D T)^L] with the full 2^L x 2^L complex matrix."""
    codes = np.arange(2**L)
    rows = 1 - 2 * ((codes[:, None] >> np.arange(L)) & 1)
    intra = (rows * np.roll(rows, -1, axis=1)).sum(axis=1)
    log_t = (rows @ rows.T + 0.5 * (intra[:, None] + intra[None, :])) / T
    transfer = np.exp(log_t - log_t.max())
    n_up, size = (rows > 0).sum(axis=1), L * L + 1
    z = [np.trace(np.linalg.matrix_power(np.exp(-2j * np.pi * j * n_up / size)[:, None] * transfer,
                                         L)) for j in range(size)]
    weights = np.fft.ifft(z).real
    return weights / weights.sum()


@pytest.mark.parametrize("T", [1.5, TC, 3.5], ids=["below", "at", "above"])
@pytest.mark.parametrize("L", [6, 7], ids=lambda n: f"L{n}")
def test_torus_matches_plain_transfer_matrix(L: int, T: float) -> None:
    got, want = magnetisation_distribution(L, T), _plain_transfer_distribution(L, T)
    assert np.abs(got - want).max() < 1e-13
    m = (2 * np.arange(L * L + 1) - L * L) / (L * L)
    assert magnetisation_moments(L, T).m4 == pytest.approx(float(want @ m**4), rel=1e-10)


@pytest.mark.parametrize("T", [1.5, TC, 3.5], ids=["below", "at", "above"])
@pytest.mark.parametrize("L", [6, 8, 9], ids=lambda n: f"L{n}")
def test_torus_normalisation_matches_kaufman(L: int, T: float) -> None:
    assert magnetisation_moments(L, T).ln_z == pytest.approx(exact_ising(L, T).ln_z, rel=1e-12)


@pytest.mark.parametrize("T", [0.2, 1.0, 50.0], ids=_temperature_id)
def test_long_ring_m2_matches_correlation_sum(T: float) -> None:
    L, t = 4096, math.tanh(1 / T)  # <s_0 s_r> = (t^r + t^(L - r)) / (1 + t^L)
    r = np.arange(L)
    want = float(np.sum(t**r + t ** (L - r))) / (1 + t**L) / L
    result = magnetisation_moments(L, T, d=1)
    assert result.m2 == pytest.approx(want, rel=1e-11)
    assert result.ln_z == pytest.approx(exact_ising(L, T, d=1).ln_z, rel=1e-13)


@pytest.mark.parametrize("L, T, d", [(6, TC, 2), (7, 1.5, 2), (8, 3.5, 2), (9, 0.5, 2),
                                     (101, 1.0, 1), (1000, 50.0, 1)])
def test_distribution_is_normalised_and_symmetric(L: int, T: float, d: int) -> None:
    p = magnetisation_distribution(L, T, d=d)
    assert p.shape == (L**d + 1,) and p.dtype == np.float64
    assert (p >= 0).all()
    assert p.sum() == pytest.approx(1.0, abs=1e-14)
    assert np.abs(p - p[::-1]).max() < 1e-14


@pytest.mark.parametrize("L, d", [(7, 2), (100, 1)])
def test_high_and_low_temperature_limits(L: int, d: int) -> None:
    n = L**d
    hot = magnetisation_moments(L, 1e9, d=d)  # independent spins
    assert hot.m2 == pytest.approx(1 / n, rel=1e-7)
    assert hot.m4 == pytest.approx((3 * n * n - 2 * n) / n**4, rel=1e-7)
    assert hot.binder == pytest.approx(2 / (3 * n), rel=1e-6)
    cold = magnetisation_moments(L, 0.05, d=d)  # two ground states
    assert cold.m_abs == pytest.approx(1.0, rel=1e-12)
    assert cold.binder == pytest.approx(2 / 3, rel=1e-12)


@pytest.mark.slow
def test_largest_torus_is_computed_and_physical() -> None:
    result = magnetisation_moments(MAX_MOMENT_L, TC)
    assert 0 < result.m2 <= 1
    assert result.m_abs**2 <= result.m2
    assert result.m4 >= result.m2**2
    assert 0 < result.binder < 2 / 3
    assert result.ln_z == pytest.approx(exact_ising(MAX_MOMENT_L, TC).ln_z, rel=1e-12)


def test_result_fields_and_frozen() -> None:
    result = magnetisation_moments(np.int64(3), 2.0, d=np.int64(2))
    assert (result.L, result.T, result.d) == (3, 2.0, 2)
    assert type(result.L) is int and type(result.d) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.m2 = 0.0  # type: ignore[misc]


BAD_INPUTS = [
    ((MAX_MOMENT_L + 1, 2.0), {}, ["L", str(MAX_MOMENT_L + 1), f"[2, {MAX_MOMENT_L}]"]),
    ((MAX_RING_L + 1, 2.0), {"d": 1}, ["L", str(MAX_RING_L + 1), f"[2, {MAX_RING_L}]"]),
    ((1, 2.0), {}, ["L", "1", f"[2, {MAX_MOMENT_L}]"]),
    ((1, 2.0), {"d": 1}, ["L", "1", f"[2, {MAX_RING_L}]"]),
    ((True, 2.0), {}, ["L", "True", "int"]),
    ((4.0, 2.0), {}, ["L", "4.0", "int"]),
    ((4, 0.0), {}, ["T", "0.0", "> 0"]),
    ((4, -1.0), {}, ["T", "-1.0", "> 0"]),
    ((4, math.nan), {}, ["T", "nan", "finite"]),
    ((4, True), {}, ["T", "True"]),
    ((4, 2.0), {"d": 3}, ["d", "3", "[1, 2]"]),
    ((4, 2.0), {"d": True}, ["d", "True", "[1, 2]"]),
]


@pytest.mark.parametrize("function", [magnetisation_moments, magnetisation_distribution],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("args, kwargs, fragments", BAD_INPUTS,
                         ids=[f"{a}{k or ''}" for a, k, _ in BAD_INPUTS])
def test_bad_input_raises_value_error(function, args, kwargs, fragments) -> None:
    with pytest.raises(ValueError) as info:
        function(*args, **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_docstring_examples() -> None:
    failed, attempted = doctest.testmod(magnetisation_module)
    assert attempted > 0 and failed == 0
