"""Lattice growth: start a MERA on the L x L lattice from a trained one on L/2 x L/2.

A MERA's blocks are shared by all patches of their layer, so a block trained at scale s of
the smaller lattice is a sensible start for scale s of the larger one: the couplings of an
RG step do not depend on the system size once the correlation length is resolved. The
larger lattice has one more scale; its coarsest blocks start from the smaller lattice's
coarsest (the scale nearest to it in the RG flow).
"""

from __future__ import annotations

import re
from dataclasses import asdict

from torch import Tensor

from neuralrg.flows.flow import FlowConfig
from neuralrg.flows.layouts import n_scales

_BLOCK = re.compile(r"(^|\.)blocks\.(\d+)\.")


def growth_mismatch(small: FlowConfig, large: FlowConfig) -> str | None:
    """Why a flow ``small`` cannot seed ``large`` by growth, or ``None`` if it can.

    >>> growth_mismatch(FlowConfig(L=8), FlowConfig(L=16)) is None
    True
    >>> growth_mismatch(FlowConfig(L=8), FlowConfig(L=32))
    'L=32 must be twice the L=8 of the run it grows from'
    """
    if large.layout != "mera" or small.layout != "mera":
        return f"growth needs MERA layouts, got {small.layout!r} -> {large.layout!r}"
    if large.L != 2 * small.L:
        return f"L={large.L} must be twice the L={small.L} of the run it grows from"
    for name, value in asdict(small).items():
        if name not in ("L", "depth") and getattr(large, name) != value:
            return f"flow.{name}={getattr(large, name)!r} differs from the {value!r} of the " \
                   "run it grows from"
    return None


def _layers_per_scale(config: FlowConfig) -> int:
    return config.n_disentanglers + 1


def source_block(k: int, small: FlowConfig) -> int:
    """The block of the ``small`` flow that seeds block ``k`` of the flow twice its size:
    the same block for the shared scales, the coarsest scale's for the new coarsest one.

    >>> [source_block(k, FlowConfig(L=4, n_disentanglers=1)) for k in range(6)]
    [0, 1, 2, 3, 2, 3]
    """
    per_scale = _layers_per_scale(small)
    scale, position = divmod(k, per_scale)
    return min(scale, n_scales(small.L) - 1) * per_scale + position


def grown_state_dict(state: dict[str, Tensor], small: FlowConfig,
                     large: FlowConfig) -> dict[str, Tensor]:
    """The state dict of the ``large`` flow seeded from ``state`` of the ``small`` one
    (keys of any module holding the flow, e.g. ``flow.bijector.blocks.3...``); every
    tensor is copied exactly. ``ValueError`` naming the mismatch when growth is not possible.
    """
    problem = growth_mismatch(small, large)
    if problem is not None:
        raise ValueError(problem)
    by_block: dict[int, dict[str, Tensor]] = {}
    other = {}
    for key, value in state.items():
        match = _BLOCK.search(key)
        if match is None:
            other[key] = value
        else:
            by_block.setdefault(int(match.group(2)), {})[key] = value
    grown = dict(other)
    for k in range(n_scales(large.L) * _layers_per_scale(large)):
        for key, value in by_block[source_block(k, small)].items():
            new_key = _BLOCK.sub(rf"\g<1>blocks.{k}.", key, count=1)
            grown[new_key] = value.clone()
    return grown
