"""A flow together with the target it models: what sampling, measuring and the RG microscope
work on (:class:`neuralrg.jobs.RunModel` adds the run configuration).

A model checks its parts when it is made, before any training step: the flow's lattice
against the target's ``event_shape``, and the target's ``log_prob`` on a first small batch
of the flow's samples (one finite floating-point value per configuration)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neuralrg.flows.flow import Z2_AUTO, Z2_MODES, Flow, FlowConfig, build_flow
from neuralrg.flows.symmetry import Z2SymmetricFlow
from neuralrg.targets import Target, capability
from neuralrg.validation import check_choice

PROBE_BATCH = 2  # configurations on which a target's log_prob is tried


def resolve_z2_mode(mode: str, target) -> str:
    """``mode`` with ``"auto"`` decided for ``target`` (an instance or its class): ``"eval"``
    where pi(x) = pi(-x), else ``"none"``.

    >>> from neuralrg.targets import RelaxedIsing, Phi4
    >>> resolve_z2_mode("auto", RelaxedIsing), resolve_z2_mode("train", RelaxedIsing)
    ('eval', 'train')
    """
    check_choice("z2_symmetric", mode, (Z2_AUTO, *Z2_MODES))
    if mode != Z2_AUTO:
        return mode
    return "eval" if capability(target, "z2_symmetric") else "none"


@dataclass
class Model:
    """``flow`` for ``target``; ``z2_mode`` as ``FlowConfig.z2_symmetric`` ("none", "eval":
    sample and estimate with the symmetrised mixture, "train": train through it as well,
    "auto": "eval" for a Z2-symmetric target, else "none").

    >>> from neuralrg.targets import RelaxedIsing
    >>> model = Model.of(FlowConfig(L=4, hidden_s=8), RelaxedIsing(4))
    >>> model.z2_mode, type(model.sampler).__name__
    ('eval', 'Z2SymmetricFlow')
    >>> Model.of(FlowConfig(L=8, hidden_s=8), RelaxedIsing(4))
    Traceback (most recent call last):
    ...
    ValueError: FlowConfig(L=8, d=2) makes a flow on the lattice (8, 8), but the target ...
    """

    flow: Flow
    target: Target
    z2_mode: str = Z2_AUTO

    def __post_init__(self) -> None:
        check_target(self.target)
        check_lattice(self.flow.event_shape, self.target)
        self.z2_mode = resolve_z2_mode(self.z2_mode, self.target)
        check_log_prob(self.flow, self.target)

    @classmethod
    def of(cls, flow_config: FlowConfig, target: Target) -> Model:
        """The untrained flow of ``flow_config`` for ``target``."""
        check_target(target)
        check_lattice(flow_config.lattice_shape, target, flow_config)
        return cls(build_flow(flow_config), target, flow_config.z2_symmetric)

    @property
    def z2_symmetric(self) -> bool:
        """Whether pi(x) = pi(-x) (then chains start in both sectors)."""
        return bool(capability(self.target, "z2_symmetric"))

    @property
    def sampler(self) -> Flow | Z2SymmetricFlow:
        """The density used for sampling and estimation."""
        return self.flow if self.z2_mode == "none" else Z2SymmetricFlow(self.flow)

    @property
    def trained(self) -> Flow | Z2SymmetricFlow:
        """The density the training loss sees."""
        return self.sampler if self.z2_mode == "train" else self.flow

    @property
    def flow_device(self) -> torch.device:
        return next(self.flow.parameters()).device

    def exact_ln_z(self) -> float | None:
        """The target's exact ln Z, when it knows one."""
        return capability(self.target, "exact_ln_z")()


def check_target(target: object) -> None:
    """``TypeError`` unless ``target`` has an ``event_shape`` and a ``log_prob`` method."""
    if not isinstance(target, Target) or not callable(getattr(target, "log_prob", None)):
        raise TypeError(f"target {type(target).__name__} is not a Target: it needs an "
                        "event_shape and a log_prob(x) method")


def check_lattice(shape: tuple[int, ...], target: Target,
                  config: FlowConfig | None = None) -> None:
    """``ValueError`` naming both shapes unless a flow on ``shape`` fits ``target``."""
    wanted = tuple(target.event_shape)
    if tuple(shape) == wanted:
        return
    name = type(target).__name__
    if config is None:
        raise ValueError(f"the flow's lattice {tuple(shape)} differs from the event_shape "
                         f"{wanted} of the target {name}")
    fix = f"; use FlowConfig(L={wanted[0]}, d={len(wanted)})" if len(set(wanted)) == 1 else ""
    raise ValueError(f"FlowConfig(L={config.L}, d={config.d}) makes a flow on the lattice "
                     f"{tuple(shape)}, but the target {name} has event_shape {wanted}{fix}")


@torch.no_grad()
def check_log_prob(flow: Flow, target: Target) -> None:
    """Try ``target.log_prob`` on a first small batch of ``flow`` samples (drawn with a
    generator of their own, so no random stream moves): it must give one finite
    floating-point value per configuration. ``TypeError``/``ValueError`` naming the class."""
    device = next(flow.parameters()).device
    x = flow.sample(PROBE_BATCH, torch.Generator(device=device).manual_seed(0))[0]
    value = target.log_prob(x)
    where = f"{type(target).__name__}.log_prob on a batch of shape {tuple(x.shape)}"
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{where} returned a {type(value).__name__}; expected a tensor of "
                        f"shape ({PROBE_BATCH},)")
    if tuple(value.shape) != (PROBE_BATCH,):
        raise ValueError(f"{where} returned shape {tuple(value.shape)}; expected "
                         f"({PROBE_BATCH},), one ln pi per configuration")
    if not value.is_floating_point():
        raise TypeError(f"{where} returned dtype {value.dtype}; expected a floating-point "
                        "dtype")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{where} returned {value.tolist()}; expected finite values")
