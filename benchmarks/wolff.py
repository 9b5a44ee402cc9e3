"""Wolff single-cluster updates for the 2D Ising model, compiled with numba when available.

Each update grows one cluster from a random seed site, adding aligned neighbours with
probability ``1 - exp(-2 J / T)``, and flips it. The magnetisation and the energy are
updated from the cluster and its boundary bonds, so a measurement costs O(cluster),
not O(N). Without numba the same kernel runs as plain Python (correct, but slow).
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba

    IMPLEMENTATION = f"numba {numba.__version__}"
    _jit = numba.njit(cache=False)
except ImportError:  # numba is a benchmark-only extra
    IMPLEMENTATION = "python (numba not installed: slow)"

    def _jit(function):
        return function


@_jit
def _seed_rng(seed: int) -> None:
    np.random.seed(seed)


@_jit
def _neighbour(site: int, k: int, L: int) -> int:
    row, col = site // L, site % L
    if k == 0:
        return ((row + 1) % L) * L + col
    if k == 1:
        return ((row - 1 + L) % L) * L + col
    if k == 2:
        return row * L + (col + 1) % L
    return row * L + (col - 1 + L) % L


@_jit
def _grow(spins, stamp, queue, seed_site: int, mark: int, p_add: float, L: int) -> int:
    """Fill ``queue[:size]`` with the cluster grown from ``seed_site``; return ``size``."""
    s0 = spins[seed_site]
    stamp[seed_site], queue[0] = mark, seed_site
    head, size = 0, 1
    while head < size:
        site = queue[head]
        head += 1
        for k in range(4):
            j = _neighbour(site, k, L)
            if stamp[j] != mark and spins[j] == s0 and np.random.random() < p_add:
                stamp[j], queue[size] = mark, j
                size += 1
    return size


@_jit
def _flip(spins, stamp, queue, size: int, mark: int, L: int) -> int:
    """Flip the cluster; return the energy change from its boundary bonds (J = 1)."""
    s0, delta = spins[queue[0]], 0
    for c in range(size):
        for k in range(4):
            j = _neighbour(queue[c], k, L)
            if stamp[j] != mark:
                delta += 2 * s0 * spins[j]
    for c in range(size):
        spins[queue[c]] = -s0
    return delta


@_jit
def wolff_updates(spins, stamp, state, n_updates: int, p_add: float, L: int):
    """Run ``n_updates`` cluster updates on one chain; ``state = [M, E, mark]`` (int64).

    Returns per-update |M| / N and E / N (float64) and the cluster sizes.
    """
    n = L * L
    queue = np.empty(n, dtype=np.int64)
    m_abs = np.empty(n_updates)
    energy = np.empty(n_updates)
    sizes = np.empty(n_updates, dtype=np.int64)
    for u in range(n_updates):
        state[2] += 1
        seed_site = np.random.randint(0, n)
        s0 = spins[seed_site]
        size = _grow(spins, stamp, queue, seed_site, state[2], p_add, L)
        state[1] += _flip(spins, stamp, queue, size, state[2], L)
        state[0] -= 2 * s0 * size
        m_abs[u], energy[u], sizes[u] = abs(state[0]) / n, state[1] / n, size
    return m_abs, energy, sizes


def lattice_energy(spins: np.ndarray, L: int) -> int:
    """E = -sum_<ij> s_i s_j on the periodic L x L lattice (J = 1)."""
    grid = spins.reshape(L, L)
    return int(-(grid * np.roll(grid, 1, 0)).sum() - (grid * np.roll(grid, 1, 1)).sum())


class WolffChains:
    """``n_chains`` independent Wolff chains on the L x L lattice at temperature ``T``."""

    def __init__(self, L: int, T: float, n_chains: int, seed: int):
        rng = np.random.default_rng(seed)
        self.L, self.p_add = L, 1.0 - math.exp(-2.0 / T)
        self.spins = [rng.choice(np.array([-1, 1], dtype=np.int64), L * L) for _ in range(n_chains)]
        self.stamps = [np.zeros(L * L, dtype=np.int64) for _ in range(n_chains)]
        self.states = [np.array([s.sum(), lattice_energy(s, L), 0], dtype=np.int64)
                       for s in self.spins]
        _seed_rng(int(rng.integers(2**31)))
        self.cluster_sizes: list[np.ndarray] = []

    def advance(self, n_updates: int) -> tuple[np.ndarray, np.ndarray]:
        """``n_updates`` updates on every chain: |m| and e, each ``(n_updates, n_chains)``."""
        columns = [wolff_updates(s, st, state, n_updates, self.p_add, self.L)
                   for s, st, state in zip(self.spins, self.stamps, self.states, strict=True)]
        self.cluster_sizes.append(np.concatenate([c[2] for c in columns]))
        return np.stack([c[0] for c in columns], 1), np.stack([c[1] for c in columns], 1)

    def check_consistency(self) -> bool:
        """The incrementally tracked M and E equal their values recomputed from the spins."""
        return all(int(state[0]) == int(s.sum()) and int(state[1]) == lattice_energy(s, self.L)
                   for s, state in zip(self.spins, self.states, strict=True))


def warm_up() -> None:
    """Trigger numba's compilation on a tiny lattice (so that it is not timed)."""
    WolffChains(4, 2.0, 1, 0).advance(4)
