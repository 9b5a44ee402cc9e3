"""The rational-quadratic spline against zuko, its inverse, derivative and identity start."""

import math

import pytest
import torch
import zuko.transforms

from neuralrg.flows.coupling import PatchCoupling
from neuralrg.flows.flow import FlowConfig, build_flow, validate_flow_config
from neuralrg.flows.spline import (
    MIN_BIN,
    MIN_SLOPE,
    SplinePatchCoupling,
    rational_quadratic_spline,
)

K, B, N = 6, 3.0, 400
ZUKO_SLOPE = 1e-12  # zuko soft-clips its raw inputs to +-|ln slope| / 2: far from binding here


def raw_parameters(n: int = N, k: int = K, spread: float = 1.0, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(n, k), (n, k), (n, k - 1)]
    return [spread * torch.randn(s, generator=generator, dtype=torch.float64) for s in shapes]


def fractions(raw: torch.Tensor) -> torch.Tensor:
    """Our bin widths as fractions of 2B (the module's documented parameterisation)."""
    k = raw.shape[-1]
    return MIN_BIN / k + (1 - MIN_BIN) * torch.softmax(raw * math.log(2), -1)


def slopes(raw: torch.Tensor) -> torch.Tensor:
    return 1 + (1 - MIN_SLOPE) * ((raw + torch.sqrt(raw * raw + 4)) / 2 - 1)


def unclip(value: torch.Tensor, limit: float) -> torch.Tensor:
    """Inverse of zuko's soft clip ``r / (1 + |r| / limit)``."""
    return value / (1 - value.abs() / limit)


def zuko_spline(widths, heights, derivatives) -> zuko.transforms.MonotonicRQSTransform:
    """zuko's transform with the same knots and knot slopes as ours."""
    limit = -math.log(ZUKO_SLOPE)

    def bins(raw):
        logs = fractions(raw).log()
        return unclip(logs - logs.mean(-1, keepdim=True), limit / 2)

    return zuko.transforms.MonotonicRQSTransform(
        bins(widths), bins(heights), unclip(slopes(derivatives).log(), limit), bound=B,
        slope=ZUKO_SLOPE,
    )


def knots(raw: torch.Tensor) -> torch.Tensor:
    """Interior knot positions ``(n, K - 1)``."""
    return -B + 2 * B * fractions(raw).cumsum(-1)[:, :-1]


def test_points_and_knots_agree_with_zuko():
    widths, heights, derivatives = raw_parameters()
    generator = torch.Generator().manual_seed(1)
    column = torch.randint(0, K - 1, (N,), generator=generator)
    near = knots(widths).gather(1, column[:, None])[:, 0]
    x = torch.randn(N, generator=generator, dtype=torch.float64) * 2.5  # ~20% in the tails
    x[::4] = near[::4] + torch.tensor([0.0, 1e-9, -1e-9, 1e-6]).repeat(N // 16)
    y, log_slope = rational_quadratic_spline(x, widths, heights, derivatives, B)
    reference = zuko_spline(widths, heights, derivatives)
    y_zuko, ladj_zuko = reference.call_and_ladj(x)
    assert (x.abs() > B).sum() > 40
    assert torch.allclose(y, y_zuko, rtol=0, atol=1e-12)
    assert torch.allclose(log_slope, ladj_zuko, rtol=0, atol=1e-12)
    x_back, inverse_log_slope = rational_quadratic_spline(y, widths, heights, derivatives, B,
                                                          inverse=True)
    assert torch.allclose(x_back, reference.inv(y), rtol=0, atol=1e-12)
    assert torch.allclose(inverse_log_slope, -ladj_zuko, rtol=0, atol=1e-12)


def test_inverse_recovers_points_near_edges_and_in_the_tails():
    widths, heights, derivatives = raw_parameters(spread=1.5, seed=2)
    edges = knots(widths)
    offsets = torch.tensor([0.0, 1e-12, -1e-12, 1e-7, -1e-7], dtype=torch.float64)
    x = torch.cat([
        (edges[:, :, None] + offsets).reshape(N, -1),
        torch.tensor([-B, B, -B - 1e-12, B + 1e-12, -10.0, 10.0, 0.0],
                     dtype=torch.float64).expand(N, -1),
    ], 1)
    params = [p[:, None].expand(N, x.shape[1], -1) for p in (widths, heights, derivatives)]
    y, log_slope = rational_quadratic_spline(x, *params, B)
    x_back, inverse_log_slope = rational_quadratic_spline(y, *params, B, inverse=True)
    assert torch.allclose(x_back, x, rtol=0, atol=1e-12)
    # in the steepest bins ln g' changes by ~1e3 per unit x: 1e-14 in x is 1e-11 in ln g'
    assert torch.allclose(inverse_log_slope, -log_slope, rtol=0, atol=1e-10)
    tails = x.abs() > B
    assert torch.equal(y[tails], x[tails]) and torch.equal(log_slope[tails], 0 * x[tails])


def test_strictly_increasing_on_a_fine_grid():
    widths, heights, derivatives = raw_parameters(n=20, spread=2.0, seed=3)
    grid = torch.linspace(-1.5 * B, 1.5 * B, 20001, dtype=torch.float64)
    params = [p[:, None].expand(20, grid.numel(), -1) for p in (widths, heights, derivatives)]
    y, _ = rational_quadratic_spline(grid.expand(20, -1), *params, B)
    assert (y.diff(dim=1) > 0).all()


@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_log_slope_is_the_log_of_the_autograd_derivative(inverse):
    widths, heights, derivatives = raw_parameters(seed=4)
    x = (torch.randn(N, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * 2.5)
    x.requires_grad_()
    y, log_slope = rational_quadratic_spline(x, widths, heights, derivatives, B, inverse=inverse)
    (derivative,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(derivative.log(), log_slope, rtol=0, atol=1e-12)


@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_hand_written_gradients_pass_gradcheck(inverse):
    widths, heights, derivatives = (p.requires_grad_() for p in raw_parameters(n=12, k=4, seed=6))
    x = torch.linspace(-1.3 * B, 1.3 * B, 12, dtype=torch.float64, requires_grad=True)

    def spline(*args):
        return rational_quadratic_spline(*args, B, inverse=inverse)

    assert torch.autograd.gradcheck(spline, (x, widths, heights, derivatives))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_zero_parameters_are_exactly_the_identity(dtype):
    x = torch.linspace(-12, 12, 1001, dtype=dtype)
    for k in (2, 5, 8):
        params = torch.zeros(1001, k, dtype=dtype), torch.zeros(1001, k, dtype=dtype)
        for inverse in (False, True):
            y, log_slope = rational_quadratic_spline(x, *params, torch.zeros(1001, k - 1,
                                                                             dtype=dtype),
                                                     bound=3.0, inverse=inverse)
            assert torch.equal(y, x) and torch.equal(log_slope, torch.zeros_like(x))


@pytest.mark.parametrize(
    "kwargs", [{"bins": 1}, {"bins": True}, {"bins": 2.5}, {"bound": 0}, {"bound": float("nan")},
               {"bound": -1}, {"bound": float("inf")}, {"hidden_s": 0}, {"mlp_depth": 0}],
    ids=lambda kwargs: "-".join(f"{k}={v}" for k, v in kwargs.items()),
)
def test_spline_block_refuses_bad_values(kwargs):
    (name, value), = kwargs.items()
    with pytest.raises(ValueError, match=rf"{name}={value!r}".replace("(", r"\(")):
        SplinePatchCoupling(4, **kwargs)


@pytest.mark.parametrize(
    "field, value",
    [("coupling", "cubic"), ("bins", 1), ("bins", True), ("bins", 8.0), ("spline_bound", 0.0),
     ("spline_bound", -1.0), ("spline_bound", float("nan")), ("spline_bound", float("inf"))],
)
def test_flow_config_refuses_bad_spline_fields(field, value):
    with pytest.raises(ValueError, match=rf"{field}={value!r}"):
        validate_flow_config(FlowConfig(L=4, **{field: value}))


def test_old_config_dicts_still_build_the_affine_flow_with_the_same_keys():
    from neuralrg.jobs.config import RunConfig

    old = {"L": 4, "d": 2, "layout": "mera", "depth": 8, "n_disentanglers": 1, "n_layers": 2,
           "hidden_s": 8, "hidden_t": 8, "mlp_depth": 2, "symmetrise": "none"}
    flow = build_flow(RunConfig.from_dict({"flow": old}).flow)
    assert all(type(block) is PatchCoupling for block in flow.bijector.blocks)
    keys = {k.split(".", 5)[-1] for k in flow.state_dict()}
    assert keys == {"s_net.0.weight", "s_net.0.bias", "s_net.2.weight", "s_net.2.bias",
                    "s_net.4.weight", "s_net.4.bias", "t_net.0.weight", "t_net.0.bias",
                    "t_net.2.weight", "t_net.2.bias", "t_net.4.weight", "t_net.4.bias", "scale"}


def test_spline_config_builds_spline_blocks_that_start_as_the_identity():
    flow = build_flow(FlowConfig(L=4, d=2, n_layers=2, hidden_s=8, coupling="spline", bins=5,
                                 spline_bound=2.0))
    assert all(isinstance(block, SplinePatchCoupling) for block in flow.bijector.blocks)
    z = 3 * torch.randn(6, 4, 4)
    x, log_det = flow.bijector(z)
    assert torch.equal(x, z) and torch.equal(log_det, torch.zeros(6))
