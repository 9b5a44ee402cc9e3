"""Neighbourhood context for patch couplings.

The paper's blocks see one patch: a coupling updates half of a patch conditioned on the
other half of the same patch, and information crosses patch boundaries only through the
next, shifted layer. With context of reach ``r`` a coupling's conditioner also sees the
conditioning halves of the patches up to ``r`` steps away on the layer's grid of patches
((2r + 1)^d patches in all, periodic). Every patch of the layer updates the same half at
once and no conditioning half changes in that coupling, so the map stays invertible with
the same triangular Jacobian; the cost is a wider first layer of the conditioner. The
couplings of a block alternate halves, so a block of ``n`` couplings reaches ``n r``
patches away.

Patches of a layer are laid out row-major over their corners (see
:mod:`neuralrg.flows.layouts`), so the grid is ``(n_per_dim,) * d`` and a neighbour is a
roll of that grid.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from neuralrg.validation import check_int


class PatchContext:
    """Gathers each patch's neighbourhood on a periodic ``grid`` of patches.

    ``gather`` takes the conditioning half of every patch of a batch, rows ordered
    (batch, patch), and returns it with the neighbours' halves beside it: ``(rows, n)`` ->
    ``(rows, n * size)``, or features first, ``(n, rows)`` -> ``(n * size, rows)``.

    >>> import torch
    >>> context = PatchContext((4,), reach=1)
    >>> context.size
    3
    >>> context.gather(torch.arange(4.0).reshape(4, 1)).tolist()
    [[3.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 0.0]]
    """

    def __init__(self, grid: tuple[int, ...], reach: int = 1):
        self.grid = tuple(check_int("grid", n, 1) for n in grid)
        self.reach = check_int("context", reach, 1)
        steps = range(reach, -reach - 1, -1)  # +1 first: the neighbour before comes first
        self.shifts = list(itertools.product(steps, repeat=len(self.grid)))

    @property
    def size(self) -> int:
        """Patches in a neighbourhood, (2 reach + 1)^d."""
        return len(self.shifts)

    def gather(self, condition: Tensor, features_first: bool = False) -> Tensor:
        """The neighbourhood of every row of ``condition`` (see the class docstring)."""
        d = len(self.grid)
        if features_first:
            grid = condition.reshape(condition.shape[0], -1, *self.grid)
            dims, cat_dim = tuple(range(2, 2 + d)), 0
        else:
            grid = condition.reshape(-1, *self.grid, condition.shape[-1])
            dims, cat_dim = tuple(range(1, 1 + d)), -1
        parts = [grid.roll(shift, dims) if any(shift) else grid for shift in self.shifts]
        gathered = torch.cat(parts, cat_dim)
        if features_first:
            return gathered.reshape(gathered.shape[0], -1)
        return gathered.reshape(-1, gathered.shape[-1])
