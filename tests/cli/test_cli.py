"""The command line: the main job on a tiny lattice, `exact`, resume, and every bad input."""

import json

import pytest

from neuralrg.cli import main
from neuralrg.exact import T_CRITICAL_2D, exact_ising
from neuralrg.jobs.runs import RunDirectory
from neuralrg.jobs.table import format_train_summary

TINY = [
    "--L",
    "4",
    "--steps",
    "30",
    "--batch-size",
    "32",
    "--hidden-s",
    "8",
    "--hidden-t",
    "8",
    "--n-layers",
    "2",
    "--log-every",
    "5",
    "--checkpoint-every",
    "10",
    "--mc-therm",
    "20",
    "--mc-steps",
    "100",
    "--no-progress",
]


def test_train_writes_a_complete_run_directory(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", *TINY, "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "relative gap" in out and "exact ln Z" in out and "Pareto k" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert -1 < summary["pareto_k"] < 2
    for key in (
        "L",
        "T",
        "d",
        "layout",
        "steps",
        "wall_seconds",
        "ln_z_bound",
        "ln_z_bound_err",
        "ln_z_exact",
        "relative_gap",
        "ising_ln_z_bound",
        "ising_ln_z_exact",
    ):
        assert key in summary, key
    assert summary["steps"] == 30 and summary["T"] == pytest.approx(T_CRITICAL_2D)
    assert summary["ising_ln_z_exact"] == pytest.approx(exact_ising(4, T_CRITICAL_2D).ln_z)
    gap = (summary["ln_z_exact"] - summary["ln_z_bound"]) / abs(summary["ln_z_exact"])
    assert summary["relative_gap"] == pytest.approx(gap)
    ising_gap = summary["ising_ln_z_exact"] - summary["ising_ln_z_bound"]
    assert summary["gap_per_site"] == pytest.approx(ising_gap / 16)
    assert summary["ln_z_bound"] < summary["ln_z_exact"] + 4 * summary["ln_z_bound_err"]
    rows = RunDirectory(run_dir).read_metrics()
    assert [row["step"] for row in rows] == list(range(5, 31, 5))
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run_dir / "config.json").exists() and (run_dir / "checkpoint.pt").exists()


def test_resume_continues_without_duplicated_metrics(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "20", "--run-dir", str(run_dir)]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    config["train"]["steps"] = 40
    (run_dir / "config.json").write_text(json.dumps(config))
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    steps = [row["step"] for row in RunDirectory(run_dir).read_metrics()]
    assert steps == list(range(5, 41, 5))


def test_train_summary_prints_the_verdict_table():
    entry = {"value": 2.0, "err": 0.1, "exact": None, "pull": None, "reliable": False,
             "reason": "importance-sampling: Pareto k 0.90 > 0.7: importance weights too "
                       "heavy-tailed", "estimator": "importance_sampling", "estimates": {}}
    summary = {"stopped_reason": "completed", "steps": 1, "wall_seconds": 1.0,
               "ln_z_bound": 1.0, "ln_z_bound_err": 0.1, "ln_z_exact": None,
               "ess_per_sample": 0.01, "pareto_k": 0.9, "acceptance": 0.2, "mc_chains": 4,
               "mc_steps": 10, "mc_therm": 2, "ln_z": entry}
    text = format_train_summary(summary)
    assert "UNRELIABLE: importance-sampling: Pareto k 0.90 > 0.7" in text
    assert "acceptance 0.2000" in text and "a lower bound" in text


def test_exact_json(capsys):
    assert main(["exact", "--L", "4", "--T", "2.5", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) >= {
        "ln_z",
        "free_energy_per_site",
        "energy_per_site",
        "heat_capacity_per_site",
        "ln_z_relaxed",
    }
    assert payload["ln_z"] == pytest.approx(exact_ising(4, 2.5).ln_z)


def test_exact_text_accepts_tc(capsys):
    assert main(["exact", "--L", "3", "--T", "Tc", "--d", "1"]) == 0
    assert "ln_z_relaxed" in capsys.readouterr().out


BAD_TRAIN = {
    "mera-L-not-power-of-2": (["--L", "6"], "L=6"),
    "mera-L-too-small": (["--L", "1"], "L=1"),
    "tebd-odd-L": (["--layout", "tebd", "--L", "5"], "L=5"),
    "T-zero": (["--T", "0"], "T=0"),
    "T-negative": (["--T", "-2"], "T=-2"),
    "T-nan": (["--T", "nan"], "T=nan"),
    "T-inf": (["--T", "inf"], "T=inf"),
    "d-unsupported": (["--d", "3"], "d=3"),
    "unknown-layout": (["--layout", "peps"], "layout='peps'"),
    "steps-zero": (["--steps", "0"], "steps=0"),
    "batch-negative": (["--batch-size", "-4"], "batch_size=-4"),
    "lr-zero": (["--lr", "0"], "lr=0"),
    "lr-nan": (["--lr", "nan"], "lr=nan"),
    "hidden-zero": (["--hidden-s", "0"], "hidden_s=0"),
    "n-layers-zero": (["--n-layers", "0"], "n_layers=0"),
    "depth-zero": (["--layout", "tebd", "--depth", "0"], "depth=0"),
    "disentanglers-negative": (["--n-disentanglers", "-1"], "n_disentanglers=-1"),
    "context-too-far": (["--context", "4"], "context=4 must be an integer in [0, 3]"),
    "context-negative": (["--context", "-1"], "context=-1"),
    "forward-negative": (["--forward", "-1"], "forward=-1"),
    "forward-every-zero": (["--forward", "1", "--forward-every", "0"],
                           "forward_every=0 must be an integer >= 1"),
    "device-missing": (["--device", "cuda"], "CUDA is not available"),
    "device-nonsense": (["--device", "abacus"], "abacus"),
    "dtype": (["--dtype", "float16"], "float16"),
    "L-not-int": (["--L", "4.5"], "4.5"),
    "mc-therm-negative": (["--mc-therm", "-1"], "mc-therm=-1 must be an integer >= 0"),
    "mc-local-moves-zero": (["--mc-local-moves", "0"], "mc-local-moves=0"),
    "mc-local-step-size-zero": (["--mc-local-step-size", "0"], "mc-local-step-size=0"),
    "mc-local-step-size-nan": (["--mc-local-step-size", "nan"], "mc-local-step-size=nan"),
    "mc-local-leapfrog-zero": (["--mc-local-leapfrog", "0"], "mc-local-leapfrog=0"),
    "mc-step-size-negative": (["--mc-step-size", "-0.1"], "mc-step-size=-0.1"),
    "mc-leapfrog-zero": (["--mc-leapfrog", "0"], "mc-n-leapfrog=0"),
    "eval-samples-one": (["--eval-samples", "1"], "eval-samples=1"),
}


@pytest.mark.parametrize("flags,message", BAD_TRAIN.values(), ids=BAD_TRAIN.keys())
def test_bad_train_input_exits_2_with_one_line(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(["train", *flags, "--run-dir", str(tmp_path / "r"), "--no-progress"]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "r").exists()


def test_refuses_to_overwrite_a_different_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "5", "--run-dir", str(run_dir)]) == 0
    assert main(["train", *TINY, "--steps", "5", "--run-dir", str(run_dir)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", *TINY, "--steps", "5", "--run-dir", str(run_dir), "--force"]) == 0


def test_resume_rejects_extra_flags_and_missing_runs(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "holds no config.json" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "--L", "4"]) == 2
    assert "drop --L" in capsys.readouterr().err


def test_exact_moments_and_their_reach(capsys):
    assert main(["exact", "--L", "4", "--T", "Tc", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["m2"] == pytest.approx(0.76135891, abs=1e-8)
    assert payload["abs_m"] == pytest.approx(0.84386044, abs=1e-8)
    assert payload["binder"] == pytest.approx(1 - payload["m4"] / (3 * payload["m2"] ** 2))
    assert "note" not in payload
    assert main(["exact", "--L", "64", "--T", "2.5", "--json"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert all(payload[key] is None for key in ("m2", "abs_m", "m4", "binder"))
    assert payload["energy_per_site"] is not None and "out of reach" in payload["note"]
    assert len(captured.err.strip().splitlines()) == 1 and "out of reach" in captured.err


def test_bad_exact_input(capsys):
    assert main(["exact", "--L", "1", "--T", "2"]) == 2
    assert "L=1 must be an integer >= 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["exact", "--L", "4", "--T", "-1"])
    assert exit_info.value.code == 2
