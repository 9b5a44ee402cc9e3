"""A model kept on disk: ``neuralrg.save(model, path)`` writes it as a run directory
(``config.json`` and ``checkpoint.pt``, atomically, under the directory's lock), which
``neuralrg.load(path)`` reopens and the command line's ``sample``, ``analyze`` and ``report``
work on like any trained run.

>>> import tempfile, torch, neuralrg
>>> model = neuralrg.Model.of(neuralrg.RelaxedIsing(4), neuralrg.FlowConfig(hidden_s=8))
>>> path = neuralrg.save(model, tempfile.mkdtemp() + "/ising4")
>>> again = neuralrg.load(path)
>>> x = torch.ones(1, 4, 4)
>>> bool(torch.allclose(again.sampler.log_prob(x), model.sampler.log_prob(x)))
True
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from neuralrg.jobs.config import DTYPES, RunConfig
from neuralrg.jobs.model import RunModel, load_model
from neuralrg.jobs.runs import RunDirectory
from neuralrg.model import Model
from neuralrg.targets import TARGETS, TargetConfig, option_defaults


def save(model: Model, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``model`` to the run directory ``path`` and return it; a directory that holds
    another run is refused unless ``force``. The target must be a registered one (its
    options are read from the instance), and the flow built by :meth:`Model.of`."""
    config = model.config if isinstance(model, RunModel) else run_config_of(model)
    run = RunDirectory(path)
    with run.writing():
        run.start(config.to_dict(), resume=False, force=force)
        run.save_checkpoint({"model": model.training_density.state_dict(),
                             "config": json.dumps(config.to_dict())})
    return run.path


def load(path: str | os.PathLike, device: str | None = None,
         target: str | None = None) -> RunModel:
    """The model kept in the run directory ``path`` (one written by :func:`save` or by
    ``neuralrg train``), on ``device`` if given; ``target`` as in
    :func:`~neuralrg.jobs.model.load_model`."""
    return load_model(path, device, target)[0]


def run_config_of(model: Model) -> RunConfig:
    """The run configuration that rebuilds ``model``."""
    if model.flow_config is None:
        raise ValueError("save needs the FlowConfig the flow was built from: make the model "
                         "with Model.of(target, config)")
    dtype = {v: k for k, v in DTYPES.items()}[next(model.flow.parameters()).dtype]
    return RunConfig(target=target_config_of(model.target),
                     flow=replace(model.flow_config, symmetrise=model.symmetrise),
                     dtype=dtype, device=str(model.flow_device))


def target_config_of(target) -> TargetConfig:
    """The :class:`TargetConfig` of a registered target instance: its registry name, lattice
    and options (read from the attributes of the same names)."""
    names = [name for name, cls in TARGETS.items() if cls is type(target)]
    if not names:
        raise ValueError(f"save needs a registered target; register {type(target).__name__} "
                         "first (neuralrg.register_target(name, cls))")
    missing = [k for k in option_defaults(type(target)) if not hasattr(target, k)]
    if missing:
        raise ValueError(f"{type(target).__name__} keeps no attribute {missing[0]!r} for its "
                         "option of that name, so it cannot be saved")
    shape = tuple(target.event_shape)
    options = {k: getattr(target, k) for k in option_defaults(type(target))}
    return TargetConfig(names[0], L=shape[0], d=len(shape), options=options)
