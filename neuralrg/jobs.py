"""End-to-end jobs behind the command line: build, train, evaluate, report."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from neuralrg import distributed
from neuralrg.config import RunConfig, resolve_device, validate_run_config
from neuralrg.estimators import (
    PARETO_K_MIN_SAMPLES,
    Estimate,
    ess_per_sample,
    pareto_k,
    variational_bound,
)
from neuralrg.exact import exact_ising
from neuralrg.flows.flow import Flow, build_flow, sampling_density
from neuralrg.flows.growth import grown_state_dict, growth_mismatch
from neuralrg.flows.symmetry import Z2SymmetricFlow
from neuralrg.plots import plot_training_curve
from neuralrg.runs import RunDirectory
from neuralrg.sampling import flow_draws
from neuralrg.sampling import measure as summarise_measurement
from neuralrg.targets import Z2_TARGETS, Phi4, RelaxedIsing, ToyDensity, build_target
from neuralrg.training import Trainer, fit, gap_per_site, relative_gap

EVAL_CHUNK = 1024  # samples per batch when evaluating (no gradients, so larger is cheaper)


@dataclass
class Model:
    """A flow with its target, built from a run configuration."""

    config: RunConfig
    flow: Flow
    target: RelaxedIsing | Phi4 | ToyDensity

    @property
    def is_ising(self) -> bool:
        return isinstance(self.target, RelaxedIsing)

    @property
    def z2_symmetric(self) -> bool:
        """Whether pi(x) = pi(-x)."""
        return self.config.target.name in Z2_TARGETS

    @property
    def sampler(self) -> Flow | Z2SymmetricFlow:
        """The density used for sampling and estimation (see ``FlowConfig.z2_symmetric``)."""
        return sampling_density(self.flow, self.config.flow)

    @property
    def trained(self) -> Flow | Z2SymmetricFlow:
        """The density the training loss sees."""
        return self.sampler if self.config.flow.z2_symmetric == "train" else self.flow

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
        """Exact ln Z of the target when known: the relaxed Ising model (Ising ln Z minus
        the shift c) or a toy density (quadrature); ``None`` for phi^4."""
        if self.is_ising:
            t = self.config.target
            return exact_ising(t.L, t.T, t.d).ln_z - self.target.ln_z_shift
        if isinstance(self.target, ToyDensity):
            return self.target.quadrature_ln_z()
        return None


def load_model(run_dir: str | Path, device: str | None = None) -> tuple[Model, RunDirectory]:
    """Rebuild a trained model from its run directory (refusing a foreign checkpoint),
    on ``device`` if given, else on the device it was trained on."""
    run = RunDirectory(run_dir)
    config = RunConfig.from_dict(run.read_config())
    model = Model.build(config if device is None else replace(config, device=device))
    restore(model, run.load_checkpoint(map_location=model.flow_device), run)
    return model, run


def restore(model: Model, state: dict, run: RunDirectory, trainer: Trainer | None = None) -> None:
    """Load a checkpoint into ``model`` (and ``trainer``) after checking it belongs to this run."""
    saved = json.loads(state.get("config", "{}"))
    expected = model.config.to_dict()
    for section in ("target", "flow"):
        stored = saved.get(section, {})
        for key, value in expected[section].items():
            if key in stored and stored[key] != value:  # fields newer than the file pass
                raise ValueError(
                    f"checkpoint in {run.path} was made with {section}.{key}="
                    f"{stored[key]!r}, but the run's config has {value!r}"
                )
    if trainer is None:
        model.trained.load_state_dict(state["model"])
    else:
        trainer.load_state_dict(state)


def growth_source(config: RunConfig) -> tuple[RunConfig, RunDirectory]:
    """The run that ``config.init_from`` names, checked to be a valid seed for ``config``:
    same target (but L), temperature, d, dtype and architecture, a MERA at exactly L/2 with
    a checkpoint. ``ValueError`` naming the first mismatch."""
    source = RunDirectory(config.init_from)
    if not source.has_checkpoint():
        raise ValueError(f"init-from={config.init_from!r} holds no trained run (no "
                         "checkpoint.pt)")
    small = RunConfig.from_dict(source.read_config())
    for name, value in asdict(small.target).items():
        if name != "L" and getattr(config.target, name) != value:
            raise ValueError(f"init-from: target.{name}={getattr(config.target, name)!r} "
                             f"differs from the {value!r} of {source.path}")
    if small.dtype != config.dtype:
        raise ValueError(f"init-from: dtype={config.dtype!r} differs from the "
                         f"{small.dtype!r} of {source.path}")
    problem = growth_mismatch(small.flow, config.flow)
    if problem is not None:
        raise ValueError(f"init-from: {problem} ({source.path})")
    return small, source


def _grow(model: Model) -> None:
    """Seed ``model`` from its ``init_from`` run (see :mod:`neuralrg.flows.growth`)."""
    small, source = growth_source(model.config)
    state = source.load_checkpoint(map_location=model.flow_device)["model"]
    model.trained.load_state_dict(grown_state_dict(state, small.flow, model.config.flow))


STAGES = "stages"
STAGE_EVAL = {"samples": 2048, "mc_therm": 20, "mc_steps": 50}  # a quick look, not the result


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
        stage = replace(config, target=replace(config.target, L=size),
                        flow=replace(config.flow, L=size), train=train,
                        eval=config.eval if last else replace(config.eval, **STAGE_EVAL),
                        init_from=previous, grow_from=L0 if last else None)
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


def grow_job(config: RunConfig, run_dir: str | Path, resume: bool = False,
             force: bool = False, progress: bool = True) -> dict:
    """Train the growth chain of ``config`` (see :func:`growth_stages`), stage by stage; a
    stage that completed is kept, an interrupted one resumes. Returns the last summary."""
    stages = growth_stages(config, run_dir)
    final_config, final_dir = stages[-1]
    run = RunDirectory(final_dir)
    if distributed.is_main_process():
        run.start(final_config.to_dict(), resume=resume, force=force)
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
    return train_job(final_config, final_dir, resume=True, progress=progress)


def train_job(config: RunConfig, run_dir: str | Path, resume: bool = False,
              force: bool = False, progress: bool = True, epoch_log: bool = False,
              on_log: Callable[[dict, Model, Trainer], None] | None = None) -> dict:
    """Train (or resume) a run and write its summary, metrics plot and checkpoint.

    Under ``torchrun`` every rank trains on its share of the batch; only rank 0 writes
    the run directory and evaluates.
    """
    model = Model.build(config)
    if config.init_from is not None:
        _grow(model)  # a checkpoint of this run, on resume, replaces it below
    distributed.broadcast_parameters(model.flow)
    run = RunDirectory(run_dir)
    if distributed.is_main_process():
        run.start(config.to_dict(), resume=resume, force=force)
    distributed.barrier()
    trainer = Trainer(model.trained, model.target.log_prob, config.train, config.loss,
                      flip_symmetric=config.target.name in Z2_TARGETS,
                      config_json=json.dumps(config.to_dict()))
    if resume:
        _resume(model, run, trainer)
    exact = model.exact_ln_z()
    callbacks = [_epoch_printer(model, trainer)] if epoch_log else []
    if on_log is not None:
        callbacks.append(lambda row: on_log(row, model, trainer))
    result = fit(trainer, run, exact, progress=progress and not epoch_log,
                 on_log=lambda row: [callback(row) for callback in callbacks])
    summary = {"steps": trainer.step, "skipped_steps": trainer.skipped_steps,
               "stopped_reason": result.stopped_reason, "wall_seconds": result.wall_seconds,
               "world_size": distributed.world_size()}
    distributed.barrier()
    if distributed.is_main_process():
        _finish(model, run, trainer, summary, exact)
    distributed.barrier()
    return summary


def _resume(model: Model, run: RunDirectory, trainer: Trainer) -> None:
    if run.has_checkpoint():
        restore(model, run.load_checkpoint(map_location=model.flow_device), run, trainer)
    if distributed.rank() > 0:  # checkpoints hold rank 0's random state
        seed = distributed.rank_seed(model.config.train.seed + trainer.step, distributed.rank())
        trainer.generator.manual_seed(seed)
    if distributed.is_main_process():
        run.truncate_metrics(trainer.step)


def _finish(model: Model, run: RunDirectory, trainer: Trainer, summary: dict,
            exact: float | None) -> None:
    """Roll back if needed, evaluate, and write the summary and the loss plot."""
    if summary["stopped_reason"] != "completed":
        summary.update(_roll_back(model, run, trainer))
    if summary.get("evaluated_step", trainer.step) is not None:
        summary.update(evaluate(model, trainer.generator, exact))
    run.write_summary(summary)
    metrics = run.read_metrics()
    if metrics:
        plot_training_curve(metrics, exact, run.file("loss.png"), _title(model.config))


def _roll_back(model: Model, run: RunDirectory, trainer: Trainer) -> dict:
    """After a failed run: reload the last good checkpoint (if any) for the evaluation."""
    if not run.has_checkpoint():
        return {"evaluated_step": None}
    state = run.load_checkpoint(map_location=model.flow_device)
    restore(model, state, run)
    return {"evaluated_step": int(state["step"])}


def evaluate(model: Model, generator: torch.Generator, exact: float | None) -> dict:
    """Bound and importance sampling from fresh flow samples, then a Markov-chain run for
    the acceptance, the observables and ln Z, each with its verdict (see
    :func:`neuralrg.sampling.summarise`)."""
    config, flow = model.config, model.sampler
    start = time.perf_counter()
    chunk = max(config.train.batch_size, EVAL_CHUNK)
    weights, moments = flow_draws(model, config.eval.samples, chunk, generator)
    finite = weights[torch.isfinite(weights)]
    bound = _bound(finite)
    summary = {
        "target": config.target.name, "L": config.target.L, "T": config.target.T,
        "d": config.target.d, "layout": config.flow.layout, "eval_samples": len(weights),
        "nonfinite_eval_samples": len(weights) - len(finite),
        "ln_z_bound": bound.value, "ln_z_bound_err": bound.err, "ln_z_exact": exact,
        "ln_z_bound_consistent": None if exact is None or not math.isfinite(bound.value)
        else bool(bound.value <= exact + 4 * bound.err),
        "relative_gap": relative_gap(bound.value, exact),
        "gap_per_site": gap_per_site(bound.value, exact, math.prod(flow.event_shape)),
        "ess_per_sample": ess_per_sample(finite) if len(finite) else 0.0,
        "pareto_k": pareto_k(finite) if len(finite) >= PARETO_K_MIN_SAMPLES else None,
    }
    if model.is_ising:
        shift = model.target.ln_z_shift
        summary.update(ising_ln_z_bound=bound.value + shift, ln_z_shift=shift,
                       ising_ln_z_exact=None if exact is None else exact + shift)
    summary.update(measure(model, generator, (weights, moments)))
    summary["eval_seconds"] = time.perf_counter() - start
    return summary


def _bound(log_w: torch.Tensor) -> Estimate:
    if len(log_w) < 2:
        return Estimate(math.nan, math.nan)
    return variational_bound(log_w)


def measure(model: Model, generator: torch.Generator, draws=None) -> dict:
    """The Markov-chain measurement of the run's ``eval`` settings: acceptance, observables
    and ln Z with their verdicts."""
    config = model.config.eval.sample_config(model.config.train.seed)
    return summarise_measurement(model, config, generator, draws)


def _epoch_printer(model: Model, trainer: Trainer):
    """Per-step line in the seed's style: loss, acceptance, <m^2> of the training chain."""
    def show(row: dict) -> None:
        chain = trainer.objective.chain
        m2 = ""
        if chain is not None and model.is_ising:
            spins = model.target.sample_spins(chain["x"].detach(), trainer.generator)
            m2 = f"  m2 {float(spins.flatten(1).mean(1).pow(2).mean()):.4f}"
        acc = "" if row["acceptance"] == "" else f"  acceptance {row['acceptance']:.3f}"
        print(f"epoch {row['step']:6d}  loss {row['loss']:.5f} ± {row['loss_err']:.5f}{acc}{m2}")
    return show


def _title(config: RunConfig) -> str:
    t = config.target
    if t.name == "ising":
        return f"{config.flow.layout.upper()} on {t.L}^{t.d} Ising, T={t.T:.4g}"
    return f"{config.flow.layout.upper()} on {t.name}"
