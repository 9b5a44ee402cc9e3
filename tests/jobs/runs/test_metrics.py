"""metrics.csv: whole rows appended, cut by replacing the file at once, damage named."""

import pytest

from neuralrg.jobs.runs import METRICS, RunDirectory
from neuralrg.jobs.runs import metrics as metrics_module

ROW = {"step": 5, "loss": 1.5, "relative_gap": None}


def run_with_rows(tmp_path, steps) -> RunDirectory:
    run = RunDirectory(tmp_path)
    for step in steps:
        run.append_metrics({**ROW, "step": step})
    return run


def test_an_unfinished_last_line_is_dropped_and_cut_away_on_resume(tmp_path):
    run = run_with_rows(tmp_path, [5, 10])
    with run.file(METRICS).open("a") as handle:
        handle.write("15,1.")
    assert [row["step"] for row in run.read_metrics()] == [5, 10]
    assert run.truncate_metrics(10) == 0
    assert run.file(METRICS).read_bytes().endswith(b"\n")
    run.append_metrics({**ROW, "step": 15})
    assert [row["step"] for row in run.read_metrics()] == [5, 10, 15]


def test_cutting_rows_replaces_the_file_at_once(tmp_path, monkeypatch):
    run = run_with_rows(tmp_path, range(5, 1001, 5))
    before = run.file(METRICS).read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if the process died while writing the rows kept

    monkeypatch.setattr(metrics_module, "_csv_text", killed)
    with pytest.raises(KeyboardInterrupt):
        run.truncate_metrics(100)
    assert run.file(METRICS).read_bytes() == before
    monkeypatch.undo()
    assert run.truncate_metrics(100) == 180
    assert [row["step"] for row in run.read_metrics()] == list(range(5, 101, 5))


BAD_METRICS = {
    "no-step-column": ("loss,lr\r\n1.0,0.1\r\n", "has no 'step' column"),
    "short-line": ("step,loss\r\n5,1.0\r\n10\r\n15,1.0\r\n", "line 3: the number of fields"),
    "long-line": ("step,loss\r\n5,1.0,7\r\n", "line 2: the number of fields"),
    "not-a-number": ("step,loss\r\n5,one\r\n", "line 2: a field is not a number"),
    "steps-interleaved": ("step,loss\r\n190,1.0\r\n10,1.0\r\n", "step 10 after step 190"),
    "fractional-step": ("step,loss\r\n5.5,1.0\r\n", "a step is not a whole number"),
    "nul-byte": ("step,loss\r\n5,1\x00\r\n", "line 2:"),
    "binary": (b"\x89PNG\r\n\x1a\n\xff", "is not text"),
}


@pytest.mark.parametrize("content,message", BAD_METRICS.values(), ids=BAD_METRICS.keys())
def test_damaged_metrics_are_named_with_the_line(tmp_path, content, message):
    path = tmp_path / METRICS
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match="metrics.csv") as error:
        RunDirectory(tmp_path).read_metrics()
    assert message in str(error.value)
