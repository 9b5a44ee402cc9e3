"""Patch layouts as pure index math.

A layout is a list of :class:`PatchLayer`. Each layer holds the flat site
indices (row-major over the periodic lattice) of its disjoint patches, shape
``(n_patches, 2**d)``; patch members are ordered row-major over the patch's
``{0, 1}^d`` offsets, so member 0 is the patch corner.

* TEBD-like: ``depth`` layers of 2x2 (2 in 1D) patches on the full lattice,
  alternately unshifted and shifted by one site in every direction.
* MERA-like: for each scale ``s`` (patch sites ``2**s`` apart, patches
  ``2**(s+1)`` apart) ``n_disentanglers`` layers shifted by ``2**s``, then one
  decimator layer whose corner sites go on to scale ``s + 1``; the other
  members become the latent variables of scale ``s``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralrg.validation import check_int


@dataclass(frozen=True, eq=False)
class PatchLayer:
    """One layer of disjoint patches.

    ``indices`` has shape ``(n_patches, patch_size)``; ``kind`` is
    ``"tebd"``, ``"disentangler"`` or ``"decimator"``; ``scale`` is the
    MERA length scale (0 for TEBD).
    """

    indices: Tensor
    kind: str
    scale: int

    @property
    def n_patches(self) -> int:
        return self.indices.shape[0]

    @property
    def patch_size(self) -> int:
        return self.indices.shape[1]

    @property
    def grid(self) -> tuple[int, ...]:
        """The patches' periodic grid, ``(n_per_dim,) * d``: patches are numbered row-major
        over their corners (``ValueError`` for a layer whose patches form no such grid).

        >>> mera_layout(8, 2, 1)[0].grid
        (4, 4)
        """
        d = self.patch_size.bit_length() - 1
        n = round(self.n_patches ** (1 / d))
        if n**d != self.n_patches:
            raise ValueError(f"{self.n_patches} patches of {self.patch_size} sites form no "
                             f"square grid of patches; context needs one")
        return (n,) * d


def _check_lattice(L: int, d: int) -> None:
    check_int("d", d, 1)
    check_int("L", L, 2)


def patch_indices(L: int, d: int, spacing: int, offset: int) -> Tensor:
    """Flat indices of patches with sites ``spacing`` apart, corners at
    ``offset + 2 * spacing * i`` in every direction (periodic).

    >>> patch_indices(4, 1, 1, 0).tolist()
    [[0, 1], [2, 3]]
    >>> patch_indices(4, 1, 1, 1).tolist()
    [[1, 2], [3, 0]]
    """
    n_per_dim = L // (2 * spacing)
    corners = torch.arange(n_per_dim) * 2 * spacing + offset
    corner_grid = torch.stack(torch.meshgrid(*[corners] * d, indexing="ij"), -1).reshape(-1, d)
    offsets = torch.tensor(list(itertools.product((0, spacing), repeat=d)))
    coords = (corner_grid[:, None, :] + offsets[None, :, :]) % L
    strides = torch.tensor([L ** (d - 1 - mu) for mu in range(d)])
    return (coords * strides).sum(-1)


def tebd_layout(L: int, d: int, depth: int) -> list[PatchLayer]:
    """TEBD-like layout: ``depth`` layers, alternately unshifted and shifted by one.

    >>> [layer.n_patches for layer in tebd_layout(4, 2, 2)]
    [4, 4]
    """
    _check_lattice(L, d)
    if L % 2:
        raise ValueError(f"TEBD layout needs an even L, got L={L}")
    check_int("depth", depth, 1)
    return [PatchLayer(patch_indices(L, d, 1, k % 2), "tebd", 0) for k in range(depth)]


def n_scales(L: int) -> int:
    """Number of MERA scales, log2(L); L must be a power of two >= 2."""
    if not isinstance(L, int) or L < 2 or L & (L - 1):
        raise ValueError(f"MERA layout needs L a power of 2 and >= 2, got L={L!r}")
    return int(math.log2(L))


def mera_layout(L: int, d: int, n_disentanglers: int) -> list[PatchLayer]:
    """MERA-like layout: per scale, disentanglers then one decimator.

    >>> [(layer.kind, layer.scale, layer.n_patches) for layer in mera_layout(4, 1, 1)]
    [('disentangler', 0, 2), ('decimator', 0, 2), ('disentangler', 1, 1), ('decimator', 1, 1)]
    """
    _check_lattice(L, d)
    scales = n_scales(L)
    check_int("n_disentanglers", n_disentanglers, 0)
    layers = []
    for s in range(scales):
        spacing = 2**s
        shifted = patch_indices(L, d, spacing, spacing)
        layers += [PatchLayer(shifted, "disentangler", s)] * n_disentanglers
        layers.append(PatchLayer(patch_indices(L, d, spacing, 0), "decimator", s))
    return layers


def latent_scales(layers: list[PatchLayer], n_sites: int) -> list[Tensor]:
    """Group sites by the scale at which they leave the hierarchy.

    Returns one index tensor per scale, finest first: the non-corner members
    of each decimator of scale ``s``, and as the last entry the sites that
    are never decimated (the coarsest variables). A layout without
    decimators (TEBD) gives a single group holding every site.

    >>> [g.tolist() for g in latent_scales(mera_layout(4, 1, 0), 4)]
    [[1, 3], [2], [0]]
    """
    groups, kept = [], torch.ones(n_sites, dtype=torch.bool)
    for layer in layers:
        if layer.kind == "decimator":
            dropped = layer.indices[:, 1:].reshape(-1).sort().values
            kept[dropped] = False
            groups.append(dropped)
    groups.append(kept.nonzero().flatten())
    return groups


@dataclass(frozen=True)
class Layout:
    """A registered layout: ``build(L, d, *fields)`` and the names of the configuration
    fields it reads."""

    build: Callable[..., list[PatchLayer]]
    fields: tuple[str, ...]


LAYOUTS: dict[str, Layout] = {"mera": Layout(mera_layout, ("n_disentanglers",)),
                              "tebd": Layout(tebd_layout, ("depth",))}


def register_layout(name: str, build: Callable[..., list[PatchLayer]],
                    fields: tuple[str, ...] = ()) -> None:
    """Make ``name`` a layout: ``build(L, d, *[config.<field> for field in fields])``."""
    if name in LAYOUTS:
        raise ValueError(f"layout {name!r} is already registered")
    LAYOUTS[name] = Layout(build, tuple(fields))


def layout_layers(config) -> list[PatchLayer]:
    """The layers of ``config.layout`` for ``config`` (anything with ``L``, ``d``, ``layout``
    and the layout's fields, e.g. a :class:`~neuralrg.flows.flow.FlowConfig`).

    >>> from types import SimpleNamespace
    >>> len(layout_layers(SimpleNamespace(layout="tebd", L=4, d=1, depth=3)))
    3
    """
    if config.layout not in LAYOUTS:
        raise ValueError(f"layout={config.layout!r} is unknown; allowed: {', '.join(LAYOUTS)}")
    layout = LAYOUTS[config.layout]
    return layout.build(config.L, config.d, *(getattr(config, f) for f in layout.fields))


def patch_count(layers: list[PatchLayer]) -> int:
    """Patches over all layers: the number of block applications per sample."""
    return sum(layer.n_patches for layer in layers)
