"""Unnormalised target densities pi(x) on lattices and in the plane."""

from __future__ import annotations

from dataclasses import dataclass

from neuralrg.targets.ising import RelaxedIsing
from neuralrg.targets.phi4 import Phi4
from neuralrg.targets.toy import TOY_DENSITIES, ToyDensity

TARGETS = ("ising", "phi4", *TOY_DENSITIES)
Z2_TARGETS = ("ising", "phi4")  # targets with pi(x) = pi(-x)
TOY_SHAPE = {"L": 2, "d": 1}  # toy densities live on two variables: one 1D patch


@dataclass(frozen=True)
class TargetConfig:
    """Which target to train on, and its parameters (T for Ising; kappa and lam for phi^4)."""

    name: str = "ising"
    L: int = 8
    T: float = 2.269185314213022
    d: int = 2
    kappa: float = 0.3
    lam: float = 0.02


def build_target(config: TargetConfig) -> RelaxedIsing | Phi4 | ToyDensity:
    """The target described by ``config``; raises ``ValueError`` for bad values."""
    if config.name not in TARGETS:
        raise ValueError(f"target={config.name!r} is unknown; allowed: {', '.join(TARGETS)}")
    if config.name == "ising":
        return RelaxedIsing(config.L, config.T, config.d)
    if config.name == "phi4":
        return Phi4(config.L, config.d, config.kappa, config.lam)
    if (config.L, config.d) != (TOY_SHAPE["L"], TOY_SHAPE["d"]):
        raise ValueError(f"target={config.name!r} is two-dimensional: it needs L=2 and d=1, "
                         f"got L={config.L}, d={config.d}")
    return ToyDensity(config.name)


__all__ = ["TARGETS", "TOY_SHAPE", "Z2_TARGETS", "Phi4", "RelaxedIsing", "TargetConfig",
           "ToyDensity", "build_target"]
