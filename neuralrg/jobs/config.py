"""The full configuration of a run, serialised to ``config.json``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch

from neuralrg.flows.flow import ACTIVATIONS, FlowConfig, check_layout
from neuralrg.flows.layouts import layout_layers, patch_count
from neuralrg.jobs.runs import CONFIG, RunDirectory, json_kind
from neuralrg.measure.sampling import SampleConfig
from neuralrg.targets import TargetConfig, build_target, is_user_spec
from neuralrg.training import TrainConfig
from neuralrg.training.objective import LossConfig
from neuralrg.validation import check_choice, check_int

DTYPES = {"float32": torch.float32, "float64": torch.float64}


OLD_EVAL_NAMES = {"mc_leapfrog": "n_leapfrog", "samples": "importance_samples"}


@dataclass(frozen=True)
class EvalConfig:
    """The measurement after training: ``sampling`` (a
    :class:`~neuralrg.measure.sampling.SampleConfig`, its ``importance_samples`` fresh flow
    samples giving the bound and the importance-sampling estimates; the run's training seed
    replaces its seed)."""

    sampling: SampleConfig = field(default_factory=SampleConfig)

    def __post_init__(self) -> None:
        check_int("eval-samples", self.sampling.importance_samples, 2)

    @property
    def samples(self) -> int:
        return self.sampling.importance_samples

    def sample_config(self, seed: int = 0) -> SampleConfig:
        """The sampler settings of the measurement, with the run's seed."""
        return replace(self.sampling, seed=seed)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalConfig:
        """From ``to_dict`` output, or from the flat fields earlier versions wrote
        (``samples``, ``mc_chains``, ...)."""
        sampling = dict(data.get("sampling", {}))
        for key, value in data.items():
            if key != "sampling":
                if key != "samples" and not key.startswith("mc_"):
                    raise ValueError(f"unknown EvalConfig field(s): {key}")
                sampling[OLD_EVAL_NAMES.get(key, key.removeprefix("mc_"))] = value
        return cls(_build(SampleConfig, sampling))


FLOW_BEFORE_FIELDS = {"coupling": "affine", "context": 0}  # before splines; before context


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

    def __post_init__(self) -> None:  # the flow's lattice left out is the target's
        lattice = (self.target.L,) * self.target.d
        object.__setattr__(self, "flow", self.flow.on_lattice(lattice))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "target": self.target.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """From ``config.json``, also as written by earlier versions (a flow without
        ``coupling`` is the affine flow it was, one without ``context`` has isolated patches;
        flat target options are collected)."""
        parts = {"flow": FlowConfig, "train": TrainConfig, "loss": LossConfig}
        _check_sections(data, ("target", "eval", *parts))
        if "flow" in data:  # fields an earlier version did not write mean what it built
            data = {**data, "flow": {**FLOW_BEFORE_FIELDS, **data["flow"]}}
        if "flow" in data and "z2_symmetric" in data["flow"]:  # the mode's earlier name
            flow = {k: v for k, v in data["flow"].items() if k != "z2_symmetric"}
            data = {**data, "flow": {**flow, "symmetrise": data["flow"]["z2_symmetric"]}}
        kwargs = {k: _build(parts[k], v) if k in parts else v for k, v in data.items()}
        if "eval" in data:
            kwargs["eval"] = EvalConfig.from_dict(data["eval"])
        if "target" in data:
            kwargs["target"] = TargetConfig.from_dict(data["target"])
        return _build(cls, kwargs)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]


def _check_sections(data: dict[str, Any], names: tuple[str, ...]) -> None:
    """``ValueError`` unless each section of a config file (and the target's options) that is
    there is an object of named fields."""
    sections = {name: data[name] for name in names if name in data}
    if isinstance(data.get("target"), dict) and "options" in data["target"]:
        sections["target.options"] = data["target"]["options"]
    if isinstance(data.get("eval"), dict) and "sampling" in data["eval"]:
        sections["eval.sampling"] = data["eval"]["sampling"]
    for name, value in sections.items():
        if not isinstance(value, dict):
            raise ValueError(f"{name} is {json_kind(value)}; expected an object of named fields")


@contextmanager
def in_config_file(run: RunDirectory) -> Iterator[None]:
    """What is wrong with the configuration that the block reads or checks, as one
    ``ValueError`` naming the run's ``config.json``."""
    try:
        yield
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ValueError(f"{run.file(CONFIG)}: {error}") from None


def load_run_config(run: RunDirectory, target: str | None = None) -> RunConfig:
    """The :class:`RunConfig` in the run's ``config.json`` (``ValueError`` naming the file if
    it is missing, damaged, not a run configuration or holds a bad value: each section
    checks itself when it is read). ``target`` names the run's user target (see
    :func:`check_user_target`)."""
    data = run.read_config()
    with in_config_file(run):
        config = RunConfig.from_dict(data)
        check_user_target(config, target, run)
    return config


def check_user_target(config: RunConfig, named: str | None, run: RunDirectory) -> None:
    """A run made with a user's target is reopened only when the user names that target
    again (``named``): loading it imports their module, i.e. runs their code."""
    spec = config.target.name
    if is_user_spec(spec) and named != spec:
        raise ValueError(f"run directory {run.path} was made with the user target {spec!r}; "
                         f"name it again (--target {spec}) to load it: importing it runs its "
                         "code")


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
    check_layout(config.flow)
    check_choice("dtype", config.dtype, tuple(DTYPES))
    resolve_device(config.device)
    check_memory(config)


def training_memory_bytes(config: RunConfig) -> int:
    """Rough peak memory of one training step: the activations every coupling keeps per patch
    for the backward pass (as its block registered them)."""
    flow, batch = config.flow, config.train.batch_size
    layer_patches = patch_count(layout_layers(flow))
    per_coupling = ACTIVATIONS[flow.coupling](flow)
    factor = 2 if flow.symmetrise == "train" else 1
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
