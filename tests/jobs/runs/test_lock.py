"""One writer per run directory: a second one is told who holds it; a killed holder never
blocks."""

import signal
import subprocess
import sys
import time

import pytest

from neuralrg.jobs.runs import RunDirectory, RunLocked

HOLD = ("import sys, time; from neuralrg.jobs.runs import RunDirectory\n"
        "with RunDirectory(sys.argv[1]).writing():\n"
        "    print('held', flush=True); time.sleep(600)")


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path/run``."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "held\n"
    yield process
    process.kill()
    process.wait()


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, holder):
    with pytest.raises(RunLocked, match=rf"in use by process {holder.pid} \(python -c"):
        with RunDirectory(tmp_path / "run").writing():
            pass


def test_a_killed_holder_never_blocks(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with RunDirectory(tmp_path / "run").writing():
        assert (tmp_path / "run" / ".lock").read_text().startswith("process ")


def test_the_holder_may_take_its_lock_again_and_leftovers_are_cleared(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    (run.path / ".checkpoint.pt.x1y2.tmp").write_bytes(b"torn")
    with run.writing(), run.writing():
        assert not list(run.path.glob(".*.tmp"))
    started = time.monotonic()
    with run.writing():  # released after the outer block
        assert time.monotonic() - started >= 0
