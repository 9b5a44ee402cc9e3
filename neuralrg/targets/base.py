"""What a target is, and the registry from names to targets: the only place that knows
which target is which.

A target is any object with an ``event_shape`` and ``log_prob(x)`` (the unnormalised ln pi of
a batch ``(batch, *event_shape)``); :class:`Target` states the protocol. Optional
capabilities, found by name (:class:`TargetBase` gives the defaults):

- ``z2_symmetric`` (pi(x) = pi(-x): sampling uses both sectors, training may mirror);
- ``exact_ln_z()`` (an exact reference, or ``None``);
- ``observables`` (name -> function of the means of ``observable_moments(x, generator)``)
  with ``exact_observables()``; ``grad_log_prob(x)`` (analytic, for HMC in x);
- ``exact_move(x, generator)`` (a move that leaves pi exactly invariant and decorrelates
  fast, e.g. the relaxed Ising model's cluster moves: the chains' local move, exact samples
  for the free energy and for the forward training term);
- ``thermodynamic_path(generator)`` (thermodynamic integration of ln Z, see
  :mod:`neuralrg.mcmc.thermodynamic`);
- ``derived_ln_z()`` (physical quantities affine in ln Z, name -> (scale, offset), e.g. the
  relaxed Ising model's Ising ln Z and free energy per site);
- ``describe()`` (a few words for titles) and ``summary_extras(ln_z_bound)`` (further keys
  of a run's summary, e.g. the Ising ln Z besides the relaxed one).
- ``scan_parameter`` (class attribute: the option a temperature scan varies, e.g. ``"T"``
  for the Ising model, ``"kappa"`` for phi^4; ``neuralrg scan``).

A target class is built as ``cls(L=..., d=..., **options)``; its options are its other
constructor parameters (defaults give their types). ``fixed_lattice`` (class attribute, e.g.
``{"L": 2, "d": 1}``) pins the lattice of a target that is not really a lattice model.

A target from outside the package is registered with :func:`register_target`, or named on
the command line as ``module.path:ClassName`` or ``path/to/file.py:ClassName``
(:func:`target_class` imports it: importing is running the user's code).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Target(Protocol):
    """The protocol every target satisfies: an event shape and an unnormalised ln pi."""

    event_shape: tuple[int, ...]

    def log_prob(self, x: Tensor) -> Tensor: ...


class TargetBase:
    """Defaults of the optional capabilities (see the module docstring)."""

    z2_symmetric: ClassVar[bool] = False
    fixed_lattice: ClassVar[dict[str, int] | None] = None
    scan_parameter: ClassVar[str | None] = None

    def exact_ln_z(self) -> float | None:
        return None

    @property
    def observables(self) -> dict[str, Callable[[Tensor], Tensor]]:
        return {}

    def exact_observables(self) -> dict[str, float | None]:
        return dict.fromkeys(self.observables)

    def derived_ln_z(self) -> dict[str, tuple[float, float]]:
        return {}

    def describe(self) -> str:
        return type(self).__name__

    def summary_extras(self, ln_z_bound: float) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class TargetConfig:
    """Which target (a registered name or ``module:Class`` / ``file.py:Class``), its lattice
    and its options (the target class's other constructor parameters).

    >>> TargetConfig("phi4", L=4, options={"kappa": 0.2}).options["kappa"]
    0.2
    """

    name: str = "ising"
    L: int = 8
    d: int = 2
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetConfig:
        """From ``to_dict`` output, or from the flat dicts of runs written before options
        existed (``{"name", "L", "d", "T", "kappa", "lam"}``: the target's own options kept)."""
        data = dict(data)
        unknown = set(data) - {"name", "L", "d", "options"}
        if "options" in data or not unknown:
            if unknown:
                raise ValueError(f"unknown TargetConfig field(s): {', '.join(sorted(unknown))}")
            return cls(**data)
        flat = {k: data.pop(k) for k in unknown}
        own = option_defaults(target_class(data.get("name", "ising")))
        return cls(**data, options={k: v for k, v in flat.items() if k in own})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "L": self.L, "d": self.d, "options": dict(self.options)}


TARGETS: dict[str, type] = {}
_USER_TARGETS: dict[str, type] = {}  # classes imported from a spec in this process


def register_target(name: str, cls: type | None = None):
    """Register ``cls`` under ``name`` (usable as a decorator); the name must be new.

    >>> @register_target("doctest-gauss")
    ... class Gauss(TargetBase):
    ...     def __init__(self, L: int = 4, d: int = 1):
    ...         self.event_shape = (L,) * d
    ...     def log_prob(self, x):
    ...         return -0.5 * x.flatten(1).pow(2).sum(1)
    >>> target_class("doctest-gauss") is Gauss
    True
    """
    def add(target: type) -> type:
        if name in TARGETS and TARGETS[name] is not target:
            raise ValueError(f"target {name!r} is already registered ({TARGETS[name].__name__})")
        TARGETS[name] = target
        return target

    return add if cls is None else add(cls)


def is_user_spec(name: str) -> bool:
    """Whether ``name`` points into a user's module or file (``module:Class``)."""
    return ":" in name and name not in TARGETS


def target_class(name: str) -> type:
    """The class registered as ``name``, or the class a ``module:Class`` / ``file.py:Class``
    spec names (imported: this runs the module). ``ValueError`` for anything else."""
    if name in TARGETS:
        return TARGETS[name]
    if not is_user_spec(name):
        raise ValueError(f"target={name!r} is unknown; allowed: {', '.join(TARGETS)}, or "
                         "module.path:ClassName or path/to/file.py:ClassName")
    if name not in _USER_TARGETS:
        _USER_TARGETS[name] = _import_class(name)
    return _USER_TARGETS[name]


def _import_class(spec: str) -> type:
    where, _, attribute = spec.rpartition(":")
    try:
        module = _load_file(where) if where.endswith(".py") else importlib.import_module(where)
    except (ImportError, OSError) as error:
        raise ValueError(f"target={spec!r}: cannot import {where!r} ({error})") from None
    found = getattr(module, attribute, None)
    if not inspect.isclass(found):
        raise ValueError(f"target={spec!r}: {where!r} has no class {attribute!r}")
    for needed in ("log_prob",):
        if not callable(getattr(found, needed, None)):
            raise ValueError(f"target={spec!r}: {attribute} does not satisfy the Target "
                             f"protocol (it has no {needed} method)")
    return found


def _load_file(path: str):
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise OSError(f"no such file: {file}")
    name = f"neuralrg_user_target_{abs(hash(str(file)))}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def option_defaults(cls: type) -> dict[str, Any]:
    """The options of a target class (constructor parameters other than L and d) with their
    defaults (``inspect.Parameter.empty`` where there is none)."""
    parameters = inspect.signature(cls).parameters.values()
    return {p.name: p.default for p in parameters
            if p.name not in ("self", "L", "d") and p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                                p.KEYWORD_ONLY)}


def with_defaults(config: TargetConfig) -> TargetConfig:
    """``config`` with every option the target class gives a plain default (a number, text,
    a flag or ``None``) written out, so that a run's record is complete.

    >>> with_defaults(TargetConfig("phi4", L=4)).options
    {'kappa': 0.3, 'lam': 0.02}
    """
    plain = (int, float, str, bool, type(None))
    defaults = {k: v for k, v in option_defaults(target_class(config.name)).items()
                if isinstance(v, plain)}
    return replace(config, options={**defaults, **config.options})


def build_target(config: TargetConfig):
    """The target ``config`` describes; ``ValueError`` for unknown names or options, a
    lattice the target does not accept, or an object that is not a :class:`Target`."""
    cls = target_class(config.name)
    fixed = getattr(cls, "fixed_lattice", None)
    if fixed and (config.L, config.d) != (fixed["L"], fixed["d"]):
        raise ValueError(f"target={config.name!r} is not a lattice model: it needs "
                         f"L={fixed['L']} and d={fixed['d']}, got L={config.L}, d={config.d}")
    allowed = option_defaults(cls)
    unknown = sorted(set(config.options) - set(allowed))
    if unknown:
        raise ValueError(f"target {config.name!r} has no option {unknown[0]!r}; its options: "
                         f"{', '.join(allowed) or 'none'}")
    accepted = inspect.signature(cls).parameters
    lattice = {k: v for k, v in (("L", config.L), ("d", config.d)) if k in accepted}
    target = cls(**lattice, **config.options)
    if not isinstance(target, Target):
        raise ValueError(f"target {config.name!r} does not satisfy the Target protocol "
                         "(needs event_shape and log_prob)")
    return target


def capability(target, name: str) -> Any:
    """An optional capability of ``target`` (see the module docstring), with the default of
    :class:`TargetBase` for a target that does not have it.

    >>> class Bare:
    ...     event_shape = (2,)
    ...     def log_prob(self, x):
    ...         return -x.pow(2).sum(1)
    >>> capability(Bare(), "z2_symmetric"), capability(Bare(), "exact_ln_z")()
    (False, None)
    """
    if hasattr(target, name):
        return getattr(target, name)
    defaults = {"z2_symmetric": False, "exact_ln_z": lambda: None, "observables": {},
                "exact_move": None, "thermodynamic_path": None, "derived_ln_z": dict,
                "exact_observables": dict, "describe": lambda: type(target).__name__,
                "summary_extras": lambda ln_z_bound: {}}
    if name not in defaults:
        raise AttributeError(f"{name!r} is not an optional capability of a target")
    return defaults[name]


def exact_values(target) -> dict[str, float | None]:
    """Every exact reference ``target`` knows: ``ln_z`` (its own), the quantities that follow
    from it exactly (``derived_ln_z``: for the relaxed Ising model ``ising_ln_z`` and
    ``free_energy_per_site``) and its exact observables; empty for a target that knows none.

    >>> from neuralrg.targets import RelaxedIsing
    >>> exact = exact_values(RelaxedIsing(4, T=2.0))
    >>> round(exact["free_energy_per_site"], 6), sorted(exact)[:3]
    (-2.138171, ['abs_m', 'binder', 'energy_per_site'])
    """
    ln_z = capability(target, "exact_ln_z")()
    if ln_z is None:
        return dict(capability(target, "exact_observables")())
    derived = {name: scale * ln_z + offset
               for name, (scale, offset) in capability(target, "derived_ln_z")().items()}
    return {"ln_z": ln_z, **derived, **capability(target, "exact_observables")()}


def generator_device(generator: torch.Generator | None) -> torch.device | None:
    """The device a draw from ``generator`` must be made on (``None``: the default device).

    >>> generator_device(torch.Generator()), generator_device(None)
    (device(type='cpu'), None)
    """
    return None if generator is None else generator.device


def random_signs(shape: int | tuple[int, ...], generator: torch.Generator | None = None,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64) -> Tensor:
    """Independent signs +1 or -1 with equal probability: random spins, the clusters' flips of
    a Swendsen-Wang sweep, a random global sign per configuration of a Z2-symmetric target.
    Drawn on ``device``, by default the generator's.

    >>> random_signs(4, torch.Generator().manual_seed(0)).abs().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    device = generator_device(generator) if device is None else device
    draws = torch.randint(0, 2, shape, generator=generator, device=device)
    return (1 - 2 * draws).to(dtype)
