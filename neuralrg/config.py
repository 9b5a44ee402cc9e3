"""The full configuration of a run, serialised to ``config.json``."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from neuralrg.flows.flow import FlowConfig, validate_flow_config
from neuralrg.objective import LossConfig, validate_loss_config
from neuralrg.targets import TargetConfig, build_target
from neuralrg.training import TrainConfig, validate_train_config

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class EvalConfig:
    """Measurements after training: fresh samples for the bound and importance sampling,
    and a short flow-proposal Metropolis run for the observables."""

    samples: int = 8192
    mc_chains: int = 256
    mc_therm: int = 10
    mc_steps: int = 100
    mc_skip: int = 0


def validate_eval_config(config: EvalConfig) -> None:
    checks = (("samples", 2), ("mc_chains", 1), ("mc_therm", 0), ("mc_steps", 1), ("mc_skip", 0))
    for name, low in checks:
        value = getattr(config, name)
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name.replace('_', '-')}={value!r} must be an integer >= {low}")


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        parts = {"target": TargetConfig, "flow": FlowConfig, "train": TrainConfig,
                 "loss": LossConfig, "eval": EvalConfig}
        kwargs = {k: _build(parts[k], v) if k in parts else v for k, v in data.items()}
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
    target = config.target
    if not (isinstance(target.T, (int, float)) and math.isfinite(target.T) and target.T > 0):
        raise ValueError(f"T={target.T!r} must be a finite temperature > 0")
    if (target.L, target.d) != (config.flow.L, config.flow.d):
        raise ValueError("target and flow must share L and d")
    build_target(target)
    validate_flow_config(config.flow)
    validate_train_config(config.train)
    validate_loss_config(config.loss)
    validate_eval_config(config.eval)
    if config.dtype not in DTYPES:
        raise ValueError(f"dtype={config.dtype!r}; allowed: {', '.join(DTYPES)}")
    resolve_device(config.device)
    check_memory(config)


def training_memory_bytes(config: RunConfig) -> int:
    """Rough peak memory of one training step: the activations kept for the backward pass
    (inputs, two hidden layers per s/t network and outputs of every coupling, per patch)."""
    flow, batch = config.flow, config.train.batch_size
    patches = flow.L**flow.d // 2**flow.d
    if flow.layout == "mera":
        scales = int(math.log2(flow.L))
        layer_patches = sum(patches // 2 ** (flow.d * s) for s in range(scales))
        layer_patches *= flow.n_disentanglers + 1
    else:
        layer_patches = patches * flow.depth
    per_coupling = 2 * flow.mlp_depth * (flow.hidden_s + flow.hidden_t) + 4 * 2**flow.d
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
