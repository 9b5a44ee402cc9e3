"""One parametrised contract test over every bijector x {float32, float64}."""

import io

import pytest
import torch
from torch.func import jacrev

from neuralrg.flows.coupling import PatchCoupling
from neuralrg.flows.flow import Flow, FlowConfig, build_flow

CASES = {
    "coupling-1d": lambda: Flow(PatchCoupling(2, n_layers=3, hidden_s=8, hidden_t=8), (2,)),
    "coupling-2d": lambda: Flow(
        PatchCoupling(4, n_layers=4, hidden_s=8, hidden_t=8, mlp_depth=2), (4,)
    ),
    "tebd-1d": lambda: build_flow(
        FlowConfig(L=6, d=1, layout="tebd", depth=3, hidden_s=8, hidden_t=8)
    ),
    "tebd-2d": lambda: build_flow(
        FlowConfig(L=4, d=2, layout="tebd", depth=3, n_layers=2, hidden_s=8, hidden_t=8)
    ),
    "mera-1d": lambda: build_flow(
        FlowConfig(L=8, d=1, n_disentanglers=2, hidden_s=8, hidden_t=8, mlp_depth=1)
    ),
    "mera-2d": lambda: build_flow(
        FlowConfig(L=4, d=2, n_disentanglers=1, n_layers=2, hidden_s=8, hidden_t=8)
    ),
    "mera-2d-no-disentangler": lambda: build_flow(
        FlowConfig(L=4, d=2, n_disentanglers=0, n_layers=2, hidden_s=8, hidden_t=8)
    ),
}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}


def randomized(name: str, dtype: torch.dtype) -> Flow:
    """The flow with all parameters perturbed away from the identity initialisation."""
    flow = CASES[name]().to(dtype)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return flow


@pytest.fixture(params=list(CASES), ids=list(CASES))
def name(request):
    return request.param


@pytest.fixture(params=list(DTYPES), ids=list(DTYPES))
def dtype(request):
    return DTYPES[request.param]


def test_round_trip(name, dtype):
    flow = randomized(name, dtype)
    z = torch.randn(5, *flow.event_shape, dtype=dtype)
    x, log_det = flow.bijector(z)
    z_back, inv_log_det = flow.bijector.inverse(x)
    tol = TOLERANCE[dtype]
    assert torch.allclose(z_back, z, atol=tol * 10, rtol=tol * 10)
    assert torch.allclose(log_det, -inv_log_det, atol=tol * 10, rtol=tol * 10)


def test_log_det_matches_jacobian(name, dtype):
    flow = randomized(name, dtype).double()
    shape = flow.event_shape
    z = torch.randn(3, *shape, dtype=torch.float64)
    _, log_det = flow.bijector(z)

    def single(v):
        return flow.bijector(v.reshape(1, *shape))[0].reshape(-1)

    for k in range(3):
        jac = jacrev(single)(z[k].reshape(-1))
        assert torch.allclose(torch.linalg.slogdet(jac)[1], log_det[k], atol=1e-10)


def test_log_prob_of_sample_equals_its_log_q(name, dtype):
    flow = randomized(name, dtype)
    x, log_q = flow.sample(7)
    tol = TOLERANCE[dtype]
    assert x.dtype == dtype and log_q.shape == (7,)
    assert torch.allclose(flow.log_prob(x), log_q, atol=tol * 100, rtol=tol * 10)


def test_every_parameter_gets_a_gradient(name, dtype):
    flow = randomized(name, dtype)
    x, log_q = flow.sample(16)
    (log_q.mean() + x.pow(2).mean()).backward()
    for pname, p in flow.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


def test_state_dict_round_trip_with_weights_only(name, dtype):
    flow = randomized(name, dtype)
    buffer = io.BytesIO()
    torch.save(flow.state_dict(), buffer)
    buffer.seek(0)
    fresh = CASES[name]().to(dtype)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(4, *flow.event_shape, dtype=dtype)
    assert torch.equal(fresh.log_prob(x), flow.log_prob(x))


def test_fresh_flow_is_the_identity(name):
    flow = CASES[name]()
    z = torch.randn(3, *flow.event_shape)
    x, log_det = flow.bijector(z)
    assert torch.equal(x, z) and torch.equal(log_det, torch.zeros(3))
