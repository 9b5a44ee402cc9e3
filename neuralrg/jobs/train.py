"""The train job: build a run's model, train it through the run lifecycle, evaluate it."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from neuralrg import distributed
from neuralrg.estimators import (
    PARETO_K_MIN_SAMPLES,
    Estimate,
    ess_per_sample,
    pareto_k,
    variational_bound,
)
from neuralrg.jobs.config import RunConfig
from neuralrg.jobs.growth import STAGES, grow_into, growth_stages
from neuralrg.jobs.lifecycle import Lifecycle, run_lifecycle
from neuralrg.jobs.model import RunModel
from neuralrg.jobs.runs import RunDirectory, save_figure
from neuralrg.jobs.warm import warm_into
from neuralrg.measure.sampling import chain_progress, flow_draws
from neuralrg.measure.summary import measure
from neuralrg.microscope.figures import plot_training_curve
from neuralrg.targets import capability, with_defaults
from neuralrg.training import Trainer, gap_per_site, relative_gap

EVAL_CHUNK = 1024  # samples per batch when evaluating (no gradients, so larger is cheaper)


def train_job(config: RunConfig, run_dir: str | Path, resume: bool = False,
              force: bool = False, progress: bool = True, epoch_log: bool = False,
              on_log: Callable[[dict, RunModel, Trainer], None] | None = None,
              record: RunConfig | None = None) -> dict:
    """Train (or resume) a run and write its summary, metrics plot and checkpoint.

    ``record`` (default ``config``) is the configuration the run directory keeps: the last
    stage of a growth chain keeps the chain's. Under ``torchrun`` every rank draws a batch
    of its own (its own seed) and the gradients are averaged; only rank 0 writes the run
    directory and evaluates.
    """
    model = RunModel.build(config)
    if not (resume and RunDirectory(run_dir).has_checkpoint()):  # else the run's own replaces it
        if config.init_from is not None:
            grow_into(model, config)  # lattice growth from a run at L/2
        elif config.warm_from is not None:
            warm_into(model, config)  # a warm start from a neighbouring temperature
    distributed.broadcast_parameters(model.flow)
    trainer = model.trainer(config.train, config.loss, json.dumps(config.to_dict()))
    exact = model.exact_ln_z()
    callbacks = [_epoch_printer(model, trainer)] if epoch_log else []
    if on_log is not None:
        callbacks.append(lambda row: on_log(row, model, trainer))
    job = Lifecycle(
        trainer, model.training_density, (record or config).to_dict(),
        evaluate=lambda: evaluate_run(model, trainer.generator, exact, progress and not epoch_log),
        plot=lambda metrics, run: save_figure(
            plot_training_curve(metrics, exact, _title(model)), run.file("loss.png")),
        ln_z_exact=exact, on_log=lambda row: [callback(row) for callback in callbacks])
    return run_lifecycle(job, run_dir, resume=resume, force=force,
                         progress=progress and not epoch_log)


def grow_job(config: RunConfig, run_dir: str | Path, resume: bool = False,
             force: bool = False, progress: bool = True) -> dict:
    """Train the growth chain of ``config`` (see :func:`growth_stages`), stage by stage; a
    stage that completed is kept, an interrupted one resumes. Returns the last summary."""
    run = RunDirectory(run_dir)  # locked for the whole chain; each stage locks its own
    with run.writing() if distributed.is_main_process() else nullcontext():
        return _grow(config, run, resume, force, progress)


def _grow(config: RunConfig, run: RunDirectory, resume: bool, force: bool,
          progress: bool) -> dict:
    stages = growth_stages(config, run.path)
    final_config, final_dir = stages[-1]
    if distributed.is_main_process():  # the final directory keeps the chain's configuration
        run.start(config.to_dict(), resume=resume, force=force)
        if force and not resume:
            shutil.rmtree(run.file(STAGES), ignore_errors=True)
    distributed.barrier()
    for stage_config, stage_dir in stages[:-1]:
        stage = RunDirectory(stage_dir)
        if stage.file("summary.json").exists() and \
                stage.read_summary().get("stopped_reason") == "completed":
            continue
        if distributed.is_main_process():
            print(f"growth stage L={stage_config.target.L}: {stage.path}", flush=True)
        summary = train_job(stage_config, stage_dir, resume=stage.exists(), force=force,
                            progress=progress)
        if summary["stopped_reason"] != "completed":
            return summary
    return train_job(final_config, final_dir, resume=True, progress=progress, record=config)


def evaluate_run(model: RunModel, generator: torch.Generator, exact: float | None,
                 progress: bool = True) -> dict:
    """Bound and importance sampling from fresh flow samples, then a Markov-chain run for
    the acceptance, the observables and ln Z, each with its verdict (see
    :func:`neuralrg.measure.summary.summarise`)."""
    config, flow = model.config, model.sampler
    start = time.perf_counter()
    chunk = max(config.train.batch_size, EVAL_CHUNK)
    weights, moments = flow_draws(model, config.eval.samples, chunk, generator)
    finite = weights[torch.isfinite(weights)]
    bound = _bound(finite)
    summary = {
        "L": config.target.L,  # "target" (its description) comes with the measurement
        **with_defaults(config.target).options,
        "d": config.target.d, "layout": config.flow.layout, "eval_samples": len(weights),
        "nonfinite_eval_samples": len(weights) - len(finite),
        "ln_z_bound": bound.value, "ln_z_bound_err": bound.err, "ln_z_exact": exact,
        "ln_z_bound_consistent": None if exact is None or not math.isfinite(bound.value)
        else bool(bound.value <= exact + 4 * bound.err),
        "relative_gap": relative_gap(bound.value, exact),
        "gap_per_site": gap_per_site(bound.value, exact, math.prod(flow.event_shape)),
        "ess_per_sample": ess_per_sample(finite) if len(finite) else 0.0,
        "pareto_k": pareto_k(finite) if len(finite) >= PARETO_K_MIN_SAMPLES else None,
        **capability(model.target, "summary_extras")(bound.value),
    }
    summary.update(measure_run(model, generator, (weights, moments), progress))
    summary["eval_seconds"] = time.perf_counter() - start
    return summary


def _bound(log_w: torch.Tensor) -> Estimate:
    if len(log_w) < 2:
        return Estimate(math.nan, math.nan)
    return variational_bound(log_w)


def measure_run(model: RunModel, generator: torch.Generator, draws=None,
                progress: bool = True) -> dict:
    """The measurement of the run's ``eval`` settings as the summary's entries: acceptance,
    observables and ln Z with their verdicts (the chains' progress shown)."""
    config = model.config.eval.sample_config(model.config.train.seed)
    bar = chain_progress(config, enabled=progress)
    measured = measure(model, config, generator, draws, bar)
    bar.close()
    return measured.to_dict()


def _epoch_printer(model: RunModel, trainer: Trainer):
    """Per-step line in the seed's style: loss, acceptance, <m^2> of the training chain."""
    observables = capability(model.target, "observables")

    def show(row: dict) -> None:
        chain = trainer.objective.chain
        m2 = ""
        if chain is not None and "m2" in observables:
            moments = model.target.observable_moments(chain["x"].detach(), trainer.generator)
            m2 = f"  m2 {float(observables['m2'](moments.mean(1))):.4f}"
        acc = "" if row["acceptance"] == "" else f"  acceptance {row['acceptance']:.3f}"
        print(f"epoch {row['step']:6d}  loss {row['loss']:.5f} ± {row['loss_err']:.5f}{acc}{m2}")
    return show


def _title(model: RunModel) -> str:
    return f"{model.config.flow.layout.upper()} on {capability(model.target, 'describe')()}"
