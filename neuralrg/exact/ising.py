"""Exact results for the periodic Ising model (J = 1, k_B = 1), all in float64.

The 1D ring uses the transfer matrix, the 2D L x L torus Kaufman's formula (docs/physics.md).
A row-to-row transfer matrix and brute-force enumeration are independent cross-checks.
Energies count each site with its +1 neighbour in every direction, so L = 2 counts every
pair twice, as Kaufman's formula does.

Accuracy: the 1D results are analytic and cancellation-free at every T. The 2D derivatives
come from float64 autograd of a log-space Kaufman formula; against enumeration they agree to
~1e-10 relative for 0.5 <= T <= 1000 (T_c included). Below T ~ 0.5 the heat capacity per
site is exponentially small and carries an absolute round-off of ~1e-14 x N, and above
T ~ 1000 energy and heat capacity lose about eps T^2 relative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from neuralrg.validation import check_int, check_real

T_CRITICAL_2D = 2.0 / math.log(1.0 + math.sqrt(2.0))
MAX_ENUMERATION_SITES = 25
MAX_TRANSFER_L = 12
_CHUNK = 1 << 16


@dataclass(frozen=True)
class IsingExact:
    """Exact ln Z and per-site thermodynamics of one periodic lattice (see `exact_ising`)."""

    L: int
    T: float
    d: int
    ln_z: float
    free_energy_per_site: float
    energy_per_site: float
    heat_capacity_per_site: float


@dataclass(frozen=True)
class IsingEnumeration:
    """Brute-force results over all 2^N states (see `enumerate_ising`); m = sum_i s_i / N."""

    L: int
    T: float
    d: int
    ln_z: float
    energy_per_site: float
    heat_capacity_per_site: float
    m2: float
    m_abs: float
    m4: float
    binder: float


def check_lattice(L: object, T: object, d: object, max_L: int | None = None) -> tuple:
    """``(L, T, d)`` checked: an integer L >= 2 (at most ``max_L``), a finite T > 0, d 1 or 2."""
    return check_int("L", L, 2, max_L), check_real("T", T, 0), check_int("d", d, 1, 2)


# ----------------------------------------------------------------------------- 1D ring


def _log_tanh(K: float) -> float:
    """ln tanh K, accurate for small and large K."""
    return math.log(math.tanh(K)) if K < 1.0 else math.log1p(-2.0 / (math.exp(2 * K) + 1.0))


def _ring(L: int, K: float) -> tuple[float, float, float]:
    """ln Z, d lnZ/dK, d^2 lnZ/dK^2 of the ring; written so that nothing cancels."""
    x, log_t = math.exp(-2 * K), _log_tanh(K)
    t, tau = math.exp(log_t), math.exp(L * log_t)  # tanh K and tanh^L K
    g = 4 * x / -math.expm1(-4 * K)  # 2 / sinh 2K
    ln_z = L * (K + math.log1p(x)) + math.log1p(tau)
    d1 = L * t + L * tau * g / (1 + tau)
    d2 = L * g * t * -math.expm1((L - 2) * log_t) / (1 + tau) + L * L * tau * g * g / (1 + tau) ** 2
    return ln_z, d1, d2


# ----------------------------------------------------------------------------- 2D Kaufman


def _log_2cosh(x: torch.Tensor) -> torch.Tensor:
    """ln(2 cosh x), smooth (also at 0) and overflow-free in value and derivatives."""
    return x + F.softplus(-2 * x, beta=1.0, threshold=40.0)


def _log_2sinh(x: torch.Tensor) -> torch.Tensor:
    """ln(2 sinh x) for x > 0."""
    return x + torch.log1p(-torch.exp(-2 * x))


def _gamma(u: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """gamma with cosh gamma = 2 cosh u - cos theta, where u = ln sinh 2K, theta in (0, 2 pi).

    cosh gamma - 1 = 4 sinh^2(u/2) + 2 sin^2(theta/2) >= 0 is a sum of squares, so the
    arccosh argument never rounds below 1; for |u| > 40 the asymptotic form avoids overflow.
    """
    uc = u.clamp(-40.0, 40.0)
    excess = 4 * torch.sinh(uc / 2) ** 2 + 2 * torch.sin(theta / 2) ** 2
    near = torch.log1p(excess + excess.sqrt() * (excess + 2).sqrt())
    ua = u.abs().clamp(min=40.0)
    far = ua + math.log(2.0) + torch.log1p(torch.exp(-2 * ua) - torch.cos(theta) * torch.exp(-ua))
    return torch.where(u.abs() <= 40.0, near, far)


def _kaufman_ln_z(L: int, K: torch.Tensor) -> torch.Tensor:
    """Kaufman's ln Z of the L x L torus as a differentiable function of K (0-dim tensor)."""
    u = 2 * K - math.log(2.0) + torch.log(-torch.expm1(-4 * K))  # ln sinh 2K
    r = torch.arange(1, 2 * L, dtype=torch.float64)
    half_gamma = 0.5 * L * _gamma(u, r * math.pi / L)
    odd, even = half_gamma[0::2], half_gamma[1::2]  # r = 1, 3, .., 2L-1 and r = 2, .., 2L-2
    x0 = L * (K + 0.5 * torch.log(torch.tanh(K)))  # L gamma_0 / 2, signed; 2K* = -ln tanh K
    p = _log_2sinh(even).sum()
    # 2 sinh(x0) * P = exp(ln P + x0) - exp(ln P - x0): smooth through x0 = 0 (T = T_c).
    logs = torch.stack([_log_2cosh(odd).sum(), _log_2sinh(odd).sum(),
                        _log_2cosh(even).sum() + _log_2cosh(x0), p + x0, p - x0])
    signs = torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0], dtype=torch.float64)
    top = logs.max().detach()
    ln_bracket = top + torch.log((signs * torch.exp(logs - top)).sum())
    return -math.log(2.0) + 0.5 * L * L * (math.log(2.0) + u) + ln_bracket


def _kaufman(L: int, K: float) -> tuple[float, float, float]:
    """ln Z and its first two K-derivatives by float64 autograd."""
    with torch.enable_grad():  # also when called under torch.no_grad()
        k = torch.tensor(K, dtype=torch.float64, requires_grad=True)
        ln_z = _kaufman_ln_z(L, k)
        (d1,) = torch.autograd.grad(ln_z, k, create_graph=True)
        (d2,) = torch.autograd.grad(d1, k)
    return ln_z.item(), d1.item(), d2.item()


def _derivatives(L: object, T: object, d: object) -> tuple[int, float, int, tuple]:
    L, T, d = check_lattice(L, T, d)
    return L, T, d, (_ring(L, 1.0 / T) if d == 1 else _kaufman(L, 1.0 / T))


def exact_ising(L: int, T: float, d: int = 2) -> IsingExact:
    """Exact results for the periodic ring (d = 1) or L x L torus (d = 2) at temperature T.

    E = -d lnZ/dK / N and C = K^2 d^2 lnZ/dK^2 / N with K = 1/T.

    >>> r = exact_ising(2, 1.0, d=1)  # Z = 4 cosh 2
    >>> round(r.ln_z, 10), round(r.energy_per_site, 10)
    (2.7112971085, -0.9640275801)
    """
    L, T, d, (ln_z, d1, d2) = _derivatives(L, T, d)
    n, K = L**d, 1.0 / T
    return IsingExact(L=L, T=T, d=d, ln_z=ln_z, free_energy_per_site=-T * ln_z / n,
                      energy_per_site=-d1 / n, heat_capacity_per_site=K * K * d2 / n)


def ising_1d_ln_z(L: int, T: float) -> float:
    """ln Z of the periodic ring, Z = (2 cosh K)^L + (2 sinh K)^L.

    >>> round(ising_1d_ln_z(1000, 0.5), 6)  # ~ L ln(2 cosh 2)
    2018.149928
    """
    return exact_ising(L, T, d=1).ln_z


def ising_1d_energy_per_site(L: int, T: float) -> float:
    """Energy per site of the periodic ring.

    >>> round(ising_1d_energy_per_site(3, 0.01), 12)  # ground state
    -1.0
    """
    return exact_ising(L, T, d=1).energy_per_site


def ising_1d_heat_capacity_per_site(L: int, T: float) -> float:
    """Heat capacity per site of the periodic ring, K^2 d^2 lnZ/dK^2 / L."""
    return exact_ising(L, T, d=1).heat_capacity_per_site


def ising_2d_ln_z(L: int, T: float) -> float:
    """ln Z of the L x L torus by Kaufman's formula (any L >= 2, any T > 0).

    >>> round(ising_2d_ln_z(2, 1.0), 6)  # ln(2 e^8 + 12 + 2 e^-8)
    8.695158
    """
    return exact_ising(L, T, d=2).ln_z


def ising_2d_energy_per_site(L: int, T: float) -> float:
    """Energy per site of the L x L torus (Kaufman). ~ -sqrt(2) at T_c for large L."""
    return exact_ising(L, T, d=2).energy_per_site


def ising_2d_heat_capacity_per_site(L: int, T: float) -> float:
    """Heat capacity per site of the L x L torus (Kaufman)."""
    return exact_ising(L, T, d=2).heat_capacity_per_site


# ----------------------------------------------------------------------------- cross-checks


def _spins(codes: np.ndarray, n: int) -> np.ndarray:
    """Rows of +-1 spins (int8) from integer codes, bit j -> site j."""
    return (1 - 2 * ((codes[:, None] >> np.arange(n)) & 1)).astype(np.int8)


def ising_2d_transfer_ln_z(L: int, T: float) -> float:
    """ln Z of the L x L torus from the row-to-row transfer matrix (2^L states, L <= 12).

    >>> abs(ising_2d_transfer_ln_z(5, 2.0) - ising_2d_ln_z(5, 2.0)) < 1e-10
    True
    """
    L, T, _ = check_lattice(L, T, 2, MAX_TRANSFER_L)
    K = 1.0 / T
    rows = _spins(np.arange(2**L), L).astype(np.float64)
    intra = (rows * np.roll(rows, -1, axis=1)).sum(axis=1)
    log_t = K * (rows @ rows.T + 0.5 * (intra[:, None] + intra[None, :]))
    shift = log_t.max()
    lam = np.linalg.eigvalsh(np.exp(log_t - shift))  # ascending; lam[-1] > 0 (Perron)
    return float(L * (shift + math.log(lam[-1])) + math.log(np.sum((lam / lam[-1]) ** L)))


@lru_cache(maxsize=16)
def _histogram(L: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(energies, magnetisations, counts) of the occupied (E, M) bins over all 2^N states."""
    n = L**d
    width = 2 * n + 1
    counts = np.zeros((2 * d * n + 1) * width, dtype=np.int64)
    half = 2 ** (n - 1)  # spin 0 fixed to +1; the flipped half is added by symmetry below
    for start in range(0, half, _CHUNK):
        s = _spins(np.arange(start, min(start + _CHUNK, half)) * 2, n).reshape(-1, *(L,) * d)
        flat = s.reshape(len(s), n)
        e = -sum((flat * np.roll(s, -1, axis=a + 1).reshape(len(s), n)).sum(1, dtype=np.int64)
                 for a in range(d))
        m = flat.sum(axis=1, dtype=np.int64)
        counts += np.bincount((e + d * n) * width + m + n, minlength=counts.size)
    counts = counts.reshape(-1, width)
    counts = counts + counts[:, ::-1]  # global flip: same E, M -> -M
    e_idx, m_idx = np.nonzero(counts)
    return (e_idx - d * n).astype(np.float64), (m_idx - n).astype(np.float64), \
        counts[e_idx, m_idx].astype(np.float64)


def enumerate_ising(L: int, T: float, d: int = 2) -> IsingEnumeration:
    """Brute force over all 2^N states (N = L^d <= 25), histogrammed once per (L, d).

    >>> r = enumerate_ising(2, 1.0, d=1)  # two aligned states with E = -2, two with E = +2
    >>> round(r.ln_z, 10), round(r.m2, 10)  # <m^2> = e^2 / (2 cosh 2)
    (2.7112971085, 0.98201379)
    """
    L, T, d = check_lattice(L, T, d)
    n = L**d
    if n > MAX_ENUMERATION_SITES:
        raise ValueError(f"enumeration needs N = L^d <= {MAX_ENUMERATION_SITES}, "
                         f"got L = {L}, d = {d} (N = {n})")
    energy, mag, count = _histogram(L, d)
    log_w = np.log(count) - energy / T
    top = log_w.max()
    ln_z = float(top + math.log(np.exp(log_w - top).sum()))
    p, m = np.exp(log_w - ln_z), mag / n
    mean_e = float(p @ energy)
    m2, m4 = float(p @ m**2), float(p @ m**4)
    return IsingEnumeration(L=L, T=T, d=d, ln_z=ln_z, energy_per_site=mean_e / n,
                            heat_capacity_per_site=float(p @ (energy - mean_e) ** 2) / (n * T * T),
                            m2=m2, m_abs=float(p @ np.abs(m)), m4=m4, binder=1 - m4 / (3 * m2**2))
