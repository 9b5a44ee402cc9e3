"""Unnormalised target densities pi(x) on lattices and in the plane."""

from __future__ import annotations

from dataclasses import dataclass

from neuralrg.targets.ising import RelaxedIsing

TARGETS = ("ising",)
Z2_TARGETS = ("ising",)  # targets with pi(x) = pi(-x)


@dataclass(frozen=True)
class TargetConfig:
    """Which target to train on, and its parameters."""

    name: str = "ising"
    L: int = 8
    T: float = 2.269185314213022
    d: int = 2


def build_target(config: TargetConfig) -> RelaxedIsing:
    """The target described by ``config``; raises ``ValueError`` for bad values."""
    if config.name not in TARGETS:
        raise ValueError(f"target={config.name!r} is unknown; allowed: {', '.join(TARGETS)}")
    return RelaxedIsing(config.L, config.T, config.d)


__all__ = ["TARGETS", "Z2_TARGETS", "TargetConfig", "build_target", "RelaxedIsing"]
