"""``neuralrg scan`` and ``train --warm-from`` from the command line: bad grids and flags
are one-line errors with exit code 2 before any training; a real (tiny) scan runs with two
workers, grows, warm-starts, resumes and reports."""

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralrg.cli import main
from neuralrg.jobs import RunConfig
from neuralrg.jobs import scan as scan_module
from neuralrg.jobs.runs import RunDirectory

ARCH = ["--hidden-s", "8", "--hidden-t", "8", "--n-layers", "2", "--mlp-depth", "1"]
QUICK = ["--steps", "10", "--batch-size", "16", "--eval-samples", "128", "--mc-chains", "4",
         "--mc-therm", "2", "--mc-steps", "8", "--no-progress"]


class HeavyWork(Exception):
    """The stubbed scan: validation passed and training would start here."""


@pytest.fixture
def stubbed(monkeypatch):
    def heavy(*args, **kwargs):
        raise HeavyWork

    monkeypatch.setattr(scan_module, "scan_job", heavy)


@pytest.mark.parametrize("argv, message", [
    (["--L", "8"], "no T grid given"),
    (["--L", "8", "--T", " "], "the T grid is empty"),
    (["--L", "8", "--T", "0:2.5:3"], "T=0.0 must be a finite number > 0"),
    (["--L", "8", "--T", "-2.1"], "T=-2.1 must be a finite number > 0"),
    (["--L", "6", "--T", "2.0:2.6:4"], "MERA layout needs L a power of 2"),
    (["--L", "8", "6", "--T", "Tc"], "MERA layout needs L a power of 2"),
    (["--L", "8", "8", "--T", "Tc"], "L=[8, 8] names a size twice"),
    (["--L", "8", "--T", "2", "2.0"], "T=2 is in the grid twice"),
    (["--L", "8", "--T", "2:3:1"], "T count=1"),
    (["--L", "8", "--T", "2", "--kappa", "0.3"], "--kappa is not an option of target 'ising'"),
    (["--target", "phi4", "--L", "8", "--T", "2"], "no kappa grid given"),
    (["--target", "phi4", "--kappa", "0.1", "0.2", "--param", "lam"], "--kappa takes one value"),
    (["--L", "8", "--T", "2", "--param", "lam"], "param='lam' is not an option"),
    (["--L", "8", "--T", "2", "--warm-fraction", "0"], "warm-fraction=0.0 must be"),
    (["--L", "8", "--T", "2", "--grow-fraction", "1.5"], "grow-fraction=1.5 must be"),
    (["--L", "8", "--T", "2", "--jobs", "0"], "jobs=0 must be an integer in [1, 64]"),
    (["--L", "8", "--T", "2", "--start", "Tx"], "start='Tx' is not a number"),
    (["--L", "8", "--T", "2", "--resamples", "3"], "resamples=3 must be"),
    (["--L", "8", "--T", "2", "--batch-size", "0"], "batch_size=0 must be"),
    (["--resume", "nowhere", "--L", "8"], "--resume takes the configuration"),
    (["--resume", "nowhere"], "scan directory nowhere holds no readable scan.json"),
])
def test_bad_scans_are_one_line_errors_before_any_training(argv, message, stubbed, capsys,
                                                            tmp_path):
    scan_dir = [] if "--resume" in argv else ["--scan-dir", str(tmp_path / "s")]
    assert main(["scan", *argv, *scan_dir]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("argv", [
    ["--L", "8", "16", "--T", "2.1:2.5:9"],
    ["--target", "phi4", "--L", "4", "--kappa", "0.2:0.3:3", "--lam", "0.1"],
    ["--target", "phi4", "--L", "4", "--param", "lam", "--values", "0.1", "0.2", "--kappa",
     "0.25"],
    ["--L", "8", "--T", "Tc", "2.5", "--start", "Tc", "--critical", "Tc", "--no-warm"],
])
def test_good_scans_pass_validation(argv, stubbed, tmp_path):
    with pytest.raises(HeavyWork):
        main(["scan", *argv, "--scan-dir", str(tmp_path / "s")])


VALUES = st.one_of(st.sampled_from(["0", "-1", "2.5", "Tc", "2:3:4", "2:3:0", "nan", "", "x",
                                    "3:2:5", "1e9", "16", "6", "ising", "phi4"]),
                   st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr))
FLAGS = ["--L", "--T", "--kappa", "--target", "--param", "--values", "--start", "--steps",
         "--warm-fraction", "--grow-fraction", "--warm-lr-factor", "--jobs", "--resamples", "--nu",
         "--critical", "--layout", "--hidden-s"]


def test_fuzzed_scan_flags_never_crash(stubbed, capsys, tmp_path):
    outcomes = []

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.sampled_from(FLAGS), VALUES), max_size=5))
    def run(pairs):
        argv = ["scan", "--scan-dir", str(tmp_path / "s"), "--L", "4", "--T", "2.2",
                *[t for pair in pairs for t in pair]]
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
        except HeavyWork:
            outcomes.append("valid")
            return
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        outcomes.append("rejected")

    run()
    assert "rejected" in outcomes and "valid" in outcomes


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("warm") / "T2.3"
    assert main(["train", "--L", "4", "--T", "2.3", *ARCH, *QUICK, "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_warm_from_starts_from_the_trained_flow_at_another_temperature(source_run, tmp_path):
    run_dir = tmp_path / "T2.5"  # a learning rate so small that training cannot move it
    assert main(["train", "--L", "4", "--T", "2.5", *ARCH, *QUICK, "--lr", "1e-9",
                 "--warm-from", str(source_run), "--run-dir", str(run_dir)]) == 0
    config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert config.warm_from == str(source_run) and config.target.options["T"] == 2.5
    started = RunDirectory(run_dir).load_checkpoint()["model"]
    trained = RunDirectory(source_run).load_checkpoint()["model"]
    for name, value in started.items():
        assert torch.allclose(value, trained[name], atol=1e-6), name


@pytest.mark.parametrize("flags, message", [
    (["--L", "8"], "warm-from: L=8 differs from the 4"),
    (["--L", "4", "--hidden-s", "16"], "the flow configuration differs"),
    (["--L", "4", "--dtype", "float64"], "dtype='float64' differs"),
    (["--L", "4", "--target", "phi4", "--kappa", "0.3"], "target.name='phi4' differs"),
    (["--L", "8", "--init-from", "x"], "init-from"),
])
def test_warm_from_refuses_mismatches_by_name(source_run, flags, message, tmp_path, capsys):
    assert main(["train", *ARCH, *QUICK, *flags, "--warm-from", str(source_run),
                 "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_a_tiny_scan_runs_two_workers_grows_warm_starts_resumes_and_reports(tmp_path, capsys):
    scan_dir = tmp_path / "scan"
    argv = ["scan", "--L", "4", "8", "--T", "2.2", "2.4", *ARCH, *QUICK, "--jobs", "2",
            "--resamples", "20", "--scan-dir", str(scan_dir)]
    assert main(argv) == 0
    result = json.loads((scan_dir / "scan.json").read_text())
    assert result["status"] == "completed"
    assert {(p["L"], p["T"], p["start"]) for p in result["points"]} == {
        (4, 2.2, "scratch"), (4, 2.4, "warm"), (8, 2.2, "grown"), (8, 2.4, "warm")}
    grown = json.loads((scan_dir / "points/L8/T2.200000/config.json").read_text())
    warm = json.loads((scan_dir / "points/L8/T2.400000/config.json").read_text())
    assert grown["init_from"].endswith("points/L4/T2.200000") and grown["train"]["steps"] == 5
    assert warm["warm_from"].endswith("points/L8/T2.200000") and warm["train"]["steps"] == 2
    out = capsys.readouterr().out
    assert "Binder crossing L=4/8" in out and "scan directory:" in out
    summaries = sorted(scan_dir.glob("points/*/*/summary.json"))
    stamps = [p.stat().st_mtime_ns for p in summaries]
    assert main(["scan", "--resume", str(scan_dir)]) == 0
    assert [p.stat().st_mtime_ns for p in summaries] == stamps  # nothing trained again
    assert main(["report", str(scan_dir)]) == 0
    assert "data:image/png" in (scan_dir / "report.html").read_text()
