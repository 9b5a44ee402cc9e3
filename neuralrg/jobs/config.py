"""The full configuration of a run, serialised to ``config.json``."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from neuralrg.flows.flow import FlowConfig, validate_flow_config
from neuralrg.flows.layouts import layout_layers, patch_count
from neuralrg.objective import LossConfig, validate_loss_config
from neuralrg.sampling import SampleConfig, validate_sample_config
from neuralrg.targets import TargetConfig, build_target
from neuralrg.training import TrainConfig, validate_train_config
from neuralrg.validation import check_choice, check_int

DTYPES = {"float32": torch.float32, "float64": torch.float64}


_SAMPLING = SampleConfig()


@dataclass(frozen=True)
class EvalConfig:
    """Measurements after training: ``samples`` fresh flow samples for the bound and the
    importance-sampling estimates, and a Markov-chain run (``mc_*``, see
    :class:`neuralrg.sampling.SampleConfig`) for the acceptance and the observables."""

    samples: int = _SAMPLING.importance_samples
    mc_method: str = _SAMPLING.method
    mc_chains: int = _SAMPLING.chains
    mc_therm: int = _SAMPLING.therm
    mc_steps: int = _SAMPLING.steps
    mc_skip: int = _SAMPLING.skip
    mc_step_size: float = _SAMPLING.step_size
    mc_leapfrog: int = _SAMPLING.n_leapfrog
    mc_local: str = _SAMPLING.local
    mc_local_moves: int = _SAMPLING.local_moves
    mc_local_step_size: float = _SAMPLING.local_step_size
    mc_local_leapfrog: int = _SAMPLING.local_leapfrog
    mc_ti_nodes: int = _SAMPLING.ti_nodes
    mc_ti_steps: int = _SAMPLING.ti_steps

    def sample_config(self, seed: int = 0) -> SampleConfig:
        """The sampler settings of the measurement."""
        return SampleConfig(
            method=self.mc_method, chains=self.mc_chains, therm=self.mc_therm,
            steps=self.mc_steps, skip=self.mc_skip, step_size=self.mc_step_size,
            n_leapfrog=self.mc_leapfrog, local=self.mc_local, local_moves=self.mc_local_moves,
            local_step_size=self.mc_local_step_size, local_leapfrog=self.mc_local_leapfrog,
            ti_nodes=self.mc_ti_nodes, ti_steps=self.mc_ti_steps,
            importance_samples=self.samples, seed=seed)


def validate_eval_config(config: EvalConfig) -> None:
    check_int("eval-samples", config.samples, 2)
    try:
        validate_sample_config(config.sample_config())
    except ValueError as error:  # name the train flag: --mc-...
        text = str(error).replace("n-leapfrog=", "leapfrog=", 1)
        raise ValueError(f"mc-{text}") from None


@dataclass(frozen=True)
class RunConfig:
    """Target, architecture, optimisation and numerics of one run."""

    target: TargetConfig = field(default_factory=TargetConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    dtype: str = "float32"
    device: str = "cpu"
    init_from: str | None = None  # a trained MERA run at L/2 that seeds this one (growth)
    grow_from: int | None = None  # the run grew from L = grow_from by doubling (stages/)
    warm_from: str | None = None  # a trained run at other target options (warm start)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "target": self.target.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """From ``config.json``, also as written by earlier versions (a flow without
        ``coupling`` is the affine flow it was; flat target options are collected)."""
        parts = {"flow": FlowConfig, "train": TrainConfig, "loss": LossConfig,
                 "eval": EvalConfig}
        if "flow" in data and "coupling" not in data["flow"]:  # written before splines
            data = {**data, "flow": {**data["flow"], "coupling": "affine"}}
        kwargs = {k: _build(parts[k], v) if k in parts else v for k, v in data.items()}
        if "target" in data:
            kwargs["target"] = TargetConfig.from_dict(data["target"])
        return _build(cls, kwargs)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]


def _build(cls, data: dict[str, Any]):
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    return cls(**data)


def validate_run_config(config: RunConfig) -> None:
    """Check every field before any heavy work; raise ``ValueError`` naming the bad value."""
    target, flow = config.target, config.flow
    if (target.L, target.d) != (flow.L, flow.d):
        raise ValueError(f"the target's L={target.L}, d={target.d} and the flow's L={flow.L}, "
                         f"d={flow.d} must agree")
    build_target(target)
    validate_flow_config(config.flow)
    validate_train_config(config.train)
    validate_loss_config(config.loss)
    validate_eval_config(config.eval)
    check_choice("dtype", config.dtype, tuple(DTYPES))
    resolve_device(config.device)
    check_memory(config)


def training_memory_bytes(config: RunConfig) -> int:
    """Rough peak memory of one training step: the activations kept for the backward pass
    (inputs, two hidden layers per s/t network and outputs of every coupling, per patch)."""
    flow, batch = config.flow, config.train.batch_size
    layer_patches = patch_count(layout_layers(flow))
    per_coupling = 2 * flow.mlp_depth * (flow.hidden_s + flow.hidden_t) + 4 * 2**flow.d
    if flow.coupling == "spline":  # one network, and the spline's tables per variable
        per_coupling = 2 * flow.mlp_depth * flow.hidden_s + (6 * flow.bins + 6) * 2**flow.d
    factor = 2 if flow.z2_symmetric == "train" else 1
    element = 8 if config.dtype == "float64" else 4
    return batch * layer_patches * flow.n_layers * per_coupling * element * factor


def available_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(config: RunConfig) -> None:
    """Refuse, before any allocation, a configuration whose training step cannot fit."""
    if config.device != "cpu":
        return
    need, have = training_memory_bytes(config), available_memory_bytes()
    if need > 0.8 * have:
        raise ValueError(
            f"L={config.flow.L} with batch-size={config.train.batch_size} needs about "
            f"{need / 2**30:.1f} GiB per training step, more than this machine's "
            f"{have / 2**30:.1f} GiB allows; lower --batch-size, --L or the widths"
        )


def resolve_device(name: str) -> torch.device:
    """``torch.device`` for ``name``; a missing CUDA device is an error, never a fallback."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={name!r} is not a device; try 'cpu' or 'cuda'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} requested but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device={name!r} is not supported; allowed: cpu, cuda, cuda:N")
    return device
