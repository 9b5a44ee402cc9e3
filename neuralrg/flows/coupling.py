"""RealNVP affine coupling block acting on one patch (Dinh et al., arXiv:1605.08803).

The patch's variables are split by a checkerboard into two halves; couplings
alternate which half is updated, conditioned on the other:
``x_b <- x_b * exp(s(x_a)) + t(x_a)``, with the log-scale bounded as
``s = scale * tanh(s_net(x_a))`` (the paper's ScalableTanh). Output layers start
at zero, so a fresh block is the identity.

:class:`CheckerboardCouplings` holds what every coupling block shares (the halves, the
alternation, the log-det bookkeeping, the optional neighbourhood context of
:mod:`neuralrg.flows.context`); ``neuralrg.flows.spline`` builds its spline block on it too.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from neuralrg.flows.bijector import Bijector
from neuralrg.flows.context import PatchContext
from neuralrg.validation import check_int


def checkerboard_split(patch_size: int) -> tuple[Tensor, Tensor]:
    """Indices of the two halves: members whose offset bits have even / odd parity.

    >>> [h.tolist() for h in checkerboard_split(4)]
    [[0, 3], [1, 2]]
    """
    parity = torch.tensor([bin(i).count("1") % 2 for i in range(patch_size)])
    return (parity == 0).nonzero().flatten(), (parity == 1).nonzero().flatten()


def mlp(n_in: int, hidden: int, n_out: int, depth: int) -> nn.Sequential:
    """``depth`` hidden ELU layers of width ``hidden``; the output layer starts at zero.

    The ELUs work in place on their Linear's output (which no backward pass needs): one
    fewer large buffer per layer, about 7% of a training step at L = 16."""
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ELU(inplace=True)]
        width = hidden
    out = nn.Linear(width, n_out)
    nn.init.zeros_(out.weight)
    nn.init.zeros_(out.bias)
    return nn.Sequential(*layers, out)


class AffineCoupling(nn.Module):
    """One affine coupling: updates ``n_out`` variables conditioned on ``n_in``.

    ``forward(condition, x)`` and ``inverse(condition, y)`` return the updated variables
    and the log-det per row."""

    def __init__(self, n_in: int, n_out: int, hidden_s: int, hidden_t: int, depth: int):
        super().__init__()
        self.s_net = mlp(n_in, hidden_s, n_out, depth)
        self.t_net = mlp(n_in, hidden_t, n_out, depth)
        self.scale = nn.Parameter(torch.ones(n_out))

    def log_scale_and_shift(self, condition: Tensor) -> tuple[Tensor, Tensor]:
        return self.scale * torch.tanh(self.s_net(condition)), self.t_net(condition)

    def forward(self, condition: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.log_scale_and_shift(condition)
        return x * torch.exp(s) + t, s.sum(1)

    def inverse(self, condition: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.log_scale_and_shift(condition)
        return (y - t) * torch.exp(-s), -s.sum(1)


CouplingFactory = Callable[[int, int], nn.Module]


class CheckerboardCouplings(Bijector):
    """``n_layers`` couplings on a patch, alternately updating the two checkerboard halves.

    ``make_coupling(n_in, n_out)`` builds one coupling: a module whose
    ``forward(condition, x)`` and ``inverse(condition, y)`` return the updated half and
    its log-det per row. Acts on tensors of shape ``(batch, patch_size)``. With a
    ``context``, every conditioner also sees the conditioning halves of the neighbouring
    patches (its ``n_in`` is the half's size times ``context.size``); rows are then
    ``(batch, patch)`` pairs of one layer, as :class:`~neuralrg.flows.hierarchy.
    HierarchicalBijector` passes them.

    >>> block = CheckerboardCouplings(4, 2, lambda n_in, n_out: AffineCoupling(n_in, n_out,
    ...                                                                      8, 8, 1))
    >>> block(torch.randn(5, 4))[0].shape
    torch.Size([5, 4])
    """

    features_first = False  # layout of the halves: (rows, n); True for (n, rows)

    def __init__(self, patch_size: int, n_layers: int, make_coupling: CouplingFactory,
                 context: PatchContext | None = None):
        super().__init__()
        self.context = context
        width = 1 if context is None else context.size
        check_int("patch_size", patch_size, 2)
        check_int("n_layers", n_layers, 1)
        half_a, half_b = checkerboard_split(patch_size)
        self.register_buffer("half_a", half_a, persistent=False)
        self.register_buffer("half_b", half_b, persistent=False)
        self.register_buffer("unsplit", torch.cat([half_a, half_b]).argsort(), persistent=False)
        sizes = [(width * len(half_a), len(half_b)), (width * len(half_b), len(half_a))]
        self.couplings = nn.ModuleList(make_coupling(*sizes[k % 2]) for k in range(n_layers))

    def _split(self, x: Tensor) -> list[Tensor]:
        return [x[:, self.half_a], x[:, self.half_b]]

    def _merge(self, halves: list[Tensor]) -> Tensor:
        return torch.cat(halves, dim=1)[:, self.unsplit]

    def _condition(self, half: Tensor) -> Tensor:
        if self.context is None:
            return half
        return self.context.gather(half, self.features_first)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        halves, log_det = self._split(z), z.new_zeros(z.shape[0])
        for k, coupling in enumerate(self.couplings):
            cond, upd = k % 2, 1 - k % 2
            halves[upd], ld = coupling(self._condition(halves[cond]), halves[upd])
            log_det = log_det + ld
        return self._merge(halves), log_det

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        halves, log_det = self._split(x), x.new_zeros(x.shape[0])
        for k in reversed(range(len(self.couplings))):
            cond, upd = k % 2, 1 - k % 2
            halves[upd], ld = self.couplings[k].inverse(self._condition(halves[cond]),
                                                        halves[upd])
            log_det = log_det + ld
        return self._merge(halves), log_det


class PatchCoupling(CheckerboardCouplings):
    """``n_layers`` RealNVP couplings on a patch of ``patch_size`` variables.

    Acts on tensors of shape ``(batch, patch_size)``.

    >>> block = PatchCoupling(4, n_layers=2, hidden_s=8, hidden_t=8)
    >>> x, log_det = block(torch.randn(5, 4))
    >>> x.shape, log_det.shape
    (torch.Size([5, 4]), torch.Size([5]))
    """

    def __init__(
        self,
        patch_size: int,
        n_layers: int = 4,
        hidden_s: int = 64,
        hidden_t: int = 64,
        mlp_depth: int = 1,
        context: PatchContext | None = None,
    ):
        for name, value in [("hidden_s", hidden_s), ("hidden_t", hidden_t),
                            ("mlp_depth", mlp_depth)]:
            check_int(name, value, 1)

        def make_coupling(n_in: int, n_out: int) -> AffineCoupling:
            return AffineCoupling(n_in, n_out, hidden_s, hidden_t, mlp_depth)

        super().__init__(patch_size, n_layers, make_coupling, context)
