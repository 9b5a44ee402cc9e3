"""Chains of a target's exact equilibrium moves (e.g. the relaxed Ising model's cluster moves).

Each step applies ``move(x, generator)`` to every chain; the move leaves pi invariant by
construction, so nothing is accepted or rejected. What a flow adds to such chains is a
normalised reference density: its ln q at (a thinned subset of) the recorded states gives
ln Z by reverse importance sampling and Bennett's acceptance ratio, and, paired with fresh
flow samples, the long-run acceptance a flow-proposal Metropolis sampler would have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralrg.mcmc.chains import StepCounter, check_run_length, recording_schedule
from neuralrg.mcmc.metropolis import LogProb
from neuralrg.mcmc.result import SamplerResult

Move = Callable[[Tensor, torch.Generator | None], Tensor]


@dataclass
class ExactChainResult(SamplerResult):
    """``samples`` ``(n_steps, n_chains, *event)`` and their ``log_pi`` (float64,
    ``(n_steps, n_chains)``); ``log_q`` (set by whoever scores the states with a flow) holds
    ln q at the recorded steps ``scored_steps``."""

    samples: Tensor
    log_pi: Tensor
    log_q: Tensor | None = None
    scored_steps: Tensor | None = None
    acceptance: float = 1.0
    n_nonfinite: int = 0

    @property
    def scored_log_w(self) -> Tensor | None:
        """ln pi - ln q at the scored steps, ``(n_scored, n_chains)``; ``None`` unscored."""
        if self.log_q is None:
            return None
        return self.log_pi[self.scored_steps] - self.log_q


@torch.no_grad()
def exact_chains(move: Move, log_prob: LogProb, x0: Tensor, n_steps: int, *, n_therm: int = 0,
                 n_skip: int = 0, generator: torch.Generator | None = None,
                 progress: StepCounter | None = None) -> ExactChainResult:
    """Run chains of ``move`` from ``x0`` ``(n_chains, *event)``: ``n_therm`` steps of burn-in,
    then ``n_steps`` records with ``n_skip`` steps before each, every step reported to
    ``progress``.

    >>> def move(x, generator):  # an exact move of N(0, 1): a fresh draw
    ...     return torch.randn(x.shape, generator=generator)
    >>> result = exact_chains(move, lambda x: -0.5 * x[:, 0] ** 2, torch.zeros(4, 1), 10)
    >>> result.samples.shape, result.log_pi.shape
    (torch.Size([10, 4, 1]), torch.Size([10, 4]))
    """
    check_run_length(n_steps, n_therm, n_skip)
    x = x0
    samples = x0.new_empty((n_steps, *x0.shape))
    log_pi = torch.empty(n_steps, x0.shape[0], dtype=torch.float64, device=x0.device)
    for slot in recording_schedule(n_therm, n_steps, n_skip, progress):
        x = move(x, generator)
        if slot is not None:
            samples[slot], log_pi[slot] = x, log_prob(x)
    return ExactChainResult(samples, log_pi)
