"""The Python API checks what the command line checks: a flow for another lattice, a user
target whose log_prob has the wrong shape, dtype or values, an unknown sampler, impossible
sampler settings; and the Z2 default is the command line's. Each is refused when the object
is made, before any training step. And the notebook's way: the lattice from the target, fit,
sample (detached, spins on request), measure and the free energy as typed results, exact
references from the target, save and load."""

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
        Model.of(RelaxedIsing(4), FlowConfig(L=8, **SMALL))


def test_a_flow_built_for_another_lattice_is_refused_too():
    flow = neuralrg.build_flow(FlowConfig(L=8, **SMALL))
    with pytest.raises(ValueError, match=r"\(8, 8\).*\(4, 4\)"):
        Model(flow, RelaxedIsing(4))


def test_something_that_is_not_a_target_is_refused_by_type():
    with pytest.raises(TypeError, match="list is not a Target"):
        Model.of([1, 2, 3], FlowConfig(L=4, d=1, **SMALL))


def test_log_prob_of_shape_b_by_1_is_refused_before_training():
    with pytest.raises(ValueError, match=r"Chain.log_prob .* returned shape \(2, 1\); "
                                         r"expected \(2,\)"):
        Model.of(Chain(result=lambda v: v[:, None]), FlowConfig(L=4, d=1, **SMALL))


def test_log_prob_with_an_integer_dtype_is_refused():
    with pytest.raises(TypeError, match="Chain.log_prob .* dtype torch.int64; expected a "
                                        "floating-point dtype"):
        Model.of(Chain(result=lambda v: v.long()), FlowConfig(L=4, d=1, **SMALL))


def test_log_prob_that_is_not_finite_is_refused():
    with pytest.raises(ValueError, match=r"Chain.log_prob .* returned \[nan, nan\]; expected "
                                         "finite values"):
        Model.of(Chain(result=lambda v: v * float("nan")), FlowConfig(L=4, d=1, **SMALL))


def test_log_prob_that_is_not_a_tensor_is_refused():
    with pytest.raises(TypeError, match="Chain.log_prob .* returned a float"):
        Model.of(Chain(result=lambda v: 1.0), FlowConfig(L=4, d=1, **SMALL))


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


def test_an_unknown_symmetrise_mode_is_refused_when_the_config_is_made():
    with pytest.raises(ValueError, match="symmetrise='sometimes' is unknown"):
        FlowConfig(symmetrise="sometimes", **SMALL)


@pytest.mark.parametrize("name", ["ising", "phi4", "ring2d", "mog2", "wave"])
def test_the_z2_default_is_the_command_lines_for_every_built_in_target(name):
    cli = config_from_flags({"target": name})
    target = build_target(cli.target)
    model = Model.of(target, FlowConfig(**SMALL))
    assert model.symmetrise == cli.flow.symmetrise
    assert (cli.flow.symmetrise == "eval") == bool(getattr(target, "z2_symmetric", False))


def test_the_flows_lattice_comes_from_the_target():
    model = Model.of(RelaxedIsing(L=6, d=1), FlowConfig(layout="tebd", **SMALL))
    assert model.flow.event_shape == (6,) and model.flow_config.L == 6


def test_fit_trains_and_sample_gives_detached_tensors_and_spins():
    model = Model.of(RelaxedIsing(4), FlowConfig(**SMALL))
    torch.manual_seed(0)
    before = model.sample(256)
    result = model.fit(neuralrg.TrainConfig(steps=30, batch_size=64), progress=False)
    assert result.steps_done == 30
    x, spins = model.sample(5), model.sample(5, spins=True)
    assert not x.requires_grad and x.shape == (5, 4, 4)
    assert set(spins.unique().tolist()) <= {-1.0, 1.0}
    assert not torch.equal(before[:5], x)


def test_spins_need_a_target_with_spins():
    with pytest.raises(ValueError, match="Chain has no sample_spins"):
        Model.of(Chain(), FlowConfig(layout="tebd", **SMALL)).sample(2, spins=True)


def test_the_free_energy_is_a_typed_quantity_against_the_targets_exact_value():
    model = Model.of(RelaxedIsing(4), FlowConfig(**SMALL))
    model.fit(neuralrg.TrainConfig(steps=150, batch_size=128), progress=False)
    config = SampleConfig(chains=8, therm=20, steps=100, importance_samples=2048)
    measured = model.measure(config, progress=False)
    assert isinstance(measured, neuralrg.Measurement)
    f = measured.free_energy
    assert isinstance(f, neuralrg.Quantity)
    assert f.exact == pytest.approx(model.exact()["free_energy_per_site"])
    assert abs(f.value - f.exact) < 4 * f.err  # seeded; the tolerance in error bars
    assert "free energy" in repr(measured) and "<table" in measured._repr_html_()
    assert measured["energy_per_site"].exact == pytest.approx(model.exact()["energy_per_site"])


def test_a_saved_model_loads_with_the_same_density(tmp_path):
    model = Model.of(neuralrg.Phi4(L=4, kappa=0.2), FlowConfig(**SMALL))
    model.fit(neuralrg.TrainConfig(steps=5, batch_size=16), progress=False)
    path = neuralrg.save(model, tmp_path / "phi4")
    again = neuralrg.load(path)
    x = torch.randn(3, 4, 4)
    assert torch.allclose(again.sampler.log_prob(x), model.sampler.log_prob(x))
    assert again.target.kappa == 0.2 and again.symmetrise == model.symmetrise
    with pytest.raises(ValueError, match="holds"):
        neuralrg.save(model, path)


def test_a_model_of_an_unregistered_target_cannot_be_saved(tmp_path):
    model = Model.of(Chain(), FlowConfig(layout="tebd", **SMALL))
    with pytest.raises(ValueError, match="needs a registered target; register Chain"):
        neuralrg.save(model, tmp_path / "chain")
