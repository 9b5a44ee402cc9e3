"""Monotonic rational-quadratic spline couplings (Durkan et al., arXiv:1906.04032).

The spline has ``K`` bins on ``[-B, B]`` and is the identity outside, with slope 1 at the
two boundary knots (so the map is C1 there). Parameterisation of the raw inputs:

* bin widths (heights alike): ``2B (m / K + (1 - m) softmax2(raw))`` with ``m = MIN_BIN``,
  so no bin is narrower than ``2B m / K``; ``softmax2(r) = 2^r / sum 2^r`` is the softmax
  in base 2 (``exp2`` is several times faster than ``exp`` on CPU);
* interior knot slopes: ``1 + (1 - MIN_SLOPE) (f(raw) - 1)`` with the algebraic softplus
  ``f(r) = (r + sqrt(r^2 + 4)) / 2 = exp(asinh(r / 2))``: positive, ``f(r) ~ r`` for
  large ``r``, slopes above ``MIN_SLOPE``, and exactly 1 at ``r = 0``.

Zero raw inputs give equal bins and slope 1 everywhere: exactly the identity, since the
map is evaluated as ``x + (y - x)`` and every term of ``y - x`` is then exactly zero.

Speed (this runs in the inner loop of training): the spline is one autograd node with a
hand-derived backward, on tables laid out bins first (:mod:`neuralrg.flows.spline_kernel`);
the conditioner runs transposed, ``(features, rows)``, to produce those tables directly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuralrg.flows.context import PatchContext
from neuralrg.flows.coupling import CheckerboardCouplings, mlp
from neuralrg.flows.spline_kernel import MIN_BIN, MIN_SLOPE, spline_bins_first
from neuralrg.validation import check_int, check_real


def rational_quadratic_spline(
    x: Tensor, widths: Tensor, heights: Tensor, derivatives: Tensor, bound: float = 8.0,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """Elementwise monotonic rational-quadratic spline ``y = g(x)`` and ``ln g'(x)``.

    ``widths`` and ``heights`` are ``(*x.shape, K)`` and ``derivatives`` ``(*x.shape, K - 1)``,
    all unconstrained (see the module docstring). With ``inverse=True`` returns
    ``g^{-1}(x)`` and ``ln |d g^{-1} / dx|``.

    >>> x = torch.linspace(-10, 10, 5)
    >>> params = torch.zeros(5, 4), torch.zeros(5, 4), torch.zeros(5, 3)
    >>> y, log_slope = rational_quadratic_spline(x, *params)
    >>> torch.equal(y, x), torch.equal(log_slope, torch.zeros(5))
    (True, True)
    """
    check_real("bound", bound, 0)
    k = widths.shape[-1]
    shapes = [tuple(p.shape) for p in (widths, heights, derivatives)]
    if k < 2 or shapes != [(*x.shape, k), (*x.shape, k), (*x.shape, k - 1)]:
        raise ValueError(f"widths, heights, derivatives have shapes {shapes} for x of shape "
                         f"{tuple(x.shape)}; allowed: (*x.shape, K) twice, then (*x.shape, K - 1), "
                         "with K >= 2")
    raw_wh = torch.cat([widths, heights], -1).movedim(-1, 0)
    raw_slopes = nn.functional.pad(derivatives, (1, 1)).movedim(-1, 0)
    return spline_bins_first(x, raw_wh, raw_slopes, float(bound), inverse)


class SplineCoupling(nn.Module):
    """One spline coupling: updates ``n_out`` variables conditioned on ``n_in``.

    One network gives, per updated variable, the spline's ``3 bins - 1`` raw parameters,
    a raw log-scale and a shift. Generation applies the spline, then
    ``y * exp(scale * tanh(raw)) + shift``; the inverse undoes them in reverse order.
    Halves are laid out variables first, ``(n, rows)``.

    >>> coupling = SplineCoupling(2, 2, hidden=8, depth=1, bins=4, bound=3.0)
    >>> condition, x = torch.randn(2, 5), 2 * torch.randn(2, 5)
    >>> y, log_det = coupling(condition, x)  # a fresh coupling is the identity
    >>> torch.equal(y, x), torch.equal(log_det, torch.zeros(5))
    (True, True)
    """

    def __init__(self, n_in: int, n_out: int, hidden: int, depth: int, bins: int, bound: float):
        super().__init__()
        self.bins, self.bound, self.n_out = bins, float(bound), n_out
        self.net = mlp(n_in, hidden, n_out * (3 * bins + 1), depth)
        self.scale = nn.Parameter(torch.ones(n_out))

    def _outputs(self, condition: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The network's outputs, bins first: raw widths and heights ``(2K, n * rows)``, raw
        slopes ``(K + 1, n * rows)`` (boundary rows 0), log-scale and shift ``(n, rows)``. The
        network runs transposed, ``(features, rows)``, and its last layer as three products,
        so that no output needs slicing (slicing costs a zero-filled gradient each)."""
        (k, n), (*layers, last) = (self.bins, self.n_out), self.net
        hidden = condition
        for layer in layers:  # (features, rows) throughout: contiguous gradients
            is_linear = isinstance(layer, nn.Linear)
            hidden = torch.addmm(layer.bias[:, None], layer.weight, hidden) if is_linear \
                else layer(hidden)
        cuts = [2 * k * n, (3 * k - 1) * n]
        weights, biases = last.weight.tensor_split(cuts), last.bias.tensor_split(cuts)
        raw_wh = torch.addmm(biases[0][:, None], weights[0], hidden)
        pad = (0, 0, 0, 0, 1, 1)  # zero rows (outputs exactly 0) for the boundary slopes
        raw_slopes = torch.addmm(nn.functional.pad(biases[1].view(k - 1, n, 1), pad).view(-1, 1),
                                 nn.functional.pad(weights[1].view(k - 1, n, -1), pad)
                                 .view((k + 1) * n, -1), hidden)
        affine = torch.addmm(biases[2][:, None], weights[2], hidden).view(2, n, -1)
        log_scale = self.scale.unsqueeze(1) * torch.tanh(affine[0])
        return raw_wh.view(2 * k, -1), raw_slopes.view(k + 1, -1), log_scale, affine[1]

    def forward(self, condition: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        raw_wh, raw_slopes, log_scale, shift = self._outputs(condition)
        y, log_slope = spline_bins_first(x, raw_wh, raw_slopes, self.bound, inverse=False)
        return torch.addcmul(shift, y, torch.exp(log_scale)), (log_slope + log_scale).sum(0)

    def inverse(self, condition: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        raw_wh, raw_slopes, log_scale, shift = self._outputs(condition)
        u = (y - shift) * torch.exp(-log_scale)
        x, log_slope = spline_bins_first(u, raw_wh, raw_slopes, self.bound, inverse=True)
        return x, (log_slope - log_scale).sum(0)


class SplinePatchCoupling(CheckerboardCouplings):
    """``n_layers`` spline couplings on a patch of ``patch_size`` variables.

    The same checkerboard halves and alternation as
    :class:`~neuralrg.flows.coupling.PatchCoupling`. Each coupling has a single conditioner
    network of width ``hidden_s`` (the affine block's two networks need two widths; this
    block needs one, so there is no ``hidden_t``). Acts on ``(batch, patch_size)``.

    >>> block = SplinePatchCoupling(4, n_layers=2, hidden_s=8, bins=4, bound=5.0)
    >>> z = torch.randn(5, 4)
    >>> x, log_det = block(z)
    >>> torch.equal(x, z), log_det.shape
    (True, torch.Size([5]))
    """

    def __init__(
        self, patch_size: int, n_layers: int = 4, hidden_s: int = 64, *, mlp_depth: int = 1,
        bins: int = 8, bound: float = 8.0, context: PatchContext | None = None,
    ):
        check_int("hidden_s", hidden_s, 1)
        check_int("mlp_depth", mlp_depth, 1)
        check_int("bins", bins, 2)
        check_real("bound", bound, 0)

        def make_coupling(n_in: int, n_out: int) -> SplineCoupling:
            return SplineCoupling(n_in, n_out, hidden_s, mlp_depth, bins, bound)

        super().__init__(patch_size, n_layers, make_coupling, context)

    features_first = True

    def _split(self, x: Tensor) -> list[Tensor]:
        return [x.t()[self.half_a], x.t()[self.half_b]]

    def _merge(self, halves: list[Tensor]) -> Tensor:
        return torch.cat(halves)[self.unsplit].t()


__all__ = ["MIN_BIN", "MIN_SLOPE", "SplineCoupling", "SplinePatchCoupling",
           "rational_quadratic_spline"]
