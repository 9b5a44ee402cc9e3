"""Bijector base class and composition.

Convention: ``forward`` is generation (z -> x) and returns log|det dx/dz|;
``inverse`` is inference, the RG direction (x -> z), and returns log|det dz/dx|.
Both return ``(output, log_det)`` with ``log_det`` of shape ``(batch,)``.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn


class Bijector(nn.Module):
    """An invertible map with a tractable log-determinant.

    Subclasses implement :meth:`forward` and :meth:`inverse`, each returning
    ``(output, log_det)``.
    """

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class Chain(Bijector):
    """Composition ``b_n o ... o b_1``: ``forward`` applies the bijectors in order.

    >>> import torch
    >>> from neuralrg.flows.coupling import PatchCoupling
    >>> chain = Chain([PatchCoupling(4), PatchCoupling(4)])
    >>> z = torch.randn(3, 4)
    >>> x, log_det = chain(z)
    >>> torch.allclose(chain.inverse(x)[0], z, atol=1e-5)
    True
    """

    def __init__(self, bijectors: Iterable[Bijector]):
        super().__init__()
        self.bijectors = nn.ModuleList(bijectors)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        log_det = z.new_zeros(z.shape[0])
        for bijector in self.bijectors:
            z, ld = bijector(z)
            log_det = log_det + ld
        return z, log_det

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        log_det = x.new_zeros(x.shape[0])
        for bijector in reversed(self.bijectors):
            x, ld = bijector.inverse(x)
            log_det = log_det + ld
        return x, log_det


__all__ = ["Bijector", "Chain"]
