"""Fault injection: SIGKILL at random moments while a run trains, resumes, cuts its metrics
and samples. After every kill each file of the run directory is either its old version or a
complete new one: never torn, and ``metrics.csv`` never shorter than what the checkpoint
needs. The assertions are about file integrity only; how many kills land where depends on
the machine's speed and is not asserted (each scenario tries until it has its kills).

The workers are forked from this process (no interpreter start-up per kill); the test
process itself never holds a run directory's lock."""

import csv
import json
import os
import random
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

import h5py
import pytest
import torch

from neuralrg.flows.flow import FlowConfig
from neuralrg.jobs import load_model, sample_job, train_job
from neuralrg.jobs.config import EvalConfig, RunConfig
from neuralrg.jobs.runs import RunDirectory
from neuralrg.measure.sampling import SampleConfig
from neuralrg.targets import TargetConfig
from neuralrg.training import TrainConfig

STEPS, LOG_EVERY, CHECKPOINT_EVERY = 40, 5, 10
KILLS = {"train": 24, "truncate": 18, "sample": 12}  # 54 in all
PNG_END = b"IEND\xaeB`\x82"
SAMPLING = SampleConfig(chains=8, therm=2, steps=10, importance_samples=128)


def config() -> RunConfig:
    return RunConfig(
        target=TargetConfig(L=4),
        flow=FlowConfig(L=4, n_layers=2, hidden_s=8, hidden_t=8, mlp_depth=1),
        train=TrainConfig(steps=STEPS, batch_size=16, log_every=LOG_EVERY,
                          checkpoint_every=CHECKPOINT_EVERY),
        eval=EvalConfig(SampleConfig(chains=8, steps=4, therm=2, importance_samples=64)))


def train(run_dir: Path) -> None:
    train_job(config(), run_dir, resume=RunDirectory(run_dir).exists(), progress=False)


def sample(run_dir: Path, force: bool = False) -> None:
    model, run = load_model(run_dir)
    sample_job(model, run.path, SAMPLING, force=force)


def forked(work, errors: Path, delay: float) -> str:
    """Run ``work()`` in a child process and SIGKILL it after ``delay`` seconds; returns
    "killed" or "completed" (a child that fails writes its traceback to ``errors``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: no output, no pytest teardown, just the work
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        code = 0
        try:
            work()
        except BaseException:
            errors.write_text(traceback.format_exc())
            code = 1
        os._exit(code)
    time.sleep(delay)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    status = os.waitpid(pid, 0)[1]
    if os.WIFSIGNALED(status):
        return "killed"
    assert os.WEXITSTATUS(status) == 0, errors.read_text()
    return "completed"


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def comparable(rows: list[dict]) -> dict[int, dict]:
    """Metric rows by step, without the wall time (which differs between runs)."""
    return {row["step"]: {k: v for k, v in row.items() if k != "seconds"} for row in rows}


class Invariants:
    """What must hold between kills: every file complete and consistent with the
    uninterrupted reference run, the checkpoint never going back, the metrics covering it."""

    def __init__(self, reference: Path):
        self.rows = comparable(RunDirectory(reference).read_metrics())
        self.config = json.loads((reference / "config.json").read_text())
        self.last_checkpoint = 0

    def check(self, run_dir: Path) -> None:
        if not run_dir.exists():  # killed before it was made
            assert self.last_checkpoint == 0
            return
        run = RunDirectory(run_dir)
        if run.exists():
            assert json.loads(run.file("config.json").read_text()) == self.config
        step = self.check_checkpoint(run)
        self.check_metrics(run, step)
        if run.file("summary.json").exists():
            assert run.read_summary()["steps"] == STEPS
        if run.file("loss.png").exists():
            assert run.file("loss.png").read_bytes().endswith(PNG_END)
        for path in run_dir.iterdir():
            assert path.name in KNOWN or (path.name.startswith(".") and
                                          path.name.endswith(".tmp")), path

    def check_checkpoint(self, run: RunDirectory) -> int:
        if not run.has_checkpoint():
            assert self.last_checkpoint == 0, "the checkpoint disappeared"
            return 0
        step = int(run.load_checkpoint()["step"])
        assert step % CHECKPOINT_EVERY == 0 or step == STEPS, step
        assert step >= self.last_checkpoint, (step, self.last_checkpoint)
        self.last_checkpoint = step
        return step

    def check_metrics(self, run: RunDirectory, checkpoint_step: int) -> None:
        data = run.file("metrics.csv").read_bytes() if run.file("metrics.csv").exists() else b""
        assert data == b"" or data.endswith(b"\n"), "a torn line"  # b"": killed at creation
        rows = comparable(run.read_metrics())
        steps = sorted(rows)
        assert steps == list(range(LOG_EVERY, LOG_EVERY * len(steps) + 1, LOG_EVERY)), steps
        assert not steps and checkpoint_step < LOG_EVERY or steps[-1] >= checkpoint_step
        for step, row in rows.items():
            assert row == self.rows[step], step


KNOWN = {"config.json", "checkpoint.pt", "metrics.csv", "summary.json", "loss.png", ".lock"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, float, Path]:
    """An uninterrupted run, how long training it took (to spread the kills over), and a
    copy of its checkpoint at step 10."""
    folder = tmp_path_factory.mktemp("faults")
    run_dir, early = folder / "reference", folder / "checkpoint-10.pt"
    save = RunDirectory.save_checkpoint

    def save_and_keep(run, state):
        save(run, state)
        if state["step"] == CHECKPOINT_EVERY:
            shutil.copyfile(run.file("checkpoint.pt"), early)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunDirectory, "save_checkpoint", save_and_keep)
        seconds = timed(lambda: train(run_dir))
    return run_dir, seconds, early


def kill_repeatedly(work, check, kills: int, longest: float, errors: Path,
                    rng: random.Random, before=lambda: None) -> int:
    """Kill ``work`` at random moments in ``[0, longest]`` until ``kills`` kills landed (at
    most 3x as many tries), calling ``check()`` after each; returns the kills."""
    landed = 0
    for _ in range(3 * kills):
        before()
        landed += forked(work, errors, rng.uniform(0, longest)) == "killed"
        check()
        if landed == kills:
            break
    return landed


@pytest.mark.slow
def test_random_kills_while_training_and_resuming_leave_every_file_whole(reference, tmp_path):
    reference_dir, seconds, _ = reference
    run_dir, invariants = tmp_path / "run", Invariants(reference_dir)
    expected = RunDirectory(reference_dir).load_checkpoint()["model"]

    def completed_or_fresh():
        """A run that completed matches the uninterrupted one; then the next starts anew."""
        if (run_dir / "summary.json").exists():
            final = RunDirectory(run_dir).load_checkpoint()["model"]
            assert all(torch.equal(final[k], expected[k]) for k in expected)
            assert sorted(comparable(RunDirectory(run_dir).read_metrics())) == \
                sorted(invariants.rows)
            shutil.rmtree(run_dir)
            invariants.last_checkpoint = 0

    landed = kill_repeatedly(lambda: train(run_dir), lambda: invariants.check(run_dir),
                             KILLS["train"], 1.1 * seconds, tmp_path / "error.txt",
                             random.Random(1), before=completed_or_fresh)
    train(run_dir)
    invariants.check(run_dir)
    assert not list(run_dir.glob(".*.tmp"))  # what killed writers left, the last one cleared
    completed_or_fresh()
    print(f"{landed} kills while training and resuming")


def run_to_cut(reference_dir: Path, early: Path, run_dir: Path) -> int:
    """The reference run as it was at its checkpoint at step 10, with 20,000 more metric
    rows after it (what a resume must cut); returns the number of rows it must keep."""
    shutil.copytree(reference_dir, run_dir)
    for name in ("summary.json", "loss.png"):
        (run_dir / name).unlink()
    shutil.copyfile(early, run_dir / "checkpoint.pt")
    kept = [row for row in RunDirectory(run_dir).read_metrics()
            if row["step"] <= CHECKPOINT_EVERY]
    later = [{**kept[-1], "step": step}
             for step in range(CHECKPOINT_EVERY + LOG_EVERY, 100_001, LOG_EVERY)]
    with (run_dir / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(kept[0]))
        writer.writeheader()
        writer.writerows(kept + later)
    return len(kept)


@pytest.mark.slow
def test_random_kills_while_resume_cuts_the_metrics_lose_no_row(reference, tmp_path):
    reference_dir, _, early = reference
    template, run_dir = tmp_path / "template", tmp_path / "run"
    kept = run_to_cut(reference_dir, early, template)
    old = (template / "metrics.csv").read_bytes()
    shutil.copytree(template, run_dir)
    seconds = timed(lambda: train(run_dir))
    invariants = Invariants(reference_dir)

    def fresh_copy():
        shutil.rmtree(run_dir)
        shutil.copytree(template, run_dir)
        invariants.last_checkpoint = CHECKPOINT_EVERY

    def check():
        if (run_dir / "metrics.csv").read_bytes() != old:  # not the old file: a whole new one
            invariants.check(run_dir)
        assert len(RunDirectory(run_dir).read_metrics()) >= kept

    landed = kill_repeatedly(lambda: train(run_dir), check, KILLS["truncate"], seconds / 3,
                             tmp_path / "error.txt", random.Random(2), before=fresh_copy)
    print(f"{landed} kills while a resume cut the metrics")


def samples_complete(path: Path) -> None:
    with h5py.File(path, "r") as handle:
        assert handle["configurations"].shape == (SAMPLING.steps, SAMPLING.chains, 4, 4)
        assert handle["log_pi"].shape == (SAMPLING.steps, SAMPLING.chains)


@pytest.mark.slow
def test_random_kills_while_sampling_never_tear_or_replace_samples(reference, tmp_path):
    reference_dir, _, _ = reference
    run_dir = tmp_path / "run"
    shutil.copytree(reference_dir, run_dir)
    seconds = timed(lambda: sample(run_dir))
    seen, tries = {}, []
    replaced = {"samples-exact.h5", "samples-exact.json"}  # on purpose, with force

    def check():
        for path in sorted(run_dir.glob("samples-*")):
            if path.suffix == ".h5":
                samples_complete(path)
            else:
                assert json.loads(path.read_text())["method"] == "exact"
            if path.name in seen and path.name not in replaced:
                assert path.read_bytes() == seen[path.name], f"{path.name} was replaced"
            seen[path.name] = path.read_bytes()

    landed = kill_repeatedly(lambda: sample(run_dir, force=len(tries) % 3 == 0), check,
                             KILLS["sample"], 1.1 * seconds, tmp_path / "error.txt",
                             random.Random(3), before=lambda: tries.append(1))
    sample(run_dir)
    check()
    assert not list(run_dir.glob(".*.tmp"))
    print(f"{landed} kills while sampling")
