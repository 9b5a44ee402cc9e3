"""The model of a run: built from its configuration, reloaded from its directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from neuralrg.flows.flow import build_flow
from neuralrg.jobs.config import (
    RunConfig,
    in_config_file,
    load_run_config,
    resolve_device,
    validate_run_config,
)
from neuralrg.jobs.runs import CHECKPOINT, RunDirectory
from neuralrg.model import Model
from neuralrg.targets import build_target

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
        return cls(flow, build_target(config.target), config.flow.symmetrise, config.flow, config)


def load_model(run_dir: str | Path, device: str | None = None,
               target: str | None = None) -> tuple[RunModel, RunDirectory]:
    """Rebuild a trained model from its run directory (refusing a foreign checkpoint), on
    ``device`` if given, else on the device it was trained on. ``target`` must name the
    target of a run made with a user's target class (see
    :func:`~neuralrg.jobs.config.check_user_target`)."""
    run = RunDirectory(run_dir)
    config = load_run_config(run, target)
    config = config if device is None else replace(config, device=device)
    with in_config_file(run):
        validate_run_config(config)
    model = RunModel.build(config)
    state = run.load_checkpoint(map_location=model.flow_device)
    check_checkpoint(state, config.to_dict(), run)
    with loading_checkpoint(run):
        model.training_density.load_state_dict(state["model"])
    return model, run


@contextmanager
def loading_checkpoint(run: RunDirectory) -> Iterator[None]:
    """A checkpoint that does not fit what the block loads it into (missing or foreign
    entries, wrong shapes) as one ``ValueError`` naming the file."""
    try:
        yield
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
        raise ValueError(f"checkpoint {run.file(CHECKPOINT)} does not fit this run "
                         f"({type(error).__name__}: {gist(error)})") from None


def gist(error: Exception, limit: int = 240) -> str:
    """The message of ``error`` on one line, shortened at a word with "..." if long.

    >>> gist(RuntimeError("Missing key(s):\\n\\t" + " ".join(f"k{i}" for i in range(99))), 30)
    'Missing key(s): k0 k1 k2 ...'
    """
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) <= limit:
        return text
    return text[: text.rfind(" ", 0, limit - 3)] + " ..."


def check_checkpoint(state: dict[str, Any], config: dict[str, Any], run: RunDirectory,
                     sections: tuple[str, ...] = IDENTITY_SECTIONS) -> None:
    """``ValueError`` unless the checkpoint was made by a run with the same ``sections`` of
    the configuration (fields newer than the checkpoint pass)."""
    try:
        saved = json.loads(state.get("config", "{}"))
    except (TypeError, ValueError):
        saved = None
    if not isinstance(saved, dict):
        raise ValueError(f"checkpoint {run.file(CHECKPOINT)} does not record the configuration "
                         "it was made with; it is not a neuralrg checkpoint")
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
