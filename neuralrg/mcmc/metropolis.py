"""Independent Metropolis-Hastings with a (flow) proposal, batched over chains.

Each chain holds ``x`` and its log-weight ``w(x) = ln pi(x) - ln q(x)``. A step draws one
proposal per chain and accepts it with probability ``min(1, exp(w' - w))``; the stationary
law is ``pi`` whatever ``q`` is (docs/physics.md). A proposal with a non-finite log-weight
(NaN, +-inf) is rejected and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralrg.mcmc.chains import StepCounter, check_run_length, recording_schedule
from neuralrg.mcmc.result import SamplerResult
from neuralrg.validation import check_int

Proposal = Callable[[int], tuple[Tensor, Tensor]]
LogProb = Callable[[Tensor], Tensor]


@dataclass
class MetropolisResult(SamplerResult):
    """Output of :func:`independent_metropolis`.

    ``samples`` is ``(n_steps, n_chains, *event_shape)``; ``log_pi`` and ``log_q``
    (float64) are ``(n_steps, n_chains)``. ``acceptance_per_chain`` (``(n_chains,)``) and
    ``acceptance`` count the sampling phase only: every step after thermalisation, the
    ``n_skip`` discarded ones included. ``n_nonfinite`` counts rejected non-finite
    proposals over all steps, thermalisation included, out of ``n_proposals``;
    ``n_nonfinite_initial`` counts initial states with non-finite log-weight.
    """

    samples: Tensor
    log_pi: Tensor
    log_q: Tensor
    acceptance_per_chain: Tensor
    acceptance: float
    n_nonfinite: int
    n_nonfinite_initial: int
    n_proposals: int

    @property
    def log_w(self) -> Tensor:
        """``ln pi - ln q`` of the samples, ``(n_steps, n_chains)``."""
        return self.log_pi - self.log_q

    @property
    def scored_log_w(self) -> Tensor:
        """:attr:`log_w`: every recorded state was scored by the proposal density."""
        return self.log_w


@dataclass
class MetropolisState:
    """Current states ``x`` of the chains with their ``ln pi`` and ``ln q`` (float64)."""

    x: Tensor
    log_pi: Tensor
    log_q: Tensor

    @property
    def log_w(self) -> Tensor:
        return self.log_pi - self.log_q


def _draw(propose: Proposal, log_prob: LogProb, n: int) -> MetropolisState:
    """Draw ``n`` proposals and evaluate them; checks the proposal's shapes."""
    x, log_q = propose(n)
    if x.ndim < 1 or x.shape[0] != n or tuple(log_q.shape) != (n,):
        raise ValueError(
            f"propose({n}) must return x of shape ({n}, *event) and log_q of shape ({n},), "
            f"got {tuple(x.shape)} and {tuple(log_q.shape)}"
        )
    return _evaluate(x, log_q, log_prob)


def _evaluate(x: Tensor, log_q: Tensor, log_prob: LogProb) -> MetropolisState:
    log_pi = log_prob(x)
    if tuple(log_pi.shape) != (x.shape[0],):
        raise ValueError(f"log_prob must return shape ({x.shape[0]},), got {tuple(log_pi.shape)}")
    return MetropolisState(x, log_pi.to(torch.float64), log_q.to(torch.float64))


def select(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Per chain, ``new`` where ``mask`` else ``old`` (any trailing shape)."""
    return torch.where(mask.view(-1, *([1] * (new.ndim - 1))), new, old)


def metropolis_step(
    state: MetropolisState, propose: Proposal, log_prob: LogProb,
    generator: torch.Generator | None,
) -> tuple[MetropolisState, Tensor, Tensor]:
    """One MH step on every chain; returns the new state, accepted and non-finite masks."""
    return metropolis_accept(state, _draw(propose, log_prob, state.x.shape[0]), generator)


def metropolis_accept(state: MetropolisState, proposal: MetropolisState,
                      generator: torch.Generator | None) -> tuple[MetropolisState, Tensor, Tensor]:
    """Accept each chain's ``proposal`` with probability min(1, exp(w' - w)); returns the new
    state, accepted and non-finite masks (a proposal with a non-finite weight is rejected)."""
    w_new = proposal.log_w
    finite = torch.isfinite(w_new)
    u = torch.rand(len(w_new), generator=generator, dtype=torch.float64, device=w_new.device)
    accept = finite & (torch.log(u) < w_new - state.log_w)
    new_state = MetropolisState(
        select(accept, proposal.x, state.x),
        torch.where(accept, proposal.log_pi, state.log_pi),
        torch.where(accept, proposal.log_q, state.log_q),
    )
    return new_state, accept, ~finite


def evaluate_states(x: Tensor, log_q: Tensor, log_prob: LogProb) -> MetropolisState:
    """The state of ``x`` with its ``ln q`` and ``ln pi = log_prob(x)`` (float64)."""
    return _evaluate(x, log_q, log_prob)


def check_start(initial: tuple[Tensor, Tensor], log_prob: LogProb,
                n_chains: int | None = None) -> tuple[MetropolisState, int]:
    """The chains' first state from ``initial = (x, ln q(x))`` (see :func:`mark_nonfinite`)."""
    x, log_q = initial
    n_chains = x.shape[0] if n_chains is None else n_chains
    if x.ndim < 1 or x.shape[0] != n_chains or tuple(log_q.shape) != (n_chains,):
        raise ValueError(
            f"initial must be (x, log_q) with shapes ({n_chains}, *event) and "
            f"({n_chains},), got {tuple(x.shape)} and {tuple(log_q.shape)}"
        )
    return mark_nonfinite(_evaluate(x, log_q, log_prob))


def mark_nonfinite(state: MetropolisState) -> tuple[MetropolisState, int]:
    """A state whose log-weight is not finite gets ``ln pi = -inf`` (so its chain moves at
    the first finite proposal); returns the state and the number of such chains."""
    bad = ~torch.isfinite(state.log_w)
    state.log_pi = torch.where(bad, torch.full_like(state.log_pi, -torch.inf), state.log_pi)
    state.log_q = torch.where(bad, torch.zeros_like(state.log_q), state.log_q)
    return state, int(bad.sum())


class Recorder:
    """Storage and counters of a Metropolis-type run: recorded states, accepted moves in the
    sampling phase, rejected non-finite proposals."""

    def __init__(self, state: MetropolisState, n_steps: int):
        n_chains, device = state.x.shape[0], state.log_pi.device
        self.samples = state.x.new_empty((n_steps, *state.x.shape))
        self.log_pi = torch.empty(n_steps, n_chains, dtype=torch.float64, device=device)
        self.log_q = torch.empty_like(self.log_pi)
        self.accepted = torch.zeros(n_chains, dtype=torch.int64, device=device)
        self.nonfinite = torch.zeros((), dtype=torch.int64, device=device)

    def count(self, sampling: bool, accept: Tensor, nonfinite: Tensor) -> None:
        self.nonfinite += nonfinite.sum()
        if sampling:
            self.accepted += accept

    def store(self, slot: int, state: MetropolisState) -> None:
        self.samples[slot], self.log_pi[slot], self.log_q[slot] = (
            state.x, state.log_pi, state.log_q)

    def result(self, n_therm: int, n_sampling: int, n_bad_initial: int) -> dict:
        """The fields of :class:`MetropolisResult`."""
        per_chain = self.accepted.to(torch.float64) / n_sampling
        return dict(samples=self.samples, log_pi=self.log_pi, log_q=self.log_q,
                    acceptance_per_chain=per_chain, acceptance=float(per_chain.mean()),
                    n_nonfinite=int(self.nonfinite), n_nonfinite_initial=n_bad_initial,
                    n_proposals=len(per_chain) * (n_therm + n_sampling))


@torch.no_grad()
def independent_metropolis(
    propose: Proposal,
    log_prob: LogProb,
    n_chains: int,
    n_steps: int,
    *,
    n_therm: int = 0,
    n_skip: int = 0,
    initial: tuple[Tensor, Tensor] | None = None,
    generator: torch.Generator | None = None,
    progress: StepCounter | None = None,
) -> MetropolisResult:
    """Run ``n_chains`` independent Metropolis-Hastings chains with proposal ``propose``.

    ``propose(n) -> (x, log_q)`` (e.g. ``Flow.sample``) draws from its own RNG;
    ``generator`` (on the log-weights' device) drives only the accept/reject uniforms.
    After ``n_therm`` thermalisation steps, ``n_steps`` samples are recorded with ``n_skip``
    discarded steps before each. Chains start from ``initial = (x, log_q)`` or, by
    default, from one proposal each; a chain whose initial log-weight is non-finite is
    given ``w = -inf`` (its value for ``ln pi``), so it moves at its first finite proposal.

    >>> import math
    >>> def propose(n):
    ...     x = 2.0 * torch.randn(n, 1)
    ...     return x, -x[:, 0] ** 2 / 8 - 0.5 * math.log(8 * math.pi)
    >>> result = independent_metropolis(propose, lambda x: -x[:, 0] ** 2 / 2, 16, 100)
    >>> result.samples.shape, 0.0 < result.acceptance < 1.0
    (torch.Size([100, 16, 1]), True)
    """
    check_int("n_chains", n_chains, 1)
    check_run_length(n_steps, n_therm, n_skip)
    if initial is None:
        state, n_bad = mark_nonfinite(_draw(propose, log_prob, n_chains))
    else:
        state, n_bad = check_start(initial, log_prob, n_chains)
    record = Recorder(state, n_steps)
    for step, slot in enumerate(recording_schedule(n_therm, n_steps, n_skip, progress)):
        state, accept, nonfinite = metropolis_step(state, propose, log_prob, generator)
        record.count(step >= n_therm, accept, nonfinite)
        if slot is not None:
            record.store(slot, state)
    return MetropolisResult(**record.result(n_therm, n_steps * (n_skip + 1), n_bad))
