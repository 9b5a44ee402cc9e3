"""Run directories from the command line: one writer at a time, read-only directories, a
file where a directory should be, damaged files, copies, permissions, sample files, and what
a resume says. Every refusal is one line and exit code 2, before any heavy work."""

import base64
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import h5py
import pytest
import torch

from neuralrg.cli import main

TINY = ["--L", "4", "--steps", "20", "--batch-size", "16", "--hidden-s", "8", "--hidden-t", "8",
        "--n-layers", "2", "--log-every", "5", "--checkpoint-every", "10", "--eval-samples", "64",
        "--mc-chains", "8", "--mc-steps", "4", "--mc-therm", "2", "--no-progress"]
QUICK_SAMPLE = ["--chains", "4", "--therm", "2", "--steps", "5", "--is-samples", "64"]
QUICK_ANALYSIS = ["--samples", "32", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("files") / "run"
    assert main(["train", *TINY, "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture
def run_dir(trained, tmp_path) -> Path:
    """A fresh copy of the trained run."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def refused(argv: list[str], capsys, *messages: str) -> str:
    """Run ``argv``; it must exit with code 2 and one line holding every message."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for message in messages:
        assert message in err, (message, err)
    return err


def test_a_second_writer_is_refused_naming_the_first_and_a_killed_one_never_blocks(
        run_dir, capsys):
    config = json.loads((run_dir / "config.json").read_text())
    config["train"]["steps"] = 10**6  # the first writer keeps training
    (run_dir / "config.json").write_text(json.dumps(config))
    first = subprocess.Popen([sys.executable, "-m", "neuralrg", "train", "--resume",
                              str(run_dir), "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while f"process {first.pid} " not in (run_dir / ".lock").read_text():
            assert first.poll() is None
            time.sleep(0.05)
        holder = f"in use by process {first.pid} (python -m neuralrg train --resume"
        for argv in (["train", "--resume", str(run_dir)],
                     ["train", *TINY, "--run-dir", str(run_dir), "--force"],
                     ["sample", str(run_dir), *QUICK_SAMPLE],
                     ["analyze", str(run_dir), *QUICK_ANALYSIS],
                     ["report", str(run_dir), *QUICK_ANALYSIS]):
            refused(argv, capsys, holder)
        first.kill()
        first.wait()
        config["train"]["steps"] = 30
        (run_dir / "config.json").write_text(json.dumps(config))
        assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    finally:
        first.kill()
        first.wait()


@contextmanager
def read_only(path: Path):
    """``path`` made read-only for this process: by its mode, or for root (whom modes do
    not stop) by a read-only bind mount."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if subprocess.run(["mount", "--bind", path, path], capture_output=True).returncode:
        pytest.skip("running as root without the right to mount: no read-only directory")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", path], check=True,
                       capture_output=True)
        yield
    finally:
        subprocess.run(["umount", path], check=True)


def test_a_read_only_run_still_samples_and_reports_elsewhere(run_dir, tmp_path, capsys):
    before = sorted(os.listdir(run_dir))
    with read_only(run_dir):
        assert main(["sample", str(run_dir), *QUICK_SAMPLE]) == 0
        captured = capsys.readouterr()
        assert "energy_per_site" in captured.out and "samples: not saved" in captured.out
        assert "is not writable" in captured.err
        out = tmp_path / "elsewhere.h5"
        assert main(["sample", str(run_dir), *QUICK_SAMPLE, "--out", str(out)]) == 0
        assert f"samples: {out}" in capsys.readouterr().out
        assert main(["report", str(run_dir), *QUICK_ANALYSIS, "--out",
                     str(tmp_path / "report.html")]) == 0
        for argv in (["analyze", str(run_dir), *QUICK_ANALYSIS],
                     ["report", str(run_dir), *QUICK_ANALYSIS],
                     ["train", "--resume", str(run_dir)],
                     ["train", *TINY, "--run-dir", str(run_dir / "sub")]):
            refused(argv, capsys, "not writable")
    assert sorted(os.listdir(run_dir)) == before
    with h5py.File(out) as handle:
        assert handle["configurations"].shape == (5, 4, 4, 4)
    assert "<img" in (tmp_path / "report.html").read_text()


def test_a_file_where_a_directory_should_be(run_dir, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    for argv, message in [
        (["train", *TINY, "--run-dir", f"{afile}/sub"], "afile is a file, not a directory"),
        (["train", *TINY, "--run-dir", str(afile)], "afile is a file, not a directory"),
        (["mnist", "--run-dir", f"{afile}/sub", "--steps", "1"], "is a file"),
        (["analyze", str(run_dir), "--out", str(afile)], "afile is a file"),
        (["analyze", str(run_dir), "--out", f"{afile}/sub"], "afile is a file"),
        (["report", str(run_dir), "--out", str(tmp_path)], "is a directory; give a file name"),
        (["report", str(run_dir), "--out", f"{afile}/r.html"], "afile is not a directory"),
        (["report", str(run_dir), "--out", f"{tmp_path}/missing/r.html"], "does not exist"),
        (["sample", str(run_dir), "--out", str(tmp_path)], "must end in .h5"),
        (["sample", str(run_dir), "--out", f"{tmp_path}/missing/s.h5"], "does not exist"),
        (["sample", str(afile)], "holds no config.json"),
    ]:
        refused(argv, capsys, message)


def write_json(path: Path, change) -> None:
    config = json.loads(path.read_text())
    path.write_text(json.dumps(change(config)))


BAD_CONFIG = {
    "a-list": lambda path: path.write_text("[1, 2, 3]"),
    "flow-null": lambda path: write_json(path, lambda c: {**c, "flow": None}),
    "target-a-string": lambda path: write_json(path, lambda c: {**c, "target": "ising"}),
    "options-a-number": lambda path: write_json(
        path, lambda c: {**c, "target": {**c["target"], "options": 5}}),
    "L-a-string": lambda path: write_json(
        path, lambda c: {**c, "flow": {**c["flow"], "L": "four"}}),
    "unknown-field": lambda path: write_json(path, lambda c: {**c, "colour": "blue"}),
    "garbled": lambda path: path.write_text('{"flow": {"L": 4,'),
    "empty": lambda path: path.write_text(""),
    "binary": lambda path: path.write_bytes(os.urandom(64) + b"\xff"),
    "a-directory": lambda path: (path.unlink(), path.mkdir()),
}
COMMANDS = {"sample": ["sample", "{}", *QUICK_SAMPLE], "resume": ["train", "--resume", "{}"],
            "analyze": ["analyze", "{}", *QUICK_ANALYSIS],
            "report": ["report", "{}", *QUICK_ANALYSIS]}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("damage", BAD_CONFIG.values(), ids=BAD_CONFIG.keys())
def test_a_damaged_config_json_is_one_line_naming_the_file(run_dir, capsys, command, damage):
    damage(run_dir / "config.json")
    refused([a.format(run_dir) for a in COMMANDS[command]], capsys, "config.json")


def checkpoint_bytes(state) -> bytes:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"checkpoint-{os.getpid()}.pt"
    torch.save(state, path)
    data = path.read_bytes()
    path.unlink()
    return data


class RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


def damaged_checkpoint(kind: str, state: dict) -> bytes:
    """The bytes of a checkpoint damaged as ``kind`` says, made from a good ``state``."""
    good = checkpoint_bytes(state)
    model = state["model"]
    return {
        "truncated": lambda: good[: len(good) // 2],
        "garbage": lambda: os.urandom(700),
        "empty": lambda: b"",
        "json": lambda: b'{"model": {}}',
        "runs-code": lambda: checkpoint_bytes({"model": RunsCode()}),
        "raw-pickle": lambda: pickle.dumps(RunsCode()),
        "a-list": lambda: checkpoint_bytes([1, 2, 3]),
        "no-model": lambda: checkpoint_bytes({"step": 10}),
        "foreign-model": lambda: checkpoint_bytes({**state, "model": {"w": torch.ones(3)}}),
        "wrong-shapes": lambda: checkpoint_bytes(
            {**state, "model": {k: torch.ones(2) for k in model}}),
        "config-not-json": lambda: checkpoint_bytes({**state, "config": "{{{"}),
        "no-optimizer": lambda: checkpoint_bytes(
            {k: v for k, v in state.items() if k != "optimizer"}),
        "step-a-word": lambda: checkpoint_bytes({**state, "step": "ten"}),
    }[kind]()


BAD_CHECKPOINTS = ["truncated", "garbage", "empty", "json", "runs-code", "raw-pickle", "a-list",
                   "no-model", "foreign-model", "wrong-shapes", "config-not-json"]
RESUME_ONLY = ["no-optimizer", "step-a-word"]  # what only a resume reads


@pytest.mark.parametrize("command,kind", [("sample", kind) for kind in BAD_CHECKPOINTS]
                         + [("resume", kind) for kind in BAD_CHECKPOINTS + RESUME_ONLY])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(run_dir, capsys, command, kind):
    path = run_dir / "checkpoint.pt"
    path.write_bytes(damaged_checkpoint(kind, torch.load(path, weights_only=True)))
    err = refused([a.format(run_dir) for a in COMMANDS[command]], capsys, str(path))
    assert "Re-running" not in err and "weights_only" not in err


def test_a_directory_in_place_of_the_checkpoint(run_dir, capsys):
    (run_dir / "checkpoint.pt").unlink()
    (run_dir / "checkpoint.pt").mkdir()
    refused(["sample", str(run_dir)], capsys, "cannot read checkpoint", "Is a directory")


BAD_METRICS = {
    "no-step-column": b"loss,lr\r\n1.0,0.1\r\n",
    "garbled-line": b"step,loss\r\n5,1.0\r\n10\r\n15,1.0\r\n",
    "two-runs-interleaved": b"step,loss\r\n190,1.0\r\n10,1.0\r\n200,1.0\r\n",
    "binary": b"\x89PNG\r\n\x1a\n\xff\xfe",
}


@pytest.mark.parametrize("command", ["resume", "analyze"])
@pytest.mark.parametrize("content", BAD_METRICS.values(), ids=BAD_METRICS.keys())
def test_damaged_metrics_are_one_line_naming_the_file(run_dir, capsys, command, content):
    (run_dir / "metrics.csv").write_bytes(content)
    refused([a.format(run_dir) for a in COMMANDS[command]], capsys, "metrics.csv")


def test_a_damaged_summary_is_one_line_naming_the_file(run_dir, capsys):
    (run_dir / "summary.json").write_text('{"ln_z_bound": ')
    refused(["report", str(run_dir), *QUICK_ANALYSIS], capsys, "summary.json",
            "is not valid JSON")


def test_a_copied_run_reports_its_own_figures(trained, tmp_path):
    original = Path(shutil.copytree(trained, tmp_path / "original"))
    assert main(["analyze", str(original), *QUICK_ANALYSIS]) == 0
    copy = Path(shutil.copytree(original, tmp_path / "copy"))
    swapped = (copy / "analysis" / "samples.png")
    swapped.write_bytes((copy / "loss.png").read_bytes())  # only the copy's figure changes
    assert main(["report", str(copy), *QUICK_ANALYSIS]) == 0
    page = (copy / "report.html").read_text()
    assert base64.b64encode(swapped.read_bytes()).decode() in page
    original_figure = (original / "analysis" / "samples.png").read_bytes()
    assert base64.b64encode(original_figure).decode() not in page
    manifest = json.loads((copy / "analysis" / "analysis.json").read_text())
    assert all(not os.path.isabs(f["png"]) for f in manifest["figures"].values())


def test_every_file_of_a_run_gets_the_users_permissions(tmp_path, capsys):
    old = os.umask(0o027)
    try:
        run_dir = tmp_path / "run"
        assert main(["train", *TINY, "--run-dir", str(run_dir)]) == 0
        assert main(["sample", str(run_dir), *QUICK_SAMPLE]) == 0
        assert main(["report", str(run_dir), *QUICK_ANALYSIS]) == 0
    finally:
        os.umask(old)
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {"checkpoint.pt", "summary.json", "report.html", "samples-exact.h5"} <= \
        {p.name for p in files}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o640)}


def test_sample_never_replaces_earlier_samples_unasked(run_dir, capsys):
    def sample(*flags: str) -> str:
        assert main(["sample", str(run_dir), *QUICK_SAMPLE, *flags]) == 0
        return capsys.readouterr().out.strip().splitlines()[-1]

    assert sample() == f"samples: {run_dir}/samples-exact.h5 and {run_dir}/samples-exact.json"
    first = (run_dir / "samples-exact.h5").read_bytes()
    assert sample("--seed", "7").startswith(f"samples: {run_dir}/samples-exact-2.h5")
    assert (run_dir / "samples-exact.h5").read_bytes() == first
    assert sample("--tag", "long").startswith(f"samples: {run_dir}/samples-exact-long.h5")
    refused(["sample", str(run_dir), *QUICK_SAMPLE, "--tag", "long"], capsys,
            "samples-exact-long.h5' exists; it is kept (use --force to replace it)")
    sample("--tag", "long", "--force")
    refused(["sample", str(run_dir), "--tag", "../escape"], capsys, "tag='../escape'")
    refused(["sample", str(run_dir), "--tag", "a", "--out", "x.h5"], capsys, "exclude")
    sample("--seed", "9", "--force")
    assert (run_dir / "samples-exact.h5").read_bytes() != first
    assert json.loads((run_dir / "samples-exact-2.json").read_text())["samples_file"] == \
        "samples-exact-2.h5"


def test_a_resume_says_where_it_continues(run_dir, capsys):
    config = json.loads((run_dir / "config.json").read_text())
    config["train"]["steps"] = 30
    (run_dir / "config.json").write_text(json.dumps(config))
    with (run_dir / "metrics.csv").open("a") as handle:
        handle.write("25,1.0,0.1,0.1,,0.001,0,1.0\r\n30,1.0,0.1,0.1,,0.001,0,1.0\r\n")
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert "resuming from step 20; 2 logged rows after it redone" in capsys.readouterr().out
    (run_dir / "checkpoint.pt").unlink()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert ("no checkpoint yet (the run stopped before its first one): restarting from step 0;"
            " 6 logged rows dropped") in capsys.readouterr().out


def test_analyze_shows_its_progress(run_dir, capsys):
    assert main(["analyze", str(run_dir), "--samples", "32"]) == 0
    err = capsys.readouterr().err
    assert "part 1/7  samples" in err and "part 6/7  training" in err
    assert "part 7/7  coverage" in err
