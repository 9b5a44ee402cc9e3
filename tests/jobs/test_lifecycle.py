"""Crash safety, safe loading, non-finite guards and reproducibility."""

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neuralrg.cli import main
from neuralrg.flows.flow import FlowConfig
from neuralrg.jobs import RunModel as Model
from neuralrg.jobs import load_model, train_job
from neuralrg.jobs.config import EvalConfig, RunConfig
from neuralrg.jobs.runs import RunDirectory
from neuralrg.measure.sampling import SampleConfig
from neuralrg.targets import TargetConfig
from neuralrg.training import TrainConfig, Trainer, fit

TINY_FLAGS = ["--L", "4", "--steps", "60", "--batch-size", "16", "--hidden-s", "8",
              "--hidden-t", "8", "--n-layers", "2", "--log-every", "5",
              "--checkpoint-every", "10", "--eval-samples", "64", "--mc-chains", "8",
              "--mc-steps", "4", "--mc-therm", "2", "--no-progress"]


def tiny_config(**train) -> RunConfig:
    return RunConfig(
        target=TargetConfig(L=4),
        flow=FlowConfig(L=4, n_layers=2, hidden_s=8, hidden_t=8),
        train=TrainConfig(**{"steps": 40, "batch_size": 16, "log_every": 5,
                             "checkpoint_every": 10, **train}),
        eval=EvalConfig(SampleConfig(chains=8, steps=4, therm=2, importance_samples=64)),
    )


def final_parameters(run_dir) -> dict:
    return RunDirectory(run_dir).load_checkpoint()["model"]


def train_subprocess(run_dir: Path, resume: bool) -> subprocess.Popen:
    flags = ["--resume", str(run_dir), "--no-progress"] if resume else [
        *TINY_FLAGS, "--run-dir", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "neuralrg", "train", *flags], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_rows(run_dir: Path, rows: int, proc: subprocess.Popen, timeout: float) -> None:
    """Poll until metrics.csv holds ``rows`` data rows (or the process ends)."""
    deadline = time.monotonic() + timeout
    metrics = run_dir / "metrics.csv"
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) > rows:
            return
        time.sleep(0.01)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path):
    """Where each kill lands depends on the machine's speed (a kill may even come after a
    run finished); whatever happened, the resumed run must equal the uninterrupted one."""
    reference = tmp_path / "reference"
    done = train_subprocess(reference, resume=False)
    assert done.wait(timeout=600) == 0, done.stderr.read()
    killed = tmp_path / "killed"
    rng = random.Random(5)
    for target_rows in sorted(rng.sample(range(1, 11), 4)):  # kill while training runs
        proc = train_subprocess(killed, resume=(killed / "config.json").exists())
        wait_for_rows(killed, target_rows, proc, timeout=300)
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)  # a no-op once the process has ended
        proc.wait(timeout=600)
    final = train_subprocess(killed, resume=(killed / "config.json").exists())
    assert final.wait(timeout=600) == 0, final.stderr.read()
    steps = [row["step"] for row in RunDirectory(killed).read_metrics()]
    assert steps == list(range(5, 61, 5))
    for name, tensor in final_parameters(reference).items():
        assert torch.equal(tensor, final_parameters(killed)[name]), name
    assert not list(killed.glob(".*.tmp"))


def test_resume_after_a_kill_before_the_first_checkpoint_starts_cleanly(tmp_path):
    run = RunDirectory(tmp_path / "run")
    config = tiny_config()
    run.start(config.to_dict(), resume=False)
    run.append_metrics({"step": 5, "loss": 1.0})
    (run.path / ".checkpoint.pt.abc.tmp").write_bytes(b"torn")
    summary = train_job(config, run.path, resume=True, progress=False)
    assert summary["steps"] == 40
    assert [row["step"] for row in run.read_metrics()] == list(range(5, 41, 5))
    assert not list(run.path.glob(".*.tmp"))


def test_same_seed_gives_bit_identical_parameters(tmp_path):
    for name in ("a", "b"):
        train_job(tiny_config(seed=3), tmp_path / name, progress=False)
    first, second = final_parameters(tmp_path / "a"), final_parameters(tmp_path / "b")
    assert all(torch.equal(first[k], second[k]) for k in first)
    train_job(tiny_config(seed=4), tmp_path / "c", progress=False)
    other = final_parameters(tmp_path / "c")
    assert not all(torch.equal(first[k], other[k]) for k in first)


class CodeExecution:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/neuralrg-test-pwned")


def test_checkpoint_that_executes_code_on_unpickling_is_refused(tmp_path, capsys):
    MARKER.unlink(missing_ok=True)
    train_job(tiny_config(steps=5), tmp_path / "run", progress=False)
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    torch.save({"model": CodeExecution()}, checkpoint)
    assert main(["sample", str(tmp_path / "run")]) == 2
    assert "cannot be loaded safely" in capsys.readouterr().err
    assert not MARKER.exists()
    checkpoint.write_bytes(pickle.dumps(CodeExecution()))
    assert main(["sample", str(tmp_path / "run")]) == 2
    assert not MARKER.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_checkpoint_gives_a_clear_error(tmp_path, capsys, damage):
    train_job(tiny_config(steps=5), tmp_path / "run", progress=False)
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(500),
                            "empty": b""}[damage])
    assert main(["sample", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "cannot be loaded safely" in err and len(err.strip().splitlines()) == 1


def test_checkpoint_from_another_configuration_is_refused_by_name(tmp_path):
    train_job(tiny_config(steps=5), tmp_path / "small", progress=False)
    other = tiny_config(steps=5)
    other = RunConfig(other.target, FlowConfig(L=4, n_layers=2, hidden_s=16, hidden_t=8),
                      other.train, other.loss, other.eval)
    train_job(other, tmp_path / "wide", progress=False)
    (tmp_path / "wide" / "checkpoint.pt").write_bytes(
        (tmp_path / "small" / "checkpoint.pt").read_bytes())
    with pytest.raises(ValueError, match="flow.hidden_s=8.*16"):
        load_model(tmp_path / "wide")


def nan_once_hook(state: dict):
    def hook(grad):
        state["calls"] += 1
        return torch.full_like(grad, float("nan")) if state["calls"] in state["bad"] else grad
    return hook


def test_injected_nan_gradient_is_skipped_and_counted(tmp_path):
    model = Model.build(tiny_config(steps=20))
    trainer = Trainer(model.flow, model.target.log_prob, model.config.train)
    state = {"calls": 0, "bad": {3, 7}}
    next(model.flow.parameters()).register_hook(nan_once_hook(state))
    result = fit(trainer, progress=False)
    assert result.stopped_reason == "completed" and trainer.skipped_steps == 2
    assert all(torch.isfinite(p).all() for p in model.flow.parameters())


def test_persistent_nan_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    config = tiny_config(steps=40, max_bad_steps=3)
    real = Model.build

    def poisoned(cfg):
        model = real(cfg)
        calls = {"n": 0}
        log_prob = model.target.log_prob

        def sometimes_nan(x):
            calls["n"] += 1
            value = log_prob(x)
            return value * float("nan") if calls["n"] > 23 else value
        model.target.log_prob = sometimes_nan
        return model

    monkeypatch.setattr(Model, "build", staticmethod(poisoned))
    summary = train_job(config, tmp_path / "run", progress=False)
    assert "non-finite" in summary["stopped_reason"] and summary["evaluated_step"] == 20
    assert summary["steps"] == 26 and summary["skipped_steps"] == 3
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["stopped_reason"] == summary["stopped_reason"]
    state = RunDirectory(tmp_path / "run").load_checkpoint()
    assert state["step"] == 20
    assert all(torch.isfinite(t).all() for t in state["model"].values())
