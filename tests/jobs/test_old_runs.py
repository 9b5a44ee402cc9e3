"""A run directory written before the spline couplings, the verdicts and the restructuring
(neuralrg 86d9fce: no coupling key, old evaluation settings) still loads, gives the same
densities, samples, and resumes."""

import json
import shutil
from pathlib import Path

import torch

from neuralrg.cli import main
from neuralrg.jobs import load_model

FIXTURE = Path(__file__).parents[1] / "fixtures" / "run-v1"


def copy_of_fixture(tmp_path) -> Path:
    run_dir = tmp_path / "run-v1"
    shutil.copytree(FIXTURE, run_dir)
    return run_dir


def test_old_run_loads_as_the_affine_flow_it_was(tmp_path):
    model, _ = load_model(copy_of_fixture(tmp_path))
    reference = json.loads((FIXTURE / "reference.json").read_text())
    x = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(reference["x_seed"]))
    assert model.config.flow.coupling == "affine" and model.config.flow.context == 0
    torch.testing.assert_close(model.flow.log_prob(x), torch.tensor(reference["log_q"]))
    torch.testing.assert_close(model.sampler.log_prob(x), torch.tensor(reference["log_q_sym"]))
    torch.testing.assert_close(model.target.log_prob(x), torch.tensor(reference["log_pi"]))


def test_old_run_samples_and_resumes(tmp_path, capsys):
    run_dir = copy_of_fixture(tmp_path)
    assert main(["sample", str(run_dir), "--chains", "8", "--therm", "5", "--steps", "10",
                 "--is-samples", "256"]) == 0
    assert "energy_per_site" in capsys.readouterr().out
    config = json.loads((run_dir / "config.json").read_text())
    config["train"]["steps"] = 30
    (run_dir / "config.json").write_text(json.dumps(config))
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 30 and "observables" in summary


def test_a_spline_run_written_before_context_keeps_its_isolated_patches(tmp_path):
    """A run of neuralrg b7f003f (splines, no ``context`` in its configuration) loads as the
    flow it was and gives the same densities."""
    fixture = FIXTURE.parent / "run-v2"
    run_dir = tmp_path / "run-v2"
    shutil.copytree(fixture, run_dir)
    model, _ = load_model(run_dir)
    reference = json.loads((fixture / "reference.json").read_text())
    x = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(reference["x_seed"]))
    assert model.config.flow.coupling == "spline" and model.config.flow.context == 0
    torch.testing.assert_close(model.flow.log_prob(x), torch.tensor(reference["log_q"]))
    torch.testing.assert_close(model.sampler.log_prob(x), torch.tensor(reference["log_q_sym"]))
