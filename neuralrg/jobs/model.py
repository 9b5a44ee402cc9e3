"""The model of a run: built from its configuration, reloaded from its directory."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from neuralrg.flows.flow import build_flow
from neuralrg.jobs.config import RunConfig, resolve_device, validate_run_config
from neuralrg.model import Model
from neuralrg.runs import RunDirectory
from neuralrg.targets import build_target, is_user_spec

IDENTITY_SECTIONS = ("target", "flow")  # what a checkpoint must share with its run


@dataclass
class RunModel(Model):
    """A :class:`~neuralrg.model.Model` with the :class:`RunConfig` it was built from."""

    config: RunConfig = field(default_factory=RunConfig)

    @classmethod
    def build(cls, config: RunConfig) -> RunModel:
        validate_run_config(config)
        torch.manual_seed(config.train.seed)
        device = resolve_device(config.device)
        flow = build_flow(config.flow).to(device=device, dtype=config.torch_dtype)
        return cls(flow, build_target(config.target), config.flow.z2_symmetric, config)


def check_user_target(config: RunConfig, named: str | None, run: RunDirectory) -> None:
    """A run made with a user's target is reopened only when the user names that target
    again (``named``): loading it imports their module, i.e. runs their code."""
    spec = config.target.name
    if is_user_spec(spec) and named != spec:
        raise ValueError(f"run directory {run.path} was made with the user target {spec!r}; "
                         f"name it again (--target {spec}) to load it: importing it runs its "
                         "code")


def load_model(run_dir: str | Path, device: str | None = None,
               target: str | None = None) -> tuple[RunModel, RunDirectory]:
    """Rebuild a trained model from its run directory (refusing a foreign checkpoint), on
    ``device`` if given, else on the device it was trained on. ``target`` must name the
    target of a run made with a user's target class (see :func:`check_user_target`)."""
    run = RunDirectory(run_dir)
    config = RunConfig.from_dict(run.read_config())
    check_user_target(config, target, run)
    model = RunModel.build(config if device is None else replace(config, device=device))
    state = run.load_checkpoint(map_location=model.flow_device)
    check_checkpoint(state, config.to_dict(), run)
    model.trained.load_state_dict(state["model"])
    return model, run


def check_checkpoint(state: dict[str, Any], config: dict[str, Any], run: RunDirectory,
                     sections: tuple[str, ...] = IDENTITY_SECTIONS) -> None:
    """``ValueError`` unless the checkpoint was made by a run with the same ``sections`` of
    the configuration (fields newer than the checkpoint pass)."""
    saved = json.loads(state.get("config", "{}"))
    for section in sections:
        stored, expected = _flat(saved.get(section, {})), _flat(config.get(section, {}))
        for key, value in expected.items():
            if key in stored and stored[key] != value:
                name = f"{section}.{key}" if key else section
                raise ValueError(f"checkpoint in {run.path} was made with {name}="
                                 f"{stored[key]!r}, but the run's config has {value!r}")


def _flat(section: Any) -> dict[str, Any]:
    """A config section with its ``options`` spread out (checkpoints of older runs store the
    target's options flat)."""
    if not isinstance(section, dict):
        return {"": section}
    return {**{k: v for k, v in section.items() if k != "options"},
            **section.get("options", {})}
