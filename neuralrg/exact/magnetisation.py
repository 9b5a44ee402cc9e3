"""Exact magnetisation distribution and moments of the periodic Ising model (J = 1, k_B = 1).

Energies as in exact/ising.py (L = 2 counts pairs twice); n up spins, M = 2n - N, m = M / N.

2D torus: with a fugacity on n, Z(theta) = Tr[(D^1/2 T D^1/2)^L] = sum_n Z_n exp(-i theta n),
T the row-to-row transfer matrix, D = diag(exp(-i theta n_up(row))); at theta_j = 2 pi j / (N + 1),
j <= N / 2 (Z_n is real), an inverse real FFT returns Z_n. The row shift S commutes with T and D:
momentum sector k (representatives a of period p_a, k p_a = 0 mod L) has the block
T_k[a, b] = sqrt(p_a p_b) / L sum_l omega^(-k l) T[a, S^l b], and the reflection R maps sector k
onto L - k. With n_up centred, the antiunitary R F C (F: flip all spins, C: conjugation) commutes
with S, T and D, so each block has a real form in which D^1/2 is a set of 2 x 2 rotations; the
L-th powers (T divided by its Perron eigenvalue, batched over theta) are real matrix products.
The cost grows about sevenfold per unit of L (the number of momentum-sector representatives
times their matrix products), which sets :data:`MAX_MOMENT_L`.

Ring: by domain walls. A state with 0 < n < L up spins in j up-domains has E = 4 j - L, and
there are (L / j) C(n - 1, j - 1) C(L - n - 1, j - 1) of them; all terms are positive, so each
Z_n has relative precision, unlike a Fourier inversion, whose absolute floor (~1e-16 Z per n)
ruins <m^4> at high T for large rings. O(L^2) terms.

Accuracy: moments agree with enumeration to ~1e-12 relative. In 2D each Z_n carries an absolute
round-off of ~1e-16 Z (negative values at that level are clipped to 0), which can cost <m^4> at
high T (where it is ~3 / N^2) up to ~2e-11 relative at L = 12. Rings hold ~1e-11 to L = 2^16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from neuralrg.exact.ising import _spins, check_lattice
from neuralrg.validation import check_int

MAX_MOMENT_L = 13
MAX_RING_L = 2**16
_CHUNK_BYTES = 1 << 25  # memory for one batch of (theta, m, m) real matrices
_RING_CHUNK = 1 << 22  # entries of one (n, j) batch of ring terms
_ROUNDOFF = 1e-11  # a negative Z_n / Z larger than this is an error, not round-off


@dataclass(frozen=True)
class MagnetisationMoments:
    """Exact moments of m = sum_i s_i / N (see `magnetisation_moments`); ln Z as a by-product."""

    L: int
    T: float
    d: int
    ln_z: float
    m2: float
    m_abs: float
    m4: float
    binder: float


@lru_cache(maxsize=4)
def _orbits(L: int) -> tuple[np.ndarray, ...]:
    """Shift-orbit representatives (smallest code), periods, n_up, and the orbit of their image
    under reflection x spin flip: R F a = S^j a' gives (index of a', j)."""
    codes, mask = np.arange(2**L), 2**L - 1
    smallest, rotated = codes.copy(), codes
    period, lift = np.zeros_like(codes), np.zeros_like(codes)
    for shift in range(1, L + 1):
        rotated = ((rotated << 1) | (rotated >> (L - 1))) & mask  # S: site i -> i + 1
        lift = np.where(rotated < smallest, L - shift, lift)  # code = S^lift smallest
        smallest = np.minimum(smallest, rotated)
        period = np.where((period == 0) & (rotated == codes), shift, period)
    reps = np.flatnonzero(smallest == codes)
    mirror = sum(((reps ^ mask) >> i & 1) << (-i % L) for i in range(L))  # R F a, R: i -> -i
    n_up = L - np.array([bin(int(c)).count("1") for c in reps])  # bit 1 = spin -1
    return reps, period[reps], n_up, np.searchsorted(reps, smallest[mirror]), lift[mirror]


def _real_form(L: int, k: int, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unitary W with W W^T = U, where R F C |a, k> = U[a', a] |a', k>, and the pairs' first
    members. W^H D^1/2 T_k D^1/2 W is real: a pair a != a' gets columns p: (a + a') / sqrt 2 and
    p + n_pairs: i (a - a') / sqrt 2, a fixed point one column after all pairs, times sqrt U."""
    _, _, _, partner, shift = _orbits(L)
    mate = (np.cumsum(keep) - 1)[partner[keep]]
    root = np.exp(1j * np.pi * k * shift[keep] / L)
    index = np.arange(len(mate))
    plus, fixed = index[index < mate], index[index == mate]
    minus, pairs = mate[plus], np.arange(len(plus))
    w = np.zeros((len(mate), len(mate)), dtype=np.complex128)
    half = root[plus] / math.sqrt(2.0)
    w[plus, pairs] = w[minus, pairs] = half
    w[plus, len(plus) + pairs], w[minus, len(plus) + pairs] = 1j * half, -1j * half
    w[fixed, 2 * len(plus) + np.arange(len(fixed))] = root[fixed]
    return w, plus


def _sector_blocks(L: int, K: float) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    """Per sector k = 0..L/2: the real form of T_k / (Perron eigenvalue) and half the centred
    n_up of its pairs' first members; and ln(scale), scale = (Perron eigenvalue of T)^L."""
    reps, period, n_up, _, _ = _orbits(L)
    rows = _spins(reps, L).astype(np.float64)
    intra = (rows * np.roll(rows, -1, axis=1)).sum(axis=1)
    shifted = np.stack([np.roll(rows, s, axis=1) for s in range(L)])  # (L, R, L): S^l b
    log_t = K * (np.einsum("ai,lbi->lab", rows, shifted) + 0.5 * (intra[:, None] + intra))
    top = log_t.max()
    blocks = np.fft.fft(np.exp(log_t - top), axis=0)  # sum_l omega^(-k l) T[a, S^l b]
    norm = np.sqrt(np.outer(period, period)) / L
    sectors = []
    for k in range(L // 2 + 1):
        keep = (k * period) % L == 0
        w, plus = _real_form(L, k, keep)
        block = w.conj().T @ (blocks[k][np.ix_(keep, keep)] * norm[np.ix_(keep, keep)]) @ w
        sectors.append((block.real, (n_up[keep][plus] - L / 2) / 2))
    perron = np.linalg.eigvalsh(sectors[0][0])[-1]
    sectors = [(b / perron, sigma) for b, sigma in sectors]
    return sectors, L * (top + math.log(perron))


def _trace_power(a: np.ndarray, L: int) -> np.ndarray:
    """Tr a^L per batch entry, as Tr(a^h a^(L-h)) with h = L // 2."""
    half = np.linalg.matrix_power(a, L // 2)  # repeated squaring, batched
    return np.einsum("tij,tji->t", half, half if L % 2 == 0 else half @ a)


def _rotated(block: np.ndarray, sigma: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """R B R per theta: the centred D^1/2 is, in the real basis, a rotation by theta sigma in
    each pair's plane, R = [[c, s], [-s, c]] on (first members, second members), 1 elsewhere."""
    pair, two = slice(0, len(sigma)), slice(len(sigma), 2 * len(sigma))
    cos, sin = np.cos(np.outer(theta, sigma)), np.sin(np.outer(theta, sigma))
    rows = np.broadcast_to(block, (len(theta), *block.shape)).copy()
    rows[:, pair] = cos[:, :, None] * block[pair] + sin[:, :, None] * block[two]
    rows[:, two] = cos[:, :, None] * block[two] - sin[:, :, None] * block[pair]
    out = rows.copy()
    out[:, :, pair] = rows[:, :, pair] * cos[:, None] - rows[:, :, two] * sin[:, None]
    out[:, :, two] = rows[:, :, pair] * sin[:, None] + rows[:, :, two] * cos[:, None]
    return out


def _torus_fourier(L: int, K: float, theta: np.ndarray) -> tuple[np.ndarray, float]:
    """Z(theta) / scale for the L x L torus, summed over momentum sectors, and ln(scale)."""
    sectors, log_scale = _sector_blocks(L, K)
    z = np.zeros(len(theta))  # Tr of the real forms: Z(theta) exp(i theta N / 2)
    for k, sector in enumerate(sectors):
        weight = 1 if k == 0 or 2 * k == L else 2  # sectors k and L - k are mirror images
        chunk = max(1, _CHUNK_BYTES // (8 * sector[0].size))
        for start in range(0, len(theta), chunk):
            a = _rotated(*sector, theta[start:start + chunk])
            z[start:start + chunk] += weight * _trace_power(a, L)
    return np.exp(-0.5j * L * L * theta) * z, log_scale


def _ring_weights(L: int, K: float) -> tuple[np.ndarray, float]:
    """Z_n / scale, n = 0..L, of the ring from its domain walls (Z_n = Z_(L-n)), ln(scale)."""
    half, out = L // 2, np.zeros(L + 1)
    step = max(1, _RING_CHUNK // max(half, 1))
    for start in range(1, half + 1, step):
        n = np.arange(start, min(start + step, half + 1), dtype=np.float64)[:, None]
        i, width = np.arange(1.0, n[-1, 0]), int(n[-1, 0])
        valid = i < n  # term j + 1 over term j: (n - j)(L - n - j) / (j (j + 1)), j < n
        ratio = np.log(np.where(valid, (n - i) * (L - n - i), 1.0)) - np.log(i * (i + 1))
        log_terms = np.zeros((len(n), width))
        np.cumsum(np.where(valid, ratio, -np.inf), axis=1, out=log_terms[:, 1:])
        log_terms -= 4 * K * np.arange(1, width + 1)
        top = log_terms.max(axis=1)
        out[start:start + len(n)] = math.log(L) + top + np.log(
            np.exp(log_terms - top[:, None]).sum(axis=1))
    out[L - half:L] = out[1:half + 1][::-1]  # out = ln(Z_n e^(-K L))
    return np.exp(out - out.max()), K * L + out.max()


def _torus_weights(L: int, K: float) -> tuple[np.ndarray, float]:
    """Z_n / scale, n = 0..N, of the L x L torus (clipped at round-off) and ln(scale)."""
    n_sites = L * L
    theta = 2 * np.pi * np.arange(n_sites // 2 + 1) / (n_sites + 1)
    z, log_scale = _torus_fourier(L, K, theta)
    weights = np.fft.irfft(z, n=n_sites + 1)
    if weights.min() < -_ROUNDOFF * weights.sum():
        raise RuntimeError(f"Z_n < 0 beyond round-off (L = {L}, K = {K})")
    return np.clip(weights, 0.0, None), log_scale


def _distribution(L: object, T: object, d: object) -> tuple[int, float, int, np.ndarray, float]:
    """Validated (L, T, d), the probabilities over n = 0..N and ln Z."""
    d = check_int("d", d, 1, 2)
    L, T, d = check_lattice(L, T, d, MAX_MOMENT_L if d == 2 else MAX_RING_L)
    weights, log_scale = (_torus_weights if d == 2 else _ring_weights)(L, 1.0 / T)
    total = weights.sum()
    return L, T, d, weights / total, float(log_scale + math.log(total))


def moments_within_reach(L: int, d: int) -> bool:
    """Whether :func:`magnetisation_moments` covers the ``L^d`` lattice.

    >>> moments_within_reach(8, 2), moments_within_reach(16, 2)
    (True, False)
    """
    return 2 <= L <= (MAX_MOMENT_L if d == 2 else MAX_RING_L)


def magnetisation_distribution(L: int, T: float, d: int = 2) -> np.ndarray:
    """Exact P(n), n = 0..N up spins (M = 2n - N), of the ring (d = 1) or L x L torus (d = 2).

    Allowed: 2 <= L <= MAX_MOMENT_L in 2D, 2 <= L <= MAX_RING_L in 1D; float64, sums to 1.

    >>> p = magnetisation_distribution(2, 1.0, d=1)  # aligned pairs weigh e^2, opposed e^-2
    >>> [round(float(x), 10) for x in p]
    [0.491006895, 0.01798621, 0.491006895]
    """
    return _distribution(L, T, d)[3]


def magnetisation_moments(L: int, T: float, d: int = 2) -> MagnetisationMoments:
    """Exact <m^2>, <|m|>, <m^4> and Binder U = 1 - <m^4> / (3 <m^2>^2), m = sum_i s_i / N.

    >>> r = magnetisation_moments(4, 2 / math.log(1 + math.sqrt(2)))  # T_c
    >>> round(r.m2, 8), round(r.m_abs, 8)
    (0.76135891, 0.84386044)
    """
    L, T, d, p, ln_z = _distribution(L, T, d)
    n_sites = L**d
    m = (2 * np.arange(n_sites + 1) - n_sites) / n_sites
    m2, m4 = float(p @ m**2), float(p @ m**4)
    return MagnetisationMoments(L=L, T=T, d=d, ln_z=ln_z, m2=m2, m_abs=float(p @ np.abs(m)),
                                m4=m4, binder=1 - m4 / (3 * m2**2))
