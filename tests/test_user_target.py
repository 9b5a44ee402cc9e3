"""A target written outside the package (here: in this test file) goes through train, sample
and analyze like a built-in one, from Python and from the command line; a run made with it
is reopened only when the target is named again."""

import json
import math
from pathlib import Path

import pytest
import torch

import neuralrg
from neuralrg.cli import main
from neuralrg.jobs import RunConfig, load_model, sample_job, train_job
from neuralrg.jobs.analyze import analyze_run

SPEC = f"{Path(__file__).resolve()}:DoubleWellChain"


class DoubleWellChain(neuralrg.TargetBase):
    """A periodic chain of double wells with nearest and next-nearest neighbour couplings:
    ln pi = sum_i [-lam (x_i^2 - 1)^2 + k1 x_i x_{i+1} + k2 x_i x_{i+2}]."""

    z2_symmetric = True

    def __init__(self, L: int = 8, d: int = 1, k1: float = 0.5, k2: float = 0.1,
                 lam: float = 1.0):
        if d != 1:
            raise ValueError(f"d={d} must be 1: DoubleWellChain is a chain")
        self.event_shape, self.k1, self.k2, self.lam = (L,), k1, k2, lam

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        hop = self.k1 * x * x.roll(1, 1) + self.k2 * x * x.roll(2, 1)
        return (hop - self.lam * (x**2 - 1) ** 2).sum(1)

    def observable_moments(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        return x.double().pow(2).mean(1, keepdim=True).T

    @property
    def observables(self):
        return {"mean_x2": lambda mu: mu[0]}


TINY = {"steps": 40, "batch_size": 64}
EVAL = neuralrg.jobs.EvalConfig(neuralrg.SampleConfig(chains=16, therm=10, steps=60,
                                                     importance_samples=512))


def test_a_user_target_runs_through_train_sample_and_analyze_from_python(tmp_path):
    neuralrg.register_target("double-well-chain", DoubleWellChain)
    config = RunConfig(
        target=neuralrg.TargetConfig("double-well-chain", L=8, d=1, options={"k2": 0.2}),
        flow=neuralrg.FlowConfig(L=8, d=1, hidden_s=8, hidden_t=8, n_layers=2, mlp_depth=1,
                                 symmetrise="eval"),
        train=neuralrg.TrainConfig(**TINY), eval=EVAL)
    summary = train_job(config, tmp_path / "run", progress=False)
    assert summary["stopped_reason"] == "completed"
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    entry = saved["observables"]["mean_x2"]
    assert entry["exact"] is None and entry["pull"] is None and 0 < entry["value"] < 4
    assert saved["ln_z_exact"] is None and math.isfinite(saved["ln_z_bound"])
    model, run = load_model(tmp_path / "run")
    assert model.target.k2 == 0.2
    sampled = sample_job(model, run.path, neuralrg.SampleConfig(chains=8, therm=5, steps=20,
                                                                importance_samples=256))
    assert "mean_x2" in sampled["observables"]
    manifest = analyze_run(run.path, samples=64)
    assert {"samples", "receptive_fields", "training"} <= set(manifest["figures"])


@pytest.mark.slow
def test_a_user_target_from_the_command_line(tmp_path, capsys):
    run_dir = str(tmp_path / "cli")
    flags = ["--target", SPEC, "--target-option", "k1=0.4", "--L", "8", "--d", "1",
             "--steps", "30", "--batch-size", "32", "--hidden-s", "8", "--hidden-t", "8",
             "--n-layers", "2", "--eval-samples", "256", "--mc-chains", "8", "--mc-therm", "5",
             "--mc-steps", "20", "--run-dir", run_dir, "--no-progress"]
    assert main(["train", *flags]) == 0
    assert "mean_x2" in capsys.readouterr().out
    config = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert config["target"]["name"] == SPEC and config["target"]["options"]["k1"] == 0.4
    for command in (["sample", run_dir, "--chains", "8", "--therm", "5", "--steps", "10",
                     "--is-samples", "256"], ["analyze", run_dir, "--samples", "32"]):
        assert main(command) == 2  # not named again: refused, nothing imported from the run
        assert "name it again (--target" in capsys.readouterr().err
        assert main([*command, "--target", SPEC]) == 0
    assert main(["train", "--resume", run_dir, "--no-progress"]) == 2
    assert main(["train", "--resume", run_dir, "--target", SPEC, "--no-progress"]) == 0


@pytest.mark.parametrize("flags, message", [
    (["--target", "no_such_module:Thing"], "cannot import 'no_such_module'"),
    (["--target", f"{Path(__file__).resolve()}:Nothing"], "has no class 'Nothing'"),
    (["--target", f"{Path(__file__).resolve()}:TINY"], "has no class 'TINY'"),
    (["--target", "lattice-gauge"], "target='lattice-gauge' is unknown"),
    (["--target", SPEC, "--d", "1", "--target-option", "k3=1"], "KEY one of: k1, k2, lam"),
    (["--target", SPEC, "--d", "1", "--target-option", "k1=strong"], "k1 must be a float"),
    (["--target", SPEC, "--d", "1", "--kappa", "0.3"], "--kappa is not an option"),
    (["--target", SPEC], "d=2 must be 1"),
])
def test_bad_user_targets_give_one_line_errors(flags, message, tmp_path, capsys):
    assert main(["train", *flags, "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_object_that_is_not_a_target_is_refused():
    class NoShape:
        def log_prob(self, x):
            return x.sum(1)

    neuralrg.register_target("no-shape", NoShape)
    with pytest.raises(ValueError, match="does not satisfy the Target protocol"):
        neuralrg.build_target(neuralrg.TargetConfig("no-shape", L=4, d=1))
