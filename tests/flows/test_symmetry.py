import math

import pytest
import torch

from neuralrg.flows.bijector import Bijector
from neuralrg.flows.flow import Flow, FlowConfig, build_flow
from neuralrg.flows.symmetry import Z2SymmetricFlow


class Shift(Bijector):
    """x = z + mu: q(x) = N(x; mu, 1)."""

    def __init__(self, mu: torch.Tensor):
        super().__init__()
        self.mu = torch.nn.Parameter(mu)

    def forward(self, z):
        return z + self.mu, z.new_zeros(z.shape[0])

    def inverse(self, x):
        return x - self.mu, x.new_zeros(x.shape[0])


def gaussian_log_prob(x, mu):
    return (-0.5 * (x - mu).pow(2) - 0.5 * math.log(2 * math.pi)).sum(1)


def test_symmetrised_density_is_the_known_mixture():
    mu = torch.tensor([1.5, -0.5], dtype=torch.float64)
    sym = Z2SymmetricFlow(Flow(Shift(mu.clone()), (2,)))
    x = torch.randn(50, 2, dtype=torch.float64) * 2
    expected = torch.log(
        0.5 * gaussian_log_prob(x, mu).exp() + 0.5 * gaussian_log_prob(x, -mu).exp()
    )
    assert torch.allclose(sym.log_prob(x), expected, atol=1e-12)


def test_samples_cover_both_signs_and_carry_the_mixture_density():
    mu = torch.tensor([4.0, 4.0], dtype=torch.float64)
    sym = Z2SymmetricFlow(Flow(Shift(mu), (2,)))
    x, log_q = sym.sample(4000, torch.Generator().manual_seed(0))
    positive = (x.sum(1) > 0).double().mean()
    assert abs(float(positive) - 0.5) < 4 * 0.5 / math.sqrt(4000)
    assert torch.allclose(sym.log_prob(x), log_q, atol=1e-10)
    assert torch.allclose(sym.log_prob(-x), log_q, atol=1e-10)


def test_symmetrised_density_integrates_to_one_in_1d():
    sym = Z2SymmetricFlow(Flow(Shift(torch.tensor([0.7], dtype=torch.float64)), (1,)))
    grid = torch.linspace(-12, 12, 20001, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        total = torch.trapezoid(sym.log_prob(grid).exp(), grid[:, 0])
    assert abs(float(total) - 1) < 1e-10


@pytest.mark.parametrize("symmetric", [False, True], ids=["plain", "z2"])
def test_sample_and_score_is_sample_plus_log_prob(symmetric):
    flow = build_flow(FlowConfig(L=4, hidden_s=8, hidden_t=8)).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    density = Z2SymmetricFlow(flow) if symmetric else flow
    x = torch.randn(5, 4, 4, dtype=torch.float64)
    y, log_q_y, log_q_x = density.sample_and_score(3, x, torch.Generator().manual_seed(1))
    y_ref, log_q_ref = density.sample(3, torch.Generator().manual_seed(1))
    assert torch.equal(y, y_ref)
    torch.testing.assert_close(log_q_y, log_q_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(log_q_x, density.log_prob(x), rtol=0, atol=1e-12)
