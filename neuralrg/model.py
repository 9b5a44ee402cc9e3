"""A flow together with the target it models: what sampling, measuring and the RG microscope
work on (:class:`neuralrg.jobs.RunModel` adds the run configuration)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neuralrg.flows.flow import Flow, build_flow
from neuralrg.flows.symmetry import Z2SymmetricFlow
from neuralrg.targets import Target, capability


@dataclass
class Model:
    """``flow`` for ``target``; ``z2_mode`` as ``FlowConfig.z2_symmetric`` ("none", "eval":
    sample and estimate with the symmetrised mixture, "train": train through it as well).

    >>> from neuralrg.flows.flow import FlowConfig
    >>> from neuralrg.targets import RelaxedIsing
    >>> model = Model.of(FlowConfig(L=4, hidden_s=8, z2_symmetric="eval"), RelaxedIsing(4))
    >>> model.z2_symmetric, type(model.sampler).__name__
    (True, 'Z2SymmetricFlow')
    """

    flow: Flow
    target: Target
    z2_mode: str = "none"

    @classmethod
    def of(cls, flow_config, target: Target) -> Model:
        """The untrained flow of ``flow_config`` for ``target``."""
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
