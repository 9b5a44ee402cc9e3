"""`torchrun -m neuralrg train/sample` with two gloo processes: one run directory, rank 0
writes it, and sampling gathers every rank's chains."""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

TINY = ["--L", "4", "--steps", "20", "--batch-size", "32", "--hidden-s", "8", "--hidden-t", "8",
        "--n-layers", "2", "--log-every", "5", "--eval-samples", "256", "--mc-chains", "16",
        "--mc-steps", "5", "--mc-therm", "5", "--no-progress"]


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``neuralrg ARGS`` on two gloo ranks."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "neuralrg", *args]
    return subprocess.run(command, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)


def why(done: subprocess.CompletedProcess) -> str:
    """The start of stderr (a rank's own error comes first) and its end (torchrun's summary)."""
    err = done.stderr
    return err if len(err) <= 6000 else err[:4000] + "\n...\n" + err[-2000:]


@pytest.mark.slow
def test_two_process_training_and_sampling(tmp_path):
    run_dir = tmp_path / "run"
    done = torchrun(["train", *TINY, "--run-dir", str(run_dir)], tmp_path)
    assert done.returncode == 0, why(done)
    assert done.stdout.count("run directory:") == 1 and "(2 ranks)" in done.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 20
    steps = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()]
    assert steps == ["step", "5", "10", "15", "20"]
    done = torchrun(["sample", str(run_dir), "--chains", "9", "--therm", "5", "--steps", "3"],
                    tmp_path)
    assert done.returncode == 0, why(done)
    with h5py.File(run_dir / "samples-exact.h5") as handle:  # Ising: chains of exact moves
        assert handle["configurations"].shape == (3, 9, 4, 4)
        assert handle["log_q"].shape == (3, 9)


def test_any_batch_size_trains_on_two_ranks_each_drawing_its_own(tmp_path):
    done = torchrun(["train", *TINY, "--batch-size", "33", "--run-dir", str(tmp_path / "r")],
                    tmp_path)
    assert done.returncode == 0, why(done)
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["world_size"] == 2


@pytest.mark.slow
def test_two_process_mnist_training(tmp_path):
    run_dir = tmp_path / "digits"
    done = torchrun(["mnist", "--steps", "10", "--batch-size", "8", "--max-images", "64",
                     "--hidden-s", "8", "--hidden-t", "8", "--n-layers", "2", "--log-every", "5",
                     "--run-dir", str(run_dir), "--no-progress"], tmp_path)
    assert done.returncode == 0, why(done)
    assert done.stdout.count("run directory:") == 1 and "(2 ranks)" in done.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 10
    assert (run_dir / "bits_per_dim.png").exists() and (run_dir / "checkpoint.pt").exists()
