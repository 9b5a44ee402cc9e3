"""Periodic hypercubic lattices and their circulant quadratic forms."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from neuralrg.targets.base import TargetBase
from neuralrg.validation import check_int

SUPPORTED_DIMENSIONS = (1, 2)
DENSE_BELOW_L = 32  # below this L a dense N x N precision matrix is cheaper than FFTs


class PeriodicLattice:
    """An ``L^d`` periodic lattice; sites are row-major.

    >>> lattice = PeriodicLattice(4, 2)
    >>> lattice.shape, lattice.n_sites
    ((4, 4), 16)
    >>> float(lattice.adjacency_spectrum().min())
    -4.0
    """

    def __init__(self, L: int, d: int):
        check_int("d", d, min(SUPPORTED_DIMENSIONS), max(SUPPORTED_DIMENSIONS))
        self.L, self.d = check_int("L", L, 2), int(d)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.L,) * self.d

    @property
    def n_sites(self) -> int:
        return self.L**self.d

    def adjacency_spectrum(self) -> Tensor:
        """Eigenvalues of the adjacency matrix on the FFT grid: sum_mu 2 cos(2 pi k_mu / L)."""
        cosines = 2 * torch.cos(2 * math.pi * torch.arange(self.L, dtype=torch.float64) / self.L)
        grids = torch.meshgrid(*[cosines] * self.d, indexing="ij")
        return sum(grids)

    def adjacency_matrix(self) -> Tensor:
        """Dense adjacency matrix, A_ij = number of bonds between i and j (float64)."""
        eye = torch.eye(self.n_sites, dtype=torch.float64).reshape(self.n_sites, *self.shape)
        dims = tuple(range(1, self.d + 1))
        rolled = [eye.roll(step, dim) for dim in dims for step in (1, -1)]
        return sum(rolled).reshape(self.n_sites, self.n_sites)


class LatticeTarget(TargetBase):
    """Base of the densities on a :class:`PeriodicLattice` held in ``self.lattice``."""

    lattice: PeriodicLattice

    @property
    def event_shape(self) -> tuple[int, ...]:
        return self.lattice.shape

    @property
    def n_sites(self) -> int:
        return self.lattice.n_sites

    def check_shape(self, x: Tensor) -> None:
        """``ValueError`` unless ``x`` is a batch of configurations of this lattice."""
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (batch, *{self.event_shape})")


class Circulant:
    """A circulant operator M on the lattice, given by its eigenvalues on the FFT grid: M x
    and x^T M x for batches of configurations (e.g. M = (K + aI)^{-1} from the eigenvalues
    1 / (lambda_k + a)).

    Uses a dense matrix for small lattices and FFTs otherwise (O(N log N), no N x N matrix);
    ``dense`` forces either path.

    >>> op = Circulant(torch.full((4, 4), 2.0))  # 2 I
    >>> op.quadratic(torch.ones(1, 4, 4)).tolist()
    [32.0]
    """

    def __init__(self, eigenvalues: Tensor, dense: bool | None = None):
        self.shape = tuple(eigenvalues.shape)
        self.eigenvalues = eigenvalues.to(torch.float64)
        self.dense = self.shape[0] < DENSE_BELOW_L if dense is None else dense
        operator = self._dense_matrix() if self.dense else self._half_spectrum()
        self._operator = {(operator.device, operator.dtype): operator}

    def _dense_matrix(self) -> Tensor:
        n = math.prod(self.shape)
        eye = torch.eye(n, dtype=torch.float64).reshape(n, *self.shape)
        return self._fft_apply(eye, self._half_spectrum()).reshape(n, n)

    def _half_spectrum(self) -> Tensor:
        return self.eigenvalues[..., : self.shape[-1] // 2 + 1]

    def _fft_apply(self, x: Tensor, half_spectrum: Tensor) -> Tensor:
        dims = tuple(range(-len(self.shape), 0))
        x_hat = torch.fft.rfftn(x, dim=dims) * half_spectrum
        return torch.fft.irfftn(x_hat, s=self.shape, dim=dims)

    def _operator_for(self, x: Tensor) -> Tensor:
        key = (x.device, x.dtype)
        if key not in self._operator:
            self._operator[key] = next(iter(self._operator.values())).to(x.device, x.dtype)
        return self._operator[key]

    def apply(self, x: Tensor) -> Tensor:
        """M x for a batch ``(batch, *shape)``."""
        operator = self._operator_for(x)
        if self.dense:
            return (x.reshape(x.shape[0], -1) @ operator).reshape(x.shape)
        return self._fft_apply(x, operator)

    def quadratic(self, x: Tensor) -> Tensor:
        """x^T M x per batch element."""
        return (self.apply(x) * x).reshape(x.shape[0], -1).sum(1)
