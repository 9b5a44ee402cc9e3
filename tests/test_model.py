"""The Python API checks what the command line checks: a flow for another lattice, a user
target whose log_prob has the wrong shape, dtype or values, an unknown sampler, impossible
sampler settings; and the Z2 default is the command line's. Each is refused when the object
is made, before any training step."""

import pytest
import torch

import neuralrg
from neuralrg import FlowConfig, Model, RelaxedIsing, SampleConfig
from neuralrg.cli import config_from_flags
from neuralrg.targets import build_target

SMALL = {"hidden_s": 8, "hidden_t": 8, "n_layers": 2}


class Chain(neuralrg.TargetBase):
    """A Gaussian chain whose log_prob returns what the test asks for."""

    def __init__(self, L: int = 4, d: int = 1, result=None):
        self.event_shape, self.result = (L,), result

    def log_prob(self, x):
        value = -0.5 * x.pow(2).sum(1)
        return value if self.result is None else self.result(value)


def test_a_flow_for_another_lattice_is_refused_naming_both_shapes():
    with pytest.raises(ValueError, match=r"\(8, 8\).*RelaxedIsing.*\(4, 4\).*L=4, d=2"):
        Model.of(FlowConfig(L=8, **SMALL), RelaxedIsing(4))


def test_a_flow_built_for_another_lattice_is_refused_too():
    flow = neuralrg.build_flow(FlowConfig(L=8, **SMALL))
    with pytest.raises(ValueError, match=r"\(8, 8\).*\(4, 4\)"):
        Model(flow, RelaxedIsing(4))


def test_something_that_is_not_a_target_is_refused_by_type():
    with pytest.raises(TypeError, match="list is not a Target"):
        Model.of(FlowConfig(L=4, d=1, **SMALL), [1, 2, 3])


def test_log_prob_of_shape_b_by_1_is_refused_before_training():
    with pytest.raises(ValueError, match=r"Chain.log_prob .* returned shape \(2, 1\); "
                                         r"expected \(2,\)"):
        Model.of(FlowConfig(L=4, d=1, **SMALL), Chain(result=lambda v: v[:, None]))


def test_log_prob_with_an_integer_dtype_is_refused():
    with pytest.raises(TypeError, match="Chain.log_prob .* dtype torch.int64; expected a "
                                        "floating-point dtype"):
        Model.of(FlowConfig(L=4, d=1, **SMALL), Chain(result=lambda v: v.long()))


def test_log_prob_that_is_not_finite_is_refused():
    with pytest.raises(ValueError, match=r"Chain.log_prob .* returned \[nan, nan\]; expected "
                                         "finite values"):
        Model.of(FlowConfig(L=4, d=1, **SMALL), Chain(result=lambda v: v * float("nan")))


def test_log_prob_that_is_not_a_tensor_is_refused():
    with pytest.raises(TypeError, match="Chain.log_prob .* returned a float"):
        Model.of(FlowConfig(L=4, d=1, **SMALL), Chain(result=lambda v: 1.0))


def test_checking_log_prob_moves_no_random_stream():
    flow = neuralrg.build_flow(FlowConfig(L=4, d=1, **SMALL))
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    Model(flow, Chain())
    assert torch.equal(torch.rand(3), expected)


def test_an_unknown_sampler_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="method='gibbs' is unknown; allowed: auto, exact, hybrid"):
        SampleConfig(method="gibbs")


def test_impossible_sampler_settings_are_refused():
    with pytest.raises(ValueError, match="chains=0 must be an integer >= 1"):
        SampleConfig(chains=0)


def test_an_unknown_z2_mode_is_refused():
    with pytest.raises(ValueError, match="z2_symmetric='sometimes' is unknown"):
        Model.of(FlowConfig(L=4, z2_symmetric="sometimes", **SMALL), RelaxedIsing(4))


@pytest.mark.parametrize("name", ["ising", "phi4", "ring2d", "mog2", "wave"])
def test_the_z2_default_is_the_command_lines_for_every_built_in_target(name):
    cli = config_from_flags({"target": name})
    target = build_target(cli.target)
    flow = FlowConfig(L=cli.flow.L, d=cli.flow.d, **SMALL)
    assert Model.of(flow, target).z2_mode == cli.flow.z2_symmetric
    assert (cli.flow.z2_symmetric == "eval") == bool(getattr(target, "z2_symmetric", False))
