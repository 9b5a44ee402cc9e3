"""One run lifecycle for every training job (``train``, ``mnist``): start or resume the run
directory, fit with metrics and checkpoints written as it goes, roll back to the last good
checkpoint after a failure, evaluate, write the summary and the training curve.

Under ``torchrun`` every rank trains; only rank 0 writes the directory and evaluates.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from neuralrg import distributed
from neuralrg.jobs.model import IDENTITY_SECTIONS, check_checkpoint, loading_checkpoint
from neuralrg.jobs.runs import RunDirectory
from neuralrg.training import Trainer, fit


@dataclass
class Lifecycle:
    """What a job hands to :func:`run_lifecycle`.

    ``module``: what the checkpoints' ``model`` entry restores (the trained density);
    ``evaluate()``: the measurements after training, merged into the summary;
    ``plot(metrics, run)``: figures of the training curve; ``on_log(row)``: extra per-log
    callback (e.g. the seed scripts' epoch lines).
    """

    trainer: Trainer
    module: nn.Module
    config: dict[str, Any]
    evaluate: Callable[[], dict[str, Any]]
    plot: Callable[[list[dict], RunDirectory], None]
    ln_z_exact: float | None = None
    on_log: Callable[[dict], None] | None = None
    sections: tuple[str, ...] = IDENTITY_SECTIONS
    extra_summary: dict[str, Any] = field(default_factory=dict)


def run_lifecycle(job: Lifecycle, run_dir: str | Path, resume: bool = False,
                  force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train ``job`` in ``run_dir`` from start to summary, holding the directory's lock (on
    the main process); returns the summary."""
    run = RunDirectory(run_dir)
    with run.writing() if distributed.is_main_process() else nullcontext():
        return _run(job, run, resume, force, progress)


def _run(job: Lifecycle, run: RunDirectory, resume: bool, force: bool,
         progress: bool) -> dict[str, Any]:
    if distributed.is_main_process():
        run.start(job.config, resume=resume, force=force)
    distributed.barrier()
    if resume:
        _resume(job, run)
    result = fit(job.trainer, job.ln_z_exact, progress=progress,
                 on_log=_logger(run, job.on_log),
                 on_checkpoint=lambda trainer: run.save_checkpoint(trainer.state_dict()))
    summary = {"steps": job.trainer.step, "skipped_steps": job.trainer.skipped_steps,
               "stopped_reason": result.stopped_reason, "wall_seconds": result.wall_seconds,
               "world_size": distributed.world_size(), **job.extra_summary}
    distributed.barrier()
    if distributed.is_main_process():
        _finish(job, run, summary)
    distributed.barrier()
    return summary


def _logger(run: RunDirectory, extra: Callable[[dict], None] | None) -> Callable[[dict], None]:
    def log(row: dict) -> None:
        run.append_metrics(row)
        if extra is not None:
            extra(row)
    return log


def _resume(job: Lifecycle, run: RunDirectory) -> None:
    trainer = job.trainer
    if run.has_checkpoint():
        state = run.load_checkpoint(map_location=next(job.module.parameters()).device)
        check_checkpoint(state, job.config, run, job.sections)
        with loading_checkpoint(run):
            trainer.load_state_dict(state)
    if distributed.rank() > 0:  # checkpoints hold rank 0's random state
        seed = distributed.rank_seed(trainer.config.seed + trainer.step, distributed.rank())
        trainer.generator.manual_seed(seed)
    if distributed.is_main_process():
        print(_resume_message(run.has_checkpoint(), trainer.step,
                              run.truncate_metrics(trainer.step)), flush=True)


def _resume_message(checkpoint: bool, step: int, dropped: int) -> str:
    """What a resume continues from and what it redoes.

    >>> _resume_message(True, 200, 3)
    'resuming from step 200; 3 logged rows after it redone'
    """
    rows = f"{dropped} logged row{'s' * (dropped != 1)}"
    if checkpoint:
        return f"resuming from step {step}; {rows} after it redone"
    return (f"no checkpoint yet (the run stopped before its first one): restarting from step "
            f"0; {rows} dropped")


def _finish(job: Lifecycle, run: RunDirectory, summary: dict) -> None:
    """Roll back if needed, evaluate, write the summary and the training curve."""
    if summary["stopped_reason"] != "completed":
        summary.update(_roll_back(job, run))
    if summary.get("evaluated_step", job.trainer.step) is not None:
        summary.update(job.evaluate())
    run.write_summary(summary)
    metrics = run.read_metrics()
    if metrics:
        job.plot(metrics, run)


def _roll_back(job: Lifecycle, run: RunDirectory) -> dict:
    """After a failed run: reload the last good checkpoint (if any) for the evaluation."""
    if not run.has_checkpoint():
        return {"evaluated_step": None}
    state = run.load_checkpoint(map_location=next(job.module.parameters()).device)
    check_checkpoint(state, job.config, run, job.sections)
    with loading_checkpoint(run):
        job.module.load_state_dict(state["model"])
    return {"evaluated_step": int(state["step"])}
