"""End-to-end jobs behind the command line: build, train, evaluate, report."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from neuralrg.config import RunConfig, resolve_device, validate_run_config
from neuralrg.exact import exact_ising
from neuralrg.flows.flow import Flow, build_flow
from neuralrg.plots import plot_training_curve
from neuralrg.runs import RunDirectory
from neuralrg.targets import build_target
from neuralrg.targets.ising import RelaxedIsing
from neuralrg.training import Trainer, fit, relative_gap

EVAL_SAMPLES = 8192


@dataclass
class Model:
    """A flow with its target, built from a run configuration."""

    config: RunConfig
    flow: Flow
    target: RelaxedIsing

    @classmethod
    def build(cls, config: RunConfig) -> Model:
        validate_run_config(config)
        torch.manual_seed(config.train.seed)
        device = resolve_device(config.device)
        flow = build_flow(config.flow).to(device=device, dtype=config.torch_dtype)
        return cls(config, flow, build_target(config.target))

    @property
    def flow_device(self) -> torch.device:
        return next(self.flow.parameters()).device

    def exact_ln_z(self) -> float | None:
        """Exact ln Z of the relaxed model (Ising ln Z minus the shift c), when known."""
        t = self.config.target
        return exact_ising(t.L, t.T, t.d).ln_z - self.target.ln_z_shift


@torch.no_grad()
def log_weights(flow: Flow, target, n: int, batch_size: int, generator=None) -> torch.Tensor:
    """ln pi(x) - ln q(x) for ``n`` flow samples, in float64, drawn in batches."""
    chunks = []
    for start in range(0, n, batch_size):
        x, log_q = flow.sample(min(batch_size, n - start), generator)
        chunks.append((target.log_prob(x) - log_q).double())
    return torch.cat(chunks)


def load_model(run_dir: str | Path) -> tuple[Model, RunDirectory]:
    """Rebuild a trained model from its run directory."""
    run = RunDirectory(run_dir)
    model = Model.build(RunConfig.from_dict(run.read_config()))
    state = run.load_checkpoint(map_location=model.flow_device)
    model.flow.load_state_dict(state["model"])
    return model, run



def train_job(config: RunConfig, run_dir: str | Path, resume: bool = False,
              force: bool = False, progress: bool = True) -> dict:
    """Train (or resume) a run and write its summary, metrics plot and checkpoint."""
    model = Model.build(config)
    run = RunDirectory(run_dir)
    run.start(config.to_dict(), resume=resume, force=force)
    trainer = Trainer(model.flow, model.target.log_prob, config.train)
    if resume and run.has_checkpoint():
        trainer.load_state_dict(run.load_checkpoint(map_location=model.flow_device))
        run.truncate_metrics(trainer.step)
    exact = model.exact_ln_z()
    result = fit(trainer, run, exact, progress=progress)
    summary = evaluate(model, trainer, exact)
    summary.update(stopped_reason=result.stopped_reason, wall_seconds=result.wall_seconds)
    run.write_summary(summary)
    metrics = run.read_metrics()
    if metrics:
        plot_training_curve(metrics, exact, run.file("loss.png"), _title(config))
    return summary


def evaluate(model: Model, trainer: Trainer, exact: float | None) -> dict:
    """Variational bound from fresh samples, against the exact value."""
    t, flow = model.config.target, model.flow
    start = time.perf_counter()
    weights = log_weights(flow, model.target, EVAL_SAMPLES, model.config.train.batch_size,
                          trainer.generator)
    finite = weights[torch.isfinite(weights)]
    bound = float(finite.mean()) if len(finite) else math.nan
    err = float(finite.std() / math.sqrt(len(finite))) if len(finite) > 1 else math.nan
    shift = model.target.ln_z_shift
    return {
        "L": t.L, "T": t.T, "d": t.d, "layout": model.config.flow.layout,
        "steps": trainer.step, "skipped_steps": trainer.skipped_steps,
        "eval_samples": len(finite), "eval_seconds": time.perf_counter() - start,
        "ln_z_bound": bound, "ln_z_bound_err": err, "ln_z_exact": exact,
        "relative_gap": relative_gap(bound, exact),
        "ising_ln_z_bound": bound + shift,
        "ising_ln_z_exact": None if exact is None else exact + shift,
        "ln_z_shift": shift,
    }


def _title(config: RunConfig) -> str:
    t = config.target
    return f"{config.flow.layout.upper()} on {t.L}^{t.d} Ising, T={t.T:.4g}"
