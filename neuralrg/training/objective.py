"""The training objective: the seed's loss terms, combinable with weights.

loss = omega * E_q[ln q(x) - beta_t ln pi(x)]              (probability density distillation)
     + delta * E_buffer[-ln q(x)]                           (NLL of Metropolis samples)
     - epsilon * E[min(0, w(x') - w(x))],  w = ln pi - ln q  (log acceptance of flow proposals)
     + forward_t * E_pi[-ln q(x)]                           (NLL of exact equilibrium samples)

beta_t rises linearly from ``beta`` to 1 over the first half of training. The
Metropolis chain behind the delta and epsilon terms uses each step's fresh
flow samples as proposals; its accepted states (and, for a Z2-symmetric
target, their sign-flipped copies) fill a replay buffer of ``buffer_factor``
batches.

The forward term needs a target with exact equilibrium moves (``exact_move``, e.g. the
relaxed Ising model's cluster moves): ``forward_samples`` chains of such moves, one move
per application of the term, supply samples of pi itself. Their negative log-likelihood
under the sampling density (the Z2-symmetrised mixture for a symmetric target, so that the
plain flow may keep to one sector) is mass-covering: it pulls q over the parts of pi that reverse KL
leaves out, which is what the Pareto k of the importance weights measures. Its weight
``forward_t`` is ``forward`` throughout (``forward_schedule="constant"``) or falls linearly
to 0 over training (``"decay"``). With ``forward_every = K`` the term is applied (and its
chains moved) on every K-th step only, at weight ``forward_t`` there, so its mean weight per
step is ``forward_t / K`` for a K-th of the cost: the flow meets pi's tails now and then
instead of being pulled towards them at every step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralrg.flows.symmetry import Z2SymmetricFlow
from neuralrg.mcmc.metropolis import MetropolisState, metropolis_accept
from neuralrg.validation import check_choice, check_int, check_real

LogProb = Callable[[Tensor], Tensor]
ExactMove = Callable[[Tensor, torch.Generator], Tensor]
TRAIN_SITES_PER_CHUNK = 2**16
FORWARD_SCHEDULES = ("constant", "decay")
FORWARD_BURN_IN = 20  # exact moves from the first flow samples before the term starts


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms (seed names: -omega, -delta, -epsilon, -beta)."""

    omega: float = 1.0
    delta: float = 0.0
    epsilon: float = 0.0
    beta: float = 1.0
    buffer_factor: int = 10
    forward: float = 0.0
    forward_schedule: str = "constant"
    forward_samples: int = 64
    forward_every: int = 1

    def __post_init__(self) -> None:
        validate_loss_config(self)


def validate_loss_config(config: LossConfig) -> None:
    """Raise ``ValueError`` naming the first bad field of ``config``."""
    for name in ("omega", "delta", "epsilon", "forward"):
        check_real(name, getattr(config, name), 0, low_open=False)
    if config.omega == config.delta == config.epsilon == config.forward == 0:
        raise ValueError("omega, delta, epsilon and forward are all 0: the loss would be empty")
    check_real("beta", config.beta, 0, 1)
    check_int("buffer_factor", config.buffer_factor, 1)
    check_choice("forward_schedule", config.forward_schedule, FORWARD_SCHEDULES)
    check_int("forward_samples", config.forward_samples, 1)
    check_int("forward_every", config.forward_every, 1)


@dataclass
class StepOutcome:
    """What one evaluation of the objective produced."""

    loss: Tensor
    log_w: Tensor  # ln pi - ln q of the fresh samples (detached), for the bound
    acceptance: float | None


class Objective:
    """Evaluates the weighted loss; owns the Metropolis chain and the replay buffer."""

    def __init__(self, flow, log_prob: LogProb, config: LossConfig, batch_size: int,
                 z2_symmetric: bool, exact_move: ExactMove | None = None):
        if config.forward > 0 and exact_move is None:
            raise ValueError(f"forward={config.forward!r} needs a target with exact equilibrium "
                             "moves (exact_move); this one has none: use delta instead")
        self.flow, self.log_prob, self.config = flow, log_prob, config
        self.batch_size, self.flip = batch_size, z2_symmetric
        self.chain: dict[str, Tensor] | None = None
        self.buffer: Tensor | None = None
        self.buffer_fill = 0
        self.buffer_next = 0
        self.exact_move = exact_move
        self.equilibrium: Tensor | None = None  # the forward term's chains of exact moves

    @property
    def needs_chain(self) -> bool:
        return self.config.delta > 0 or self.config.epsilon > 0

    def beta_at(self, progress: float) -> float:
        """Inverse-temperature factor at a fraction ``progress`` of training."""
        ramp = min(1.0, 2 * progress)
        return self.config.beta + (1 - self.config.beta) * ramp

    def micro_batches(self, sites_per_sample: int) -> list[int]:
        """Sizes of the pieces of one batch: a pure reverse-KL step on a large lattice is
        split into pieces of about ``TRAIN_SITES_PER_CHUNK`` sites, whose gradients add up
        to the full batch's (less memory, and a per-sample cost that stays linear in the
        number of sites); the Metropolis-based terms need the whole batch at once."""
        if self.needs_chain:
            return [self.batch_size]
        piece = max(1, TRAIN_SITES_PER_CHUNK // sites_per_sample)
        full, rest = divmod(self.batch_size, piece)
        return [piece] * full + ([rest] if rest else [])

    def __call__(self, progress: float, generator: torch.Generator,
                 batch_size: int | None = None) -> StepOutcome:
        x, log_q = self.flow.sample(batch_size or self.batch_size, generator)
        log_pi = self.log_prob(x)
        log_w = (log_pi - log_q).detach()
        loss = self.config.omega * (log_q - self.beta_at(progress) * log_pi).mean()
        acceptance = None
        if self.needs_chain:
            previous = self.chain
            acceptance = self._metropolis(x.detach(), log_w, generator)
            if self.config.epsilon > 0 and previous is not None:
                loss = loss - self.config.epsilon * self._acceptance_term(log_pi - log_q, previous)
            if self.config.delta > 0 and self.buffer_fill >= self.batch_size:
                loss = loss + self.config.delta * self._buffer_nll(generator)
        return StepOutcome(loss, log_w, acceptance)

    def forward_weight(self, progress: float) -> float:
        """Weight of the forward term at a fraction ``progress`` of training."""
        if self.config.forward_schedule == "decay":
            return self.config.forward * max(0.0, 1.0 - progress)
        return self.config.forward

    def auxiliary_loss(self, progress: float, generator: torch.Generator,
                       step: int) -> Tensor | None:
        """The forward term, E_pi[-ln q] on the exact chains after one more move each, times
        its weight; ``None`` when it is off, its weight has fallen to 0, or ``step`` (the
        number of steps taken before this one) is not the last of a ``forward_every``."""
        weight = self.forward_weight(progress)
        if weight == 0 or (step + 1) % self.config.forward_every:
            return None
        with torch.no_grad():
            if self.equilibrium is None:
                x = self.flow.sample(self.config.forward_samples, generator)[0]
                for _ in range(FORWARD_BURN_IN):
                    x = self.exact_move(x, generator)
                self.equilibrium = x
            self.equilibrium = self.exact_move(self.equilibrium, generator)
        return -weight * self._sampling_density().log_prob(self.equilibrium).mean()

    def _sampling_density(self):
        if self.flip and not isinstance(self.flow, Z2SymmetricFlow):
            return Z2SymmetricFlow(self.flow)
        return self.flow

    def _metropolis(self, x: Tensor, log_w: Tensor, generator) -> float:
        if self.chain is None:
            self.chain = {"x": x, "log_w": log_w}
            self._push(x)
            return 1.0
        def state(x: Tensor, log_w: Tensor) -> MetropolisState:  # w = ln pi - ln q as ln pi
            return MetropolisState(x, log_w.double(), torch.zeros_like(log_w, dtype=torch.float64))

        new, accept, _ = metropolis_accept(state(self.chain["x"], self.chain["log_w"]),
                                           state(x, log_w), generator)
        self.chain = {"x": new.x, "log_w": new.log_pi.to(log_w.dtype)}
        self._push(self.chain["x"])
        return float(accept.double().mean())

    def _acceptance_term(self, log_w_new: Tensor, previous: dict[str, Tensor]) -> Tensor:
        x_old = previous["x"]
        log_w_old = self.log_prob(x_old) - self.flow.log_prob(x_old)
        return torch.clamp(log_w_new - log_w_old, max=0).mean()

    def _push(self, x: Tensor) -> None:
        samples = torch.cat([x, -x]) if self.flip else x
        capacity = self.config.buffer_factor * self.batch_size
        if self.buffer is None:
            self.buffer = x.new_zeros(capacity, *x.shape[1:])
        idx = (self.buffer_next + torch.arange(len(samples), device=x.device)) % capacity
        self.buffer[idx] = samples
        self.buffer_next = int((self.buffer_next + len(samples)) % capacity)
        self.buffer_fill = min(capacity, self.buffer_fill + len(samples))

    def _buffer_nll(self, generator) -> Tensor:
        pick = torch.randint(0, self.buffer_fill, (self.batch_size,), generator=generator,
                             device=self.buffer.device)
        return -self.flow.log_prob(self.buffer[pick]).mean()

    def state_dict(self) -> dict:
        return {"chain": self.chain, "buffer": self.buffer, "buffer_fill": self.buffer_fill,
                "buffer_next": self.buffer_next, "equilibrium": self.equilibrium}

    def load_state_dict(self, state: dict) -> None:
        self.chain, self.buffer = state["chain"], state["buffer"]
        self.buffer_fill, self.buffer_next = int(state["buffer_fill"]), int(state["buffer_next"])
        self.equilibrium = state.get("equilibrium")  # absent in checkpoints before the term
