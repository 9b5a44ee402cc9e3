"""Warm starts: a run that starts from the trained flow of a run with the same target class,
lattice and architecture at other values of the target's options (a neighbouring
temperature or coupling): ``RunConfig.warm_from``. Its optimiser starts afresh."""

from __future__ import annotations

from neuralrg.jobs.config import RunConfig
from neuralrg.jobs.runs import RunDirectory
from neuralrg.model import Model


def warm_source(config: RunConfig) -> tuple[RunConfig, RunDirectory]:
    """The run ``config.warm_from`` names, checked to be a valid start for ``config``: a
    checkpoint, the same target class, L, d, dtype and flow. ``ValueError`` naming the first
    mismatch."""
    if config.init_from is not None or config.grow_from is not None:
        raise ValueError("warm-from excludes init-from and grow-from: a run starts from one "
                         "trained run")
    source = RunDirectory(config.warm_from)
    if not source.has_checkpoint():
        raise ValueError(f"warm-from={config.warm_from!r} holds no trained run (no "
                         "checkpoint.pt)")
    other = RunConfig.from_dict(source.read_config())
    mine, theirs = config.target, other.target
    for name, a, b in (("target.name", mine.name, theirs.name), ("L", mine.L, theirs.L),
                       ("d", mine.d, theirs.d), ("dtype", config.dtype, other.dtype)):
        if a != b:
            raise ValueError(f"warm-from: {name}={a!r} differs from the {b!r} of {source.path}")
    if config.flow != other.flow:
        raise ValueError(f"warm-from: the flow configuration differs from that of "
                         f"{source.path}; a warm start needs the same architecture")
    return other, source


def warm_into(model: Model, config: RunConfig) -> None:
    """Load the trained flow of ``config.warm_from`` into ``model``."""
    _, source = warm_source(config)
    state = source.load_checkpoint(map_location=model.flow_device)["model"]
    model.training_density.load_state_dict(state)
