"""Hybrid kernel: flow-proposal Metropolis steps interleaved with local moves in x.

An independent Metropolis sampler whose importance weights pi/q are heavy-tailed sits on a
rare high-weight state for a long time, and chains that all start from q share q's bias.
Each step here first makes ``local_moves`` short HMC trajectories on ``U(x) = -ln pi(x)``
(unit mass, leapfrog, Metropolis test), then one independent Metropolis step with a fresh
flow proposal. Both moves leave pi invariant, so their composition does too; the local
moves let a chain leave a stuck state, the flow moves make large jumps (see
docs/physics.md, "Markov chains").

For a target with exact equilibrium moves (``exact_move``, e.g. the relaxed Ising model's
cluster moves) one such move replaces the HMC trajectories: it leaves pi invariant, needs no
gradient and no step size, and is free of critical slowing down.

The flow's density of the current state changes with every local move, so each step costs
one flow proposal, one ``ln q`` of the moved state (both in one call, which lets a
Z2-symmetrised flow batch its three inverse passes) and ``local_moves * n_leapfrog``
gradients of ``ln pi`` (cheap next to the flow).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralrg.mcmc.chains import StepCounter, check_run_length, recording_schedule
from neuralrg.mcmc.hmc import GradFn, HMCState, hmc_step, make_evaluator
from neuralrg.mcmc.metropolis import (
    LogProb,
    MetropolisResult,
    MetropolisState,
    Recorder,
    check_start,
    evaluate_states,
    metropolis_accept,
)
from neuralrg.validation import check_int, check_real


@dataclass
class HybridResult(MetropolisResult):
    """:class:`MetropolisResult` (its acceptance is the flow moves') plus the local moves':
    ``local_acceptance`` over the sampling phase and ``n_grad_evals`` over the whole run."""

    local_acceptance: float = 0.0
    n_grad_evals: int = 0


@dataclass(frozen=True)
class LocalMoves:
    """Local HMC moves per step: ``moves`` trajectories of ``n_leapfrog`` steps of size
    ``step_size``."""

    moves: int = 5
    step_size: float = 0.4
    n_leapfrog: int = 10

    def __post_init__(self):
        check_int("local_moves", self.moves, 1)
        check_real("local_step_size", self.step_size, 0)
        check_int("local_leapfrog", self.n_leapfrog, 1)


ProposeAndScore = Callable[[int, Tensor], tuple[Tensor, Tensor, Tensor]]
ExactMove = Callable[[Tensor, torch.Generator | None], Tensor]


def _local_block(state: MetropolisState, evaluate, local: LocalMoves,
                 generator) -> tuple[Tensor, Tensor, Tensor]:
    """``local.moves`` HMC trajectories from ``state``; returns the moved ``x``, its
    ``ln pi`` and the number of accepted trajectories per chain."""
    u, grad = evaluate(state.x)
    hmc = HMCState(state.x, u, grad)
    accepted = torch.zeros(state.x.shape[0], dtype=torch.int64, device=state.x.device)
    for _ in range(local.moves):
        hmc, accept, _ = hmc_step(hmc, evaluate, local.step_size, local.n_leapfrog, generator)
        accepted += accept
    return hmc.q, -hmc.u, accepted


def _exact_block(state: MetropolisState, log_prob: LogProb, move: ExactMove,
                 generator) -> tuple[Tensor, Tensor, Tensor]:
    """One exact move of every chain (always accepted)."""
    x = move(state.x, generator)
    accepted = torch.ones(x.shape[0], dtype=torch.int64, device=x.device)
    return x, log_prob(x).to(torch.float64), accepted


@torch.no_grad()
def hybrid_metropolis(
    propose_and_score: ProposeAndScore,
    log_prob: LogProb,
    initial: tuple[Tensor, Tensor],
    n_steps: int,
    *,
    local: LocalMoves | None = None,
    exact_move: ExactMove | None = None,
    n_therm: int = 0,
    n_skip: int = 0,
    grad_fn: GradFn | None = None,
    generator: torch.Generator | None = None,
    progress: StepCounter | None = None,
) -> HybridResult:
    """Run the hybrid kernel on chains started at ``initial = (x, ln q(x))``.

    ``propose_and_score(n, x) -> (x', ln q(x'), ln q(x))`` draws ``n`` flow proposals and
    evaluates the proposal density at the chains' current (locally moved) states, in one
    call (e.g. ``Flow.sample_and_score``); ``log_prob`` is ln pi (its gradient by autograd
    unless ``grad_fn`` gives ``d(-ln pi)/dx``). ``exact_move(x, generator)``, if given, is
    the local move instead of ``local``'s HMC trajectories (one per step). Recording as in
    :func:`~neuralrg.mcmc.metropolis.independent_metropolis`; every step is reported to
    ``progress``.

    >>> import math
    >>> log_q = lambda x: -x[:, 0] ** 2 / 8 - 0.5 * math.log(8 * math.pi)
    >>> def propose_and_score(n, x):
    ...     y = 2.0 * torch.randn(n, 1)
    ...     return y, log_q(y), log_q(x)
    >>> start = 2.0 * torch.randn(16, 1)
    >>> result = hybrid_metropolis(propose_and_score, lambda x: -x[:, 0] ** 2 / 2,
    ...                            (start, log_q(start)), 50)
    >>> result.samples.shape, 0.0 < result.local_acceptance <= 1.0
    (torch.Size([50, 16, 1]), True)
    """
    local = local or LocalMoves()
    check_run_length(n_steps, n_therm, n_skip)
    state, n_bad = check_start(initial, log_prob)
    evaluate = make_evaluator(lambda x: -log_prob(x), grad_fn)
    record = Recorder(state, n_steps)
    local_accepted = torch.zeros_like(record.accepted)
    n_chains = state.x.shape[0]
    for step, slot in enumerate(recording_schedule(n_therm, n_steps, n_skip, progress)):
        if exact_move is None:
            x, log_pi, moved = _local_block(state, evaluate, local, generator)
        else:
            x, log_pi, moved = _exact_block(state, log_prob, exact_move, generator)
        x_new, log_q_new, log_q = propose_and_score(n_chains, x)
        state = MetropolisState(x, log_pi, log_q.to(torch.float64))
        proposal = evaluate_states(x_new, log_q_new, log_prob)
        state, accept, nonfinite = metropolis_accept(state, proposal, generator)
        record.count(step >= n_therm, accept, nonfinite)
        if step >= n_therm:
            local_accepted += moved
        if slot is not None:
            record.store(slot, state)
    n_sampling = n_steps * (n_skip + 1)
    moves = 1 if exact_move is not None else local.moves
    n_grad_evals = 0 if exact_move is not None else \
        (n_therm + n_sampling) * (1 + local.moves * local.n_leapfrog)
    return HybridResult(
        **record.result(n_therm, n_sampling, n_bad),
        local_acceptance=float(local_accepted.sum()) / (n_sampling * moves * n_chains),
        n_grad_evals=n_grad_evals,
    )
