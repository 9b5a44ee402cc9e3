"""The rational-quadratic spline as one autograd node with a hand-derived backward.

The layout and the algorithm behind :func:`neuralrg.flows.spline.rational_quadratic_spline`
(see that module for the parameterisation). Tables are laid out bins first, ``(2K, N)`` for
widths and heights and ``(K + 1, N)`` for the slopes (zero boundary rows), so that every
operation over bins runs along long contiguous rows; the bin of a point is the count of
interior knots below it (no ``searchsorted``); sums over bins are small matrix products
(faster than ``cumsum`` here); and the forward and the hand-derived backward are plain
tensor operations in one autograd node (autograd alone would record about 90 nodes and
allocate about eight table-sized buffers per call; this allocates three each way).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

MIN_BIN = 1e-2  # share of the interval spread evenly over the bins: the narrowest bin's floor
MIN_SLOPE = 1e-3  # lower bound of the knot slopes
LN2 = 0.6931471805599453
_HALF_SLOPE = 0.5 * (1 - MIN_SLOPE)


@functools.lru_cache(maxsize=16)
def _sum_matrices(k: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(K, K)`` inclusive prefix sums, and ``(K - 1, K)`` rows ``[i < j] + beta j`` for the
    interior knots ``j = 1 .. K - 1`` (see :func:`_lookup`)."""
    i = torch.arange(k, dtype=dtype, device=device)
    j = i[1:, None]
    search = (i < j).to(dtype) + j * (MIN_BIN / (k * (1 - MIN_BIN)))
    return (i <= i[:, None]).to(dtype), search


def _lookup(raw_wh: Tensor, raw_slopes: Tensor, v: Tensor, axis: int, span: float):
    """The bin of each ``v`` (from ``-B``, in ``[0, span]``) on the knots of ``axis`` (0: x,
    1: y), from the raw tables ``(2K, N)`` and ``(K + 1, N)`` (slopes with zero ends).

    With ``p = 2^(raw - max raw)`` (the max cancels in every ratio), knot ``j`` lies at
    ``span (m j / K + (1 - m) C_j / P)``, ``C_j`` the sum of ``p`` left of it and ``P`` the
    total: it is at or below ``v`` iff ``C_j + beta j P <= v P / (span (1 - m))``, with
    ``beta = m / (K (1 - m))``, whose left side is one small matrix product. Returns ``p``
    ``(2, K, N)``, the index ``(1, N)``, the knot rows ``(2, N)`` of the raw slopes, and
    ``(2, N)`` for (x, y): ``P``, ``C`` at the bin's left knot, the bin's ``p``, the raw
    slopes at its two knots."""
    k = raw_slopes.shape[0] - 1
    wh = raw_wh.view(2, k, -1)
    powers = (wh - wh.amax(1, keepdim=True)).exp2_()
    prefix, search = _sum_matrices(k, v.dtype, v.device)
    cumulative = torch.matmul(prefix, powers)
    total = cumulative[:, -1]
    scaled = (v * total[axis]).mul_(1 / (span * (1 - MIN_BIN)))
    index = (torch.matmul(search, powers[axis]) <= scaled).sum(0, keepdim=True)
    pair = index.expand(2, 1, -1)
    size = powers.gather(1, pair).squeeze(1)
    left = cumulative.gather(1, pair).squeeze(1) - size
    ends = index + torch.arange(2, device=index.device)[:, None]
    return powers, index, ends, total, left, size, raw_slopes.gather(0, ends)


def _bin_parameters(x: Tensor, raw_wh: Tensor, raw_slopes: Tensor, bound: float, axis: int):
    """Clamped points ``v`` (from ``-B``) and their bins: ``(size, knots, slopes)``, each
    ``(2, N)`` (width/height, x/y knot from ``-B``, left/right slope), and what the backward
    pass needs (``p``, index, knot rows, ``P``, knots without the floor, d slope / d raw)."""
    span = 2 * bound
    k = raw_slopes.shape[0] - 1
    v = x.clamp(-bound, bound) + bound
    powers, index, ends, total, left, size, r = _lookup(raw_wh, raw_slopes, v, axis, span)
    scale = (span * (1 - MIN_BIN)) / total
    left, size = left * scale, (size * scale).add_(span * MIN_BIN / k)
    knots = torch.add(left, index.to(x.dtype), alpha=span * MIN_BIN / k)
    root = torch.hypot(r, r.new_tensor(2.0))
    slopes = (r + root).sub_(2.0).mul_(_HALF_SLOPE).add_(1.0)
    rate = (r / root).add_(1.0).mul_(_HALF_SLOPE)
    return v, (size, knots, slopes), (powers, index, ends, total, left, rate)


def _evaluate(v: Tensor, size: Tensor, knots: Tensor, slopes: Tensor, inverse: bool):
    """``out - in``, ``ln g'`` at the preimage, and the in-bin quantities for the backward."""
    (w, h), (x_k, y_k), d0 = size.unbind(), knots.unbind(), slopes[0]
    s = h / w
    b, a = (slopes - s).unbind()
    c = a + b
    if inverse:  # the root of the bin's quadratic, in the stable form 2 C / (-B - sqrt(.))
        offset = v - y_k
        beta = torch.addcmul(h * d0, offset, c, value=-1)
        alpha = torch.addcmul(offset * c, h, b, value=-1)
        q = beta + torch.sqrt(torch.addcmul(beta * beta, s * offset, alpha, value=4))
        ratio = offset / q
        xi = (s * ratio).mul_(2)
        change = torch.addcmul(x_k - y_k, ratio, 2 * h - q)
    else:
        offset = v - x_k
        xi = offset / w
    one_minus = 1 - xi
    t = xi * one_minus
    den = torch.addcmul(s, c, t)
    n = torch.addcmul(torch.addcmul(s, a, xi * xi), b, one_minus * one_minus)
    if not inverse:
        bend = h * t * torch.addcmul(b, c, xi, value=-1) / den
        change = torch.addcmul(y_k - x_k, s - 1, offset).add_(bend)
    log_slope = torch.log((s / den).square_().mul_(n))
    return change, log_slope, (s, c, xi, one_minus, t, den, n)


class _Spline(torch.autograd.Function):
    """The spline on flat points ``(N,)`` from raw tables ``(2K, N)``, ``(K + 1, N)``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, raw_wh, raw_slopes, bound, inverse):
        inside = x.abs() < bound
        v, (size, knots, slopes), saved = _bin_parameters(x, raw_wh, raw_slopes, bound,
                                                           int(inverse))
        change, log_slope, in_bin = _evaluate(v, size, knots, slopes, inverse)
        log_slope = torch.where(inside, -log_slope if inverse else log_slope, 0.0)
        return x + torch.where(inside, change, 0.0), log_slope, *saved, size, slopes, \
            *in_bin, inside

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(*output[2:])
        ctx.set_materialize_grads(False)  # no zero gradients for the saved tables
        ctx.save_for_backward(*output[2:])
        ctx.span, ctx.inverse = 2 * inputs[3], inputs[4]

    @staticmethod
    @once_differentiable  # the hand-written backward is not itself differentiable
    def backward(ctx, g_out, g_log, *_):
        powers, index, ends, total, left, rate, *state = ctx.saved_tensors
        g_out = torch.zeros_like(total[0]) if g_out is None else g_out
        g_log = torch.zeros_like(total[0]) if g_log is None else g_log
        g_in, grads = _backward_in_bin(state, g_out, g_log, ctx.inverse)
        tables = (state[0], left, total, rate)
        return g_in, *_backward_tables(tables, powers, index, ends, grads, ctx.span), None, None


def _backward_in_bin(state: list[Tensor], g_out: Tensor, g_log: Tensor, inverse: bool):
    """Gradients for the input and the bin's (width, height, x knot, y knot, slopes).

    The inverse ``x(y)`` reuses the forward's partials: ``dx/dy = 1 / g'`` and
    ``d/d theta = -(dg/d theta) g_y - g_log dl/d theta``, with ``g_y`` the input gradient."""
    (w, h), (d0, d1), s, c, xi, one_minus, t, den, n, inside = state
    mask = inside.to(s.dtype)
    inv_den, inv_n, tilt = 1 / den, 1 / n, one_minus - xi  # tilt = 1 - 2 xi
    slope = (s * inv_den).square_().mul_(n)
    bent = torch.addcmul(s * xi * xi, d0, t).mul_(inv_den)  # (y - y_k) / h
    l_x = torch.addcmul(d1 * xi - d0 * one_minus, s, tilt).mul_(inv_n)
    l_x = torch.addcmul(l_x, c * tilt, inv_den, value=-1).mul_(2 / w)  # d ln g' / dx
    l_s = torch.addcmul(2 * t * inv_n, 2 * inv_den, 2 * t - 1).add_(2 / s)  # d ln g' / ds
    r_s = torch.addcmul(xi * xi, bent, 1 - 2 * t, value=-1).mul_(inv_den)  # d bent / ds
    if inverse:
        g_in = torch.addcmul(g_out, g_log, l_x, value=-1) / slope
        g_y, g_l, g_x_k = -g_in * mask, -g_log * mask, g_out * mask
    else:
        g_y, g_l = g_out * mask, g_log * mask
        g_in = torch.addcmul(g_l * l_x, g_y, slope)
        g_x_k = -g_in
    sr_s, ls_w = s * r_s, l_s / w
    g_h = torch.addcmul(g_l * ls_w, g_y, bent + sr_s)
    g_w = -torch.addcmul(g_l * torch.addcmul(xi * l_x, s, ls_w), g_y * s,
                         torch.addcmul(sr_s, xi * s * n, inv_den.square()))
    g_ht, two_t = g_y * h * t * inv_den, 2 * t * inv_den
    g_d0 = torch.addcmul(g_ht * (1 - bent), g_l, one_minus.square() * inv_n - two_t)
    g_d1 = torch.addcmul(-g_ht * bent, g_l, xi * xi * inv_n - two_t)
    return torch.where(inside, g_in, g_out), (g_w, g_h, g_x_k, g_y, g_d0, g_d1)


def _backward_tables(tables, powers: Tensor, index: Tensor, ends: Tensor, grads,
                     span: float) -> tuple[Tensor, Tensor]:
    """Chain the bin gradients to the raw tables ``(2K, N)`` and ``(K + 1, N)``."""
    k = powers.shape[1]
    g_size, g_left, g_slopes = (torch.stack(grads[i : i + 2]) for i in (0, 2, 4))
    size, left, total, rate = tables
    scale = (span * (1 - MIN_BIN) * LN2) / total
    g_total = torch.addcmul(g_size * (size - span * MIN_BIN / k), g_left, left)
    g_total = g_total.mul_(-LN2 / total)
    bins = torch.arange(k, dtype=powers.dtype, device=powers.device)[:, None]
    left_of = (index.to(powers.dtype) - bins).clamp_(0.0, 1.0)  # [bin < index], (K, N)
    grad = torch.addcmul(g_total[:, None], left_of, (g_left * scale)[:, None])
    grad.scatter_add_(1, index.expand(2, 1, -1), (g_size * scale)[:, None]).mul_(powers)
    g_raw_slopes = g_slopes * rate
    grad_d = g_raw_slopes.new_zeros(k + 1, index.shape[-1]).scatter_add(0, ends, g_raw_slopes)
    return grad.view(2 * k, -1), grad_d


def spline_bins_first(x: Tensor, raw_wh: Tensor, raw_slopes: Tensor, bound: float,
                      inverse: bool) -> tuple[Tensor, Tensor]:
    """:func:`rational_quadratic_spline` with raw tables laid out bins first: ``raw_wh``
    ``(2K, *x.shape)`` (K widths, K heights) and ``raw_slopes`` ``(K + 1, *x.shape)``, the
    K - 1 interior slopes between two zero rows.

    >>> x = torch.linspace(-4.0, 4.0, 6)
    >>> y, log_slope = spline_bins_first(x, torch.zeros(8, 6), torch.zeros(5, 6), 3.0, False)
    >>> torch.equal(y, x), torch.equal(log_slope, torch.zeros(6))
    (True, True)
    """
    flat = x.reshape(-1)
    out, log_slope, *_ = _Spline.apply(flat, raw_wh.reshape(raw_wh.shape[0], -1),
                                       raw_slopes.reshape(raw_slopes.shape[0], -1), bound,
                                       inverse)
    return out.view(x.shape), log_slope.view(x.shape)


__all__ = ["MIN_BIN", "MIN_SLOPE", "spline_bins_first"]
