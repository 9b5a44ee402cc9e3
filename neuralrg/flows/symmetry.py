"""Z2-symmetrised flow: q_sym(x) = (q(x) + q(-x)) / 2.

Sampling draws x = g(z) and flips its sign with probability 1/2; the density is
computed in log space, ln q_sym(x) = logaddexp(ln q(x), ln q(-x)) - ln 2, which
costs one extra inverse pass.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Z2SymmetricFlow(nn.Module):
    """Wraps a :class:`~neuralrg.flows.flow.Flow` into its sign-symmetrised mixture.

    >>> from neuralrg.flows.flow import FlowConfig, build_flow
    >>> flow = Z2SymmetricFlow(build_flow(FlowConfig(L=4, hidden_s=8, hidden_t=8)))
    >>> x, log_q = flow.sample(3)
    >>> torch.allclose(flow.log_prob(x), log_q, atol=1e-4)
    True
    >>> torch.allclose(flow.log_prob(-x), log_q, atol=1e-4)
    True
    """

    def __init__(self, flow: nn.Module):
        super().__init__()
        self.flow = flow
        self.event_shape = flow.event_shape

    def _symmetrise(self, log_q: Tensor, x: Tensor) -> Tensor:
        return torch.logaddexp(log_q, self.flow.log_prob(-x)) - math.log(2.0)

    def generate(self, z: Tensor, signs: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x = sign * g(z) with ln q_sym(x); ``signs`` (+-1 per sample) default to +1."""
        x, log_q = self.flow.generate(z)
        log_q_sym = self._symmetrise(log_q, x)
        if signs is not None:
            x = x * signs.reshape(-1, *[1] * len(self.event_shape)).to(x.dtype)
        return x, log_q_sym

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        z = self.flow.sample_latent(n, generator)
        flips = torch.randint(0, 2, (n,), generator=generator, device=z.device)
        return self.generate(z, 1 - 2 * flips)

    def log_prob(self, x: Tensor) -> Tensor:
        """ln q_sym(x), both inverse passes in one batch."""
        at_x, at_minus_x = self.flow.log_prob(torch.cat([x, -x])).split(len(x))
        return torch.logaddexp(at_x, at_minus_x) - math.log(2.0)

    def sample_and_score(self, n: int, x: Tensor, generator: torch.Generator | None = None
                         ) -> tuple[Tensor, Tensor, Tensor]:
        """``n`` samples with their ln q_sym, and ln q_sym of given states ``x``: the same
        random numbers as :meth:`sample`, with all three inverse passes in one batch."""
        z = self.flow.sample_latent(n, generator)
        flips = torch.randint(0, 2, (n,), generator=generator, device=z.device)
        y, log_q = self.flow.generate(z)
        log_p = self.flow.log_prob(torch.cat([-y, x, -x]))
        mirrored, at_x, at_minus_x = log_p.split([n, len(x), len(x)])
        signs = (1 - 2 * flips).reshape(-1, *[1] * len(self.event_shape)).to(y.dtype)
        return (y * signs, torch.logaddexp(log_q, mirrored) - math.log(2.0),
                torch.logaddexp(at_x, at_minus_x) - math.log(2.0))

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.flow.sample_latent(n, generator)

    def encode(self, x: Tensor) -> list[Tensor]:
        return self.flow.encode(x)

    def latent_groups(self) -> list[Tensor]:
        return self.flow.latent_groups()

    @property
    def bijector(self):
        return self.flow.bijector
