"""Unnormalised target densities pi(x), the Target protocol and the registry of targets.

Adding a target is one module and one :func:`register_target` entry (here for the built-in
ones, anywhere for a user's; see :mod:`neuralrg.targets.base`).
"""

from neuralrg.targets.base import (
    TARGETS,
    Target,
    TargetBase,
    TargetConfig,
    build_target,
    capability,
    exact_values,
    is_user_spec,
    option_defaults,
    random_signs,
    register_target,
    target_class,
    with_defaults,
)
from neuralrg.targets.ising import RelaxedIsing
from neuralrg.targets.lattice import SUPPORTED_DIMENSIONS, LatticeTarget, PeriodicLattice
from neuralrg.targets.phi4 import Phi4
from neuralrg.targets.toy import TOY_DENSITIES, ToyDensity, toy_target

register_target("ising", RelaxedIsing)
register_target("phi4", Phi4)
for _name in TOY_DENSITIES:
    register_target(_name, toy_target(_name))

__all__ = ["SUPPORTED_DIMENSIONS", "TARGETS", "LatticeTarget", "PeriodicLattice", "Phi4",
           "RelaxedIsing", "Target", "TargetBase", "TargetConfig", "ToyDensity", "build_target",
           "capability", "exact_values", "is_user_spec", "option_defaults", "random_signs",
           "register_target",
           "target_class", "with_defaults"]
