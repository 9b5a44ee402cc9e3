"""Lattice growth: every block of the grown MERA is an exact copy of the block it comes from,
and mismatched architectures are refused by name."""

import pytest
import torch

from neuralrg.flows.flow import FlowConfig, build_flow
from neuralrg.flows.growth import grown_state_dict, growth_mismatch, source_block

SMALL = FlowConfig(L=4, d=2, n_disentanglers=1, n_layers=2, hidden_s=8, hidden_t=8,
                   mlp_depth=1)
LARGE = FlowConfig(**{**SMALL.__dict__, "L": 8})


def randomised(config: FlowConfig):
    flow = build_flow(config)
    with torch.no_grad():
        for p in flow.parameters():
            p.normal_()
    return flow


@pytest.mark.parametrize("coupling", ["affine", "spline"])
def test_every_block_is_copied_exactly(coupling):
    small_config = FlowConfig(**{**SMALL.__dict__, "coupling": coupling})
    large_config = FlowConfig(**{**LARGE.__dict__, "coupling": coupling})
    small = randomised(small_config)
    large = build_flow(large_config)
    large.load_state_dict(grown_state_dict(small.state_dict(), small_config, large_config))
    assert len(large.bijector.blocks) == 6 and len(small.bijector.blocks) == 4
    for k, block in enumerate(large.bijector.blocks):
        source = small.bijector.blocks[source_block(k, small_config)]
        for (name, value), (_, expected) in zip(block.state_dict().items(),
                                                source.state_dict().items(), strict=True):
            assert torch.equal(value, expected), (k, name)
    assert [source_block(k, small_config) for k in range(6)] == [0, 1, 2, 3, 2, 3]
    x, _ = large.sample(4)
    assert torch.isfinite(large.log_prob(x)).all()


def test_prefixed_keys_of_a_symmetrised_flow_are_grown_too():
    state = {f"flow.{k}": v for k, v in randomised(SMALL).state_dict().items()}
    grown = grown_state_dict(state, SMALL, LARGE)
    assert set(grown) == {f"flow.{k}" for k in build_flow(LARGE).state_dict()}


@pytest.mark.parametrize("change, message", [
    ({"L": 16}, "L=16 must be twice the L=4"),
    ({"hidden_s": 16}, "flow.hidden_s=16 differs from the 8"),
    ({"coupling": "affine"}, "flow.coupling='affine' differs"),
    ({"n_disentanglers": 0}, "flow.n_disentanglers=0 differs"),
    ({"layout": "tebd"}, "growth needs MERA layouts"),
])
def test_mismatches_are_refused_by_name(change, message):
    large = FlowConfig(**{**LARGE.__dict__, **change})
    assert message in growth_mismatch(SMALL, large)
    with pytest.raises(ValueError, match=message.split("=")[0]):
        grown_state_dict(randomised(SMALL).state_dict(), SMALL, large)
