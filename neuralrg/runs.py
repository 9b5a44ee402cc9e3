"""Run directory: config.json, checkpoints, metrics.csv, summary.json.

Every file that is rewritten (config, checkpoint, summary) is written
atomically: temporary file, flush, fsync, rename. ``metrics.csv`` is
append-only, one flushed row per logged step.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CONFIG, CHECKPOINT, METRICS, SUMMARY = "config.json", "checkpoint.pt", "metrics.csv", "summary.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a torn one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure as PNG (atomically) and release it; returns the path."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def json_safe(value: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) by ``None``, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    text = json.dumps(json_safe(payload), indent=2, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


class RunDirectory:
    """A training run's directory.

    >>> import tempfile
    >>> run = RunDirectory(tempfile.mkdtemp() + "/run")
    >>> run.start({"lr": 0.001}, resume=False)
    >>> run.append_metrics({"step": 1, "loss": 2.0})
    >>> run.read_metrics()
    [{'step': 1, 'loss': 2.0}]
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.file(CONFIG).exists()

    def read_config(self) -> dict[str, Any]:
        if not self.exists():
            raise ValueError(f"run directory {self.path} holds no {CONFIG}")
        return json.loads(self.file(CONFIG).read_text())

    def start(self, config: dict[str, Any], resume: bool, force: bool = False) -> None:
        """Create the directory for ``config``; refuse to mix two different runs."""
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"run directory {self.path} exists and is not a directory")
        if resume:
            difference = _first_difference(self.read_config(), config)
            if difference is not None:
                raise ValueError(f"run directory {self.path} holds a run with another config "
                                 f"({difference})")
            for leftover in self.path.glob(".*.tmp"):  # torn writes of a killed run
                leftover.unlink(missing_ok=True)
            return
        if self.exists() and not force:
            raise ValueError(
                f"run directory {self.path} already holds a run; use --resume to continue it "
                "or --force to overwrite it"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT, METRICS, SUMMARY):
            self.file(name).unlink(missing_ok=True)
        atomic_write_json(self.file(CONFIG), config)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.file(CHECKPOINT), buffer.getvalue())

    def has_checkpoint(self) -> bool:
        return self.file(CHECKPOINT).exists()

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """Load the checkpoint without unpickling arbitrary objects."""
        path = self.file(CHECKPOINT)
        if not path.exists():
            raise ValueError(f"run directory {self.path} holds no checkpoint ({CHECKPOINT})")
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as error:  # torch raises several types for foreign or torn files
            reason = " ".join(str(error).split())[:160]
            raise ValueError(
                f"checkpoint {path} cannot be loaded safely ({type(error).__name__}: {reason})"
            ) from None

    def append_metrics(self, row: dict[str, float]) -> None:
        path = self.file(METRICS)
        new = not path.exists() or path.stat().st_size == 0
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
            handle.flush()
            os.fsync(handle.fileno())

    def read_metrics(self) -> list[dict[str, float]]:
        """Metric rows; a row torn by a kill (missing or unparsable fields) is dropped."""
        path = self.file(METRICS)
        if not path.exists():
            return []
        with path.open(newline="") as handle:
            rows = [_parse_row(row) for row in csv.DictReader(handle)]
        return [row for row in rows if row is not None]

    def truncate_metrics(self, last_step: int) -> None:
        """Drop metric rows after ``last_step`` (and any torn last line), for a resume."""
        rows = [row for row in self.read_metrics() if row["step"] <= last_step]
        self.file(METRICS).unlink(missing_ok=True)
        for row in rows:
            self.append_metrics(row)

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.file(SUMMARY), summary)

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.file(SUMMARY).read_text())


def _first_difference(stored: dict[str, Any], config: dict[str, Any],
                      prefix: str = "") -> str | None:
    """The first field of ``stored`` that ``config`` contradicts, or ``None``; fields that
    only ``config`` has (added since the file was written, at their defaults) pass."""
    for key, value in stored.items():
        name, other = f"{prefix}{key}", config.get(key, value)
        if isinstance(value, dict) and isinstance(other, dict):
            found = _first_difference(value, other, f"{name}.")
            if found is not None:
                return found
        elif other != value:
            return f"{name}: {value!r} in the file, {other!r} now"
    return None


def _parse_row(row: dict) -> dict | None:
    if None in row or any(v is None for v in row.values()):
        return None
    try:
        return {k: _number(v) for k, v in row.items()}
    except ValueError:
        return None


def _number(text: str) -> float | int | None:
    if text == "":
        return None
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value
