"""Neighbourhood context of patch couplings: who sees whom, and only whom."""

import pytest
import torch
from torch.func import jacrev

from neuralrg.flows.context import PatchContext
from neuralrg.flows.coupling import PatchCoupling
from neuralrg.flows.flow import FlowConfig, build_flow
from neuralrg.flows.growth import grown_state_dict
from neuralrg.flows.layouts import mera_layout, tebd_layout
from neuralrg.flows.spline import SplinePatchCoupling


def test_both_layouts_gather_the_same_neighbourhood():
    context = PatchContext((3, 4), reach=1)
    rows = torch.randn(2 * 12, 5)  # (batch, patch) rows, 5 features
    gathered = context.gather(rows)
    assert gathered.shape == (24, 5 * 9)
    assert torch.equal(context.gather(rows.t(), features_first=True), gathered.t())


@pytest.mark.parametrize("layer", [mera_layout(16, 2, 1)[k] for k in (0, 1, 2, 3)]
                         + [tebd_layout(16, 2, 2)[1]],
                         ids=["dis-0", "dec-0", "dis-1", "dec-1", "tebd-shifted"])
def test_neighbours_are_the_adjacent_patches_on_the_lattice(layer):
    """The 9 gathered patches are the patch itself and the 8 whose corners lie one patch
    spacing away (periodically) on the 16 x 16 lattice."""
    corners = torch.stack([layer.indices[:, 0] // 16, layer.indices[:, 0] % 16], 1).double()
    context = PatchContext(layer.grid, reach=1)
    seen = context.gather(corners).reshape(layer.n_patches, 9, 2)
    spacing = 16 / layer.grid[0]
    offsets = (seen - corners[:, None, :] + 8) % 16 - 8  # periodic difference
    expected = {(a * spacing, b * spacing) for a in (-1, 0, 1) for b in (-1, 0, 1)}
    assert all({tuple(o) for o in patch.tolist()} == expected for patch in offsets)


@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("make", [
    lambda n, context: PatchCoupling(4, n_layers=n, hidden_s=8, hidden_t=8, context=context),
    lambda n, context: SplinePatchCoupling(4, n_layers=n, hidden_s=8, context=context),
], ids=["affine", "spline"])
def test_a_patch_depends_only_on_patches_within_reach(make, n_layers):
    """On a 7 x 7 grid of patches with reach 1, patch (3, 3) after ``n`` couplings depends on
    the patches up to ``n`` steps away, and on no other."""
    torch.manual_seed(0)
    block = make(n_layers, PatchContext((7, 7), reach=1)).double()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.3 * torch.randn_like(p))
    z = torch.randn(49, 4, dtype=torch.float64)
    jac = jacrev(lambda v: block(v.reshape(49, 4))[0][24])(z.reshape(-1)).reshape(4, 7, 7, 4)
    seen = jac.abs().sum((0, 3)) > 0
    expected = torch.zeros(7, 7, dtype=torch.bool)
    expected[3 - n_layers:4 + n_layers, 3 - n_layers:4 + n_layers] = True
    assert torch.equal(seen, expected)


def test_isolated_patches_ignore_their_neighbours():
    block = PatchCoupling(4, n_layers=2, hidden_s=8, hidden_t=8).double()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.3 * torch.randn_like(p))
    z = torch.randn(3, 4, dtype=torch.float64)
    jac = jacrev(lambda v: block(v.reshape(3, 4))[0][0])(z.reshape(-1)).reshape(4, 3, 4)
    assert jac[:, 1:].abs().max() == 0 and jac[:, 0].abs().max() > 0


@pytest.mark.parametrize("context", [-1, 4, 1.5, True])
def test_bad_context_is_a_value_error(context):
    with pytest.raises(ValueError, match="context"):
        FlowConfig(L=8, context=context)


def test_context_adds_only_the_conditioners_first_layer():
    sizes = {c: sum(p.numel() for p in build_flow(FlowConfig(L=8, hidden_s=16, mlp_depth=1,
                                                              context=c)).parameters())
             for c in (0, 1)}
    # 6 layers (3 scales) x 4 couplings x 16 hidden units x 2 (9 - 1) more inputs each
    assert sizes[1] - sizes[0] == 6 * 4 * 16 * 2 * 8


def test_a_grown_flow_with_context_keeps_the_small_flows_density_map():
    """Blocks do not depend on the grid size, so growth carries context over unchanged: the
    grown flow's coarse-scale blocks are exactly the small flow's."""
    small_config, large_config = FlowConfig(L=4, hidden_s=8), FlowConfig(L=8, hidden_s=8)
    small, large = build_flow(small_config), build_flow(large_config)
    large.load_state_dict(grown_state_dict(small.state_dict(), small_config, large_config))
    assert torch.equal(large.bijector.blocks[0].couplings[0].net[0].weight,
                       small.bijector.blocks[0].couplings[0].net[0].weight)
    x, log_q = large.sample(4)
    assert torch.allclose(large.log_prob(x), log_q, atol=1e-4)
