"""Growth from the command line: --init-from seeds a run from one at L/2, --grow-from runs
the whole chain in stages; bad values are one-line errors with exit code 2."""

import json

import pytest
import torch

from neuralrg.cli import main
from neuralrg.flows.growth import grown_state_dict
from neuralrg.jobs import RunConfig, RunModel
from neuralrg.jobs.growth import grow_into
from neuralrg.jobs.runs import RunDirectory

ARCH = ["--hidden-s", "8", "--hidden-t", "8", "--n-layers", "2", "--mlp-depth", "1"]
QUICK = ["--steps", "10", "--batch-size", "16", "--eval-samples", "128", "--mc-chains", "4",
         "--mc-therm", "2", "--mc-steps", "8", "--no-progress"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("grow") / "L4"
    assert main(["train", "--L", "4", *ARCH, *QUICK, "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_init_from_starts_from_the_grown_blocks(small_run, tmp_path):
    run_dir = tmp_path / "L8"
    assert main(["train", "--L", "8", *ARCH, *QUICK, "--init-from", str(small_run),
                 "--run-dir", str(run_dir)]) == 0
    config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert config.init_from == str(small_run)
    model = RunModel.build(config)
    grow_into(model, config)
    small = RunConfig.from_dict(RunDirectory(small_run).read_config())
    expected = grown_state_dict(RunDirectory(small_run).load_checkpoint()["model"], small.flow,
                                config.flow)
    for name, value in model.training_density.state_dict().items():
        assert torch.equal(value, expected[name]), name


@pytest.mark.parametrize("flags, message", [
    (["--L", "16"], "L=16 must be twice the L=4"),
    (["--L", "8", "--T", "3.0"], "target.options="),
    (["--L", "8", "--dtype", "float64"], "dtype='float64' differs"),
    (["--L", "8", "--hidden-s", "16"], "flow.hidden_s=16 differs"),
])
def test_init_from_refuses_mismatches_by_name(small_run, flags, message, tmp_path, capsys):
    assert main(["train", *ARCH, *QUICK, *flags, "--init-from", str(small_run),
                 "--run-dir", str(tmp_path / "r")]) == 2  # later flags win
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_grow_from_runs_the_chain_in_stages_and_resumes(tmp_path, capsys):
    run_dir = tmp_path / "chain"
    argv = ["train", "--L", "8", "--grow-from", "4", *ARCH, *QUICK, "--run-dir", str(run_dir)]
    assert main(argv) == 0
    stage = run_dir / "stages" / "L4"
    assert json.loads((stage / "summary.json").read_text())["stopped_reason"] == "completed"
    chain = json.loads((run_dir / "config.json").read_text())
    assert chain["grow_from"] == 4 and chain["train"]["steps"] == 10  # the chain's budget
    assert json.loads((stage / "config.json").read_text())["train"]["steps"] == 2  # 16/80
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 8
    (run_dir / "summary.json").unlink()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert (run_dir / "summary.json").exists()


@pytest.mark.parametrize("flags, message", [
    (["--bins", "1", "--coupling", "spline"], "bins=1 must be an integer >= 2"),
    (["--bins", "8", "--coupling", "affine"], "--bins is for --coupling spline"),
    (["--spline-bound", "0"], "spline_bound=0.0 must be a finite number > 0"),
    (["--spline-bound", "nan"], "spline_bound=nan"),
    (["--spline-bound", "4", "--coupling", "affine"], "--spline-bound is for --coupling spline"),
    (["--init-from", "/nonexistent/run"], "holds no trained run"),
    (["--grow-from", "3"], "grow-from=3 must be a power of 2 >= 2"),
    (["--grow-from", "8"], "grow-from=8 must be smaller than L=8"),
    (["--grow-from", "4", "--layout", "tebd"], "grow-from needs the MERA layout"),
    (["--grow-from", "4", "--init-from", "x"], "exclude each other"),
])
def test_bad_growth_and_spline_flags(flags, message, tmp_path, capsys):
    assert main(["train", *flags, "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
