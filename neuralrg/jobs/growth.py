"""Lattice growth as jobs: a run seeded from a trained MERA at L/2 (``--init-from``), and
the whole chain L0 -> 2 L0 -> ... -> L in one command (``--grow-from``), each stage a run
directory in ``RUN_DIR/stages``, resumable stage by stage."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from neuralrg.flows.growth import grown_state_dict, growth_mismatch
from neuralrg.jobs.config import EvalConfig, RunConfig
from neuralrg.jobs.runs import RunDirectory
from neuralrg.model import Model


def growth_source(config: RunConfig) -> tuple[RunConfig, RunDirectory]:
    """The run that ``config.init_from`` names, checked to be a valid seed for ``config``:
    same target (but L), temperature, d, dtype and architecture, a MERA at exactly L/2 with
    a checkpoint. ``ValueError`` naming the first mismatch."""
    source = RunDirectory(config.init_from)
    if not source.has_checkpoint():
        raise ValueError(f"init-from={config.init_from!r} holds no trained run (no "
                         "checkpoint.pt)")
    small = RunConfig.from_dict(source.read_config())
    for name in ("name", "d", "options"):
        mine, theirs = getattr(config.target, name), getattr(small.target, name)
        if mine != theirs:
            raise ValueError(f"init-from: target.{name}={mine!r} differs from the {theirs!r} "
                             f"of {source.path}")
    if small.dtype != config.dtype:
        raise ValueError(f"init-from: dtype={config.dtype!r} differs from the "
                         f"{small.dtype!r} of {source.path}")
    problem = growth_mismatch(small.flow, config.flow)
    if problem is not None:
        raise ValueError(f"init-from: {problem} ({source.path})")
    return small, source


def grow_into(model: Model, config: RunConfig) -> None:
    """Seed ``model`` from the run ``config.init_from`` (see :mod:`neuralrg.flows.growth`)."""
    small, source = growth_source(config)
    state = source.load_checkpoint(map_location=model.flow_device)["model"]
    model.training_density.load_state_dict(grown_state_dict(state, small.flow, config.flow))


STAGES = "stages"
STAGE_EVAL = {"importance_samples": 2048, "therm": 20, "steps": 50}  # a quick look, not the result


def growth_stages(config: RunConfig, run_dir: str | Path) -> list[tuple[RunConfig, Path]]:
    """The runs of a growth chain L0 -> 2 L0 -> ... -> L (``config.grow_from`` = L0): each
    stage's configuration and directory, the last one being ``run_dir`` itself. The budget
    (steps and, if set, minutes) is split in proportion to each stage's number of sites;
    intermediate stages get a quick evaluation only."""
    L0, L, d = config.grow_from, config.target.L, config.target.d
    problem = _growth_chain_problem(L0, L, config.flow.layout)
    if problem is not None:
        raise ValueError(problem)
    sizes = [L0 * 2**k for k in range(int(math.log2(L // L0)) + 1)]
    weights = [size**d / sum(s**d for s in sizes) for size in sizes]
    stages, previous = [], None
    for size, weight in zip(sizes, weights, strict=True):
        last = size == L
        train = replace(config.train, steps=max(1, round(config.train.steps * weight)),
                        minutes=None if config.train.minutes is None
                        else config.train.minutes * weight)
        quick = EvalConfig(replace(config.eval.sampling, **STAGE_EVAL))
        stage = replace(config, target=replace(config.target, L=size),
                        flow=replace(config.flow, L=size), train=train,
                        eval=config.eval if last else quick, init_from=previous, grow_from=None)
        path = Path(run_dir) if last else Path(run_dir) / STAGES / f"L{size}"
        stages.append((stage, path))
        previous = str(path.resolve())
    return stages


def _growth_chain_problem(L0: object, L: int, layout: str) -> str | None:
    if layout != "mera":
        return f"grow-from needs the MERA layout, got layout={layout!r}"
    if isinstance(L0, bool) or not isinstance(L0, int) or L0 < 2 or L0 & (L0 - 1):
        return f"grow-from={L0!r} must be a power of 2 >= 2"
    if not L0 < L:
        return f"grow-from={L0} must be smaller than L={L}"
    return None
