"""Variational training by probability density distillation.

Minimises L = E_q[ln q(x) - ln pi(x)] >= -ln Z with Adam. The loop reports through
callbacks (metrics rows, checkpoints: the run lifecycle in :mod:`neuralrg.jobs` writes them),
shows its progress and stops cleanly on non-finite values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralrg import distributed
from neuralrg.flows.flow import Flow
from neuralrg.progress import Progress
from neuralrg.training.objective import ExactMove, LossConfig, Objective
from neuralrg.validation import check_choice, check_int, check_real

LogProb = Callable[[Tensor], Tensor]
LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. With ``minutes`` set, training also stops once that much
    training wall time has passed, and the cosine schedule follows whichever of steps and
    time runs out first."""

    steps: int = 1500
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    minutes: float | None = None
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    max_bad_steps: int = 5

    def __post_init__(self) -> None:
        validate_train_config(self)


def validate_train_config(config: TrainConfig) -> None:
    """Raise ``ValueError`` naming the first bad field of ``config``."""
    for name in ("steps", "batch_size", "log_every", "checkpoint_every", "max_bad_steps"):
        check_int(name, getattr(config, name), 1)
    check_real("lr", config.lr, 0)
    check_real("weight_decay", config.weight_decay, 0, low_open=False)
    if config.minutes is not None:
        check_real("minutes", config.minutes, 0)
    check_choice("lr_schedule", config.lr_schedule, LR_SCHEDULES)
    check_int("seed", config.seed, 0)


def cosine_factor(progress: float) -> float:
    """Learning-rate factor of the cosine schedule: 1 at the start, 0 at ``progress`` 1.

    >>> cosine_factor(0.0), cosine_factor(0.5), cosine_factor(1.0)
    (1.0, 0.5, 0.0)
    """
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def all_finite(tensors) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors if t is not None)


class NonFiniteParameters(RuntimeError):
    """The optimiser produced non-finite parameters; the run must roll back."""


class Trainer:
    """Owns the flow, optimiser, schedule and sampling RNG of one training run.

    ``objective`` replaces the reverse-KL :class:`Objective` (then ``log_prob`` may be
    ``None``): any callable ``(progress, generator) -> StepOutcome`` with ``state_dict`` and
    ``load_state_dict``, e.g. a maximum-likelihood loss on data (``neuralrg.images``).
    ``max_grad_norm`` (optional) clips the global gradient norm before each Adam step.
    """

    def __init__(self, flow: Flow, log_prob: LogProb | None, config: TrainConfig,
                 loss: LossConfig | None = None, z2_symmetric: bool = False,
                 config_json: str = "{}", objective: Objective | None = None,
                 max_grad_norm: float | None = None, exact_move: ExactMove | None = None):
        self.flow, self.log_prob, self.config = flow, log_prob, config
        self.max_grad_norm = max_grad_norm
        self.objective = objective or Objective(flow, log_prob, loss or LossConfig(),
                                                config.batch_size, z2_symmetric, exact_move)
        self.acceptance: float | None = None
        self.config_json = config_json  # stored in checkpoints to recognise foreign ones
        self.optimizer = torch.optim.Adam(
            flow.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        device = next(flow.parameters()).device
        seed = distributed.rank_seed(config.seed, distributed.rank())
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.step, self.bad_steps, self.skipped_steps = 0, 0, 0
        self.seconds = 0.0  # training wall time over all sessions of this run

    @property
    def progress(self) -> float:
        """Fraction of the training budget used: steps, or wall time if that runs out first."""
        done = self.step / self.config.steps
        if self.config.minutes is not None:
            done = max(done, self.seconds / (60 * self.config.minutes))
        return min(done, 1.0)

    def _set_learning_rate(self) -> None:
        factor = 1.0
        if self.config.lr_schedule == "cosine":
            factor = cosine_factor(self.progress)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * factor

    def _pieces(self) -> list[tuple[int, ...]]:
        """Micro-batch sizes when the objective splits its batch, else one whole batch."""
        split = getattr(self.objective, "micro_batches", None)
        if split is None:
            return [()]
        return [(size,) for size in split(math.prod(self.flow.event_shape))]

    def train_step(self) -> Tensor | None:
        """One Adam step; returns the per-sample ln q - ln pi of its fresh samples, or ``None``
        if the step was skipped."""
        self.optimizer.zero_grad(set_to_none=True)
        self._set_learning_rate()
        finite, log_w = True, []
        for piece in self._pieces():
            outcome = self.objective(self.progress, self.generator, *piece)
            self.acceptance = outcome.acceptance
            finite = finite and bool(torch.isfinite(outcome.loss))
            if finite:
                weight = piece[0] / self.objective.batch_size if piece else 1.0
                (outcome.loss * weight).backward()
            log_w.append(outcome.log_w)
        finite = self._auxiliary_backward(finite)
        if distributed.world_size() > 1:  # the same decision and step on every rank
            finite = distributed.average_gradients(self.flow, finite)
        elif finite:
            finite = all_finite(p.grad for p in self.flow.parameters())
        self.step += 1
        if not finite:
            self.bad_steps += 1
            self.skipped_steps += 1
            self.optimizer.zero_grad(set_to_none=True)
            return None
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.flow.parameters(), self.max_grad_norm)
        self.optimizer.step()
        if not all_finite(self.flow.parameters()):
            raise NonFiniteParameters(f"parameters became non-finite at step {self.step}")
        self.bad_steps = 0
        return -torch.cat(log_w)

    def _auxiliary_backward(self, finite: bool) -> bool:
        """Back-propagate the objective's whole-batch terms (e.g. the forward term on exact
        samples), which the micro-batches leave out: ``auxiliary_loss(progress, generator,
        step)`` of the objective, where it has one; returns whether all was finite."""
        auxiliary = getattr(self.objective, "auxiliary_loss", None)
        term = None if auxiliary is None or not finite else auxiliary(
            self.progress, self.generator, self.step)
        if term is None:
            return finite
        if not bool(torch.isfinite(term)):
            return False
        term.backward()
        return True

    def state_dict(self) -> dict:
        return {
            "model": self.flow.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "skipped_steps": self.skipped_steps,
            "seconds": self.seconds,
            "generator": self.generator.get_state(),
            "objective": self.objective.state_dict(),
            "config": self.config_json,
        }

    def load_state_dict(self, state: dict) -> None:
        self.flow.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.skipped_steps = int(state["step"]), int(state["skipped_steps"])
        self.seconds = float(state["seconds"])
        self.generator.set_state(state["generator"])
        self.objective.load_state_dict(state["objective"])


def loss_statistics(losses: Tensor) -> tuple[float, float]:
    """Mean and standard error of per-sample losses, in float64."""
    values = losses.double()
    return float(values.mean()), float(values.std() / math.sqrt(len(values)))


def relative_gap(ln_z_bound: float, ln_z_exact: float | None) -> float | None:
    """(ln Z_exact - bound) / |ln Z_exact|, or ``None`` without an exact value."""
    if ln_z_exact is None:
        return None
    return (ln_z_exact - ln_z_bound) / abs(ln_z_exact)


def gap_per_site(ln_z_bound: float, ln_z_exact: float | None, n_sites: int) -> float | None:
    """(ln Z_exact - bound) / N, or ``None``: the same for the relaxed and the Ising model
    (the shift c is exact), so it compares models across formulations and lattice sizes.

    >>> gap_per_site(9.0, 10.0, 4)
    0.25
    """
    return None if ln_z_exact is None else (ln_z_exact - ln_z_bound) / n_sites


@dataclass
class TrainResult:
    """How a training run ended."""

    steps_done: int
    stopped_reason: str
    wall_seconds: float
    last_losses: Tensor | None


Callback = Callable[[dict], None]


def fit(
    trainer: Trainer,
    ln_z_exact: float | None = None,
    progress: bool = True,
    on_log: Callback | None = None,
    on_checkpoint: Callable[[Trainer], None] | None = None,
) -> TrainResult:
    """Train until the budget runs out and stop cleanly on non-finite values; writes nothing.

    Every ``log_every`` steps ``on_log(row)`` gets the metrics row (step, loss and its error,
    relative gap against ``ln_z_exact``, acceptance, learning rate, skipped steps, seconds);
    every ``checkpoint_every`` steps and at the end ``on_checkpoint(trainer)`` may save
    ``trainer.state_dict()``. Both run on the main process only. ``progress`` shows a bar on
    a terminal and a plain line every few seconds otherwise.
    """
    config = trainer.config
    main_process = distributed.is_main_process()
    bar = Progress(config.steps, trainer.step, enabled=progress and main_process)
    last, reason, tick = None, "completed", time.perf_counter()
    while trainer.progress < 1:
        try:
            losses = trainer.train_step()
        except NonFiniteParameters as error:
            reason = str(error)
            break
        now = time.perf_counter()
        trainer.seconds, tick = distributed.max_over_ranks(trainer.seconds + now - tick), now
        if losses is None:
            bar.update(1)
            if trainer.bad_steps >= config.max_bad_steps:
                reason = f"non-finite loss or gradient in {trainer.bad_steps} consecutive steps"
                break
            continue
        last = losses
        text = None
        if trainer.step % config.log_every == 0 or trainer.progress >= 1:
            row = _metrics_row(trainer, distributed.gather_samples(losses), ln_z_exact)
            text = _postfix(row)
            if on_log is not None and main_process:
                on_log(row)
        bar.update(1, text)
        if on_checkpoint is not None and main_process and _should_checkpoint(trainer):
            on_checkpoint(trainer)
        tick = time.perf_counter()
    bar.close()
    return TrainResult(trainer.step, reason, trainer.seconds, last)


def _should_checkpoint(trainer: Trainer) -> bool:
    return trainer.step % trainer.config.checkpoint_every == 0 or trainer.progress >= 1


def _metrics_row(trainer: Trainer, losses: Tensor, ln_z_exact) -> dict:
    loss, err = loss_statistics(losses)
    gap = relative_gap(-loss, ln_z_exact)
    return {
        "step": trainer.step,
        "loss": loss,
        "loss_err": err,
        "relative_gap": "" if gap is None else gap,
        "acceptance": "" if trainer.acceptance is None else trainer.acceptance,
        "lr": trainer.optimizer.param_groups[0]["lr"],
        "skipped_steps": trainer.skipped_steps,
        "seconds": round(trainer.seconds, 3),
    }


def _postfix(row: dict) -> str:
    text = f"loss {row['loss']:.4f} ± {row['loss_err']:.4f}"
    return text if row["relative_gap"] == "" else f"{text}  gap {row['relative_gap']:.2e}"
