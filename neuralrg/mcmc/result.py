"""What every sampler's result shares: the Markov chains (independent Metropolis, HMC, the
hybrid kernel, chains of exact moves) and the SMC runs.

A chain result holds ``samples`` ``(n_steps, n_chains, *event)`` with their ``log_pi``; its
``scored_log_w`` is ln pi - ln q at the states a flow scored (``None`` where no flow did),
which is what reverse importance sampling and Bennett's acceptance ratio need. An SMC result
is no chain (``is_chain`` is false) and holds weighted particles instead.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor


class SamplerResult:
    """The base of every sampler's result (see the module docstring)."""

    is_chain: ClassVar[bool] = True

    @property
    def scored_log_w(self) -> Tensor | None:
        """ln pi - ln q at the recorded states a flow scored, ``(n_scored, n_chains)``."""
        return None
