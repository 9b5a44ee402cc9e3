"""A run directory: ``config.json``, ``checkpoint.pt``, ``metrics.csv``, ``summary.json`` and
what the jobs add (figures, samples, the analysis). Every file is written atomically (see
:mod:`neuralrg.jobs.runs.files`), and a command writes here only while it holds the directory's
lock (:meth:`RunDirectory.writing`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from neuralrg.jobs.runs import checkpoint, metrics
from neuralrg.jobs.runs.files import TEMPORARY, atomic_write_json, read_json_object
from neuralrg.jobs.runs.lock import exclusive
from neuralrg.jobs.runs.paths import check_directory_to_write, check_file_to_write, writable

CONFIG, CHECKPOINT, METRICS, SUMMARY = "config.json", "checkpoint.pt", "metrics.csv", "summary.json"
PROVENANCE = ("init_from",)  # where the first weights came from: not compared on resume


class RunDirectory:
    """A training run's directory.

    >>> import tempfile
    >>> run = RunDirectory(tempfile.mkdtemp() + "/run")
    >>> with run.writing():
    ...     run.start({"lr": 0.001}, resume=False)
    ...     run.append_metrics({"step": 1, "loss": 2.0})
    >>> run.read_metrics()
    [{'step': 1, 'loss': 2.0}]
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.file(CONFIG).exists()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Create the directory if needed and hold its lock for the block (a second writer
        gets :class:`~neuralrg.jobs.runs.lock.RunLocked`); temporary files that a killed writer
        left behind are removed first."""
        check_directory_to_write("run-dir", self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        with exclusive(self.path):
            for leftover in self.path.glob(TEMPORARY):
                leftover.unlink(missing_ok=True)
            yield

    def writing_to(self, path: str | os.PathLike) -> AbstractContextManager:
        """:meth:`writing` if ``path`` lies in this directory, else nothing to hold."""
        inside = Path(path).resolve().is_relative_to(self.path.resolve())
        return self.writing() if inside else nullcontext()

    def read_config(self) -> dict[str, Any]:
        """The configuration object of ``config.json`` (``ValueError`` naming the file if it
        is missing, damaged or not an object)."""
        if not self.exists():
            raise ValueError(f"run directory {self.path} holds no {CONFIG}")
        return read_json_object(self.file(CONFIG))

    def check_start(self, resume: bool, force: bool = False) -> None:
        """``ValueError`` unless a run can start here (``resume``: continue here): the
        directory writable, and holding no other run unless ``force``."""
        check_directory_to_write("resume" if resume else "run-dir", self.path)
        if resume:
            self.read_config()
            self.read_metrics()  # damaged metrics stop a resume before any work
        elif self.exists() and not force:
            raise ValueError(f"run directory {self.path} already holds a run; use --resume to "
                             "continue it or --force to overwrite it")

    def start(self, config: dict[str, Any], resume: bool, force: bool = False) -> None:
        """Make the directory hold the run of ``config`` (the caller holds the lock); refuse
        to mix two different runs."""
        self.check_start(resume, force)
        if resume:
            difference = _first_difference(self.read_config(), config)
            if difference is not None:
                raise ValueError(f"run directory {self.path} holds a run with another config "
                                 f"({difference})")
            return
        self.path.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT, METRICS, SUMMARY):
            self.file(name).unlink(missing_ok=True)
        atomic_write_json(self.file(CONFIG), config)

    def destination(self, out: str | os.PathLike | None, name: str, what: str,
                    folder: bool = False) -> Path:
        """Where ``what`` (e.g. "the report") goes, checked before any work: ``out`` (a
        folder if ``folder``, else a file) when given, else the run's own ``name``, which
        needs the run directory writable (``ValueError`` saying to use ``--out``)."""
        if out is not None:
            check = check_directory_to_write if folder else check_file_to_write
            return check("out", out)
        if not writable(self.path):
            raise ValueError(f"run directory {self.path} is not writable; write {what} "
                             f"elsewhere with --out {'DIR' if folder else 'FILE'}")
        return self.file(name)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        checkpoint.save_checkpoint(self.file(CHECKPOINT), state)

    def has_checkpoint(self) -> bool:
        return self.file(CHECKPOINT).exists()

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """Load the checkpoint without unpickling arbitrary objects."""
        if not self.has_checkpoint():
            raise ValueError(f"run directory {self.path} holds no checkpoint ({CHECKPOINT})")
        return checkpoint.load_checkpoint(self.file(CHECKPOINT), map_location)

    def append_metrics(self, row: dict[str, float]) -> None:
        metrics.append_row(self.file(METRICS), row)

    def read_metrics(self) -> list[dict[str, float]]:
        """Metric rows; an unfinished last line (a kill while appending) is dropped."""
        return metrics.read_rows(self.file(METRICS))

    def truncate_metrics(self, last_step: int) -> int:
        """Drop metric rows after ``last_step`` for a resume; returns how many."""
        return metrics.keep_rows_until(self.file(METRICS), last_step)

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.file(SUMMARY), summary)

    def read_summary(self) -> dict[str, Any]:
        return read_json_object(self.file(SUMMARY))


def _first_difference(stored: dict[str, Any], config: dict[str, Any],
                      prefix: str = "") -> str | None:
    """The first field of ``stored`` that ``config`` contradicts, or ``None``; fields that
    only ``config`` has (added since the file was written, at their defaults) pass, and so
    does the provenance of the first weights (a copied directory computes its own)."""
    for key, value in stored.items():
        name, other = f"{prefix}{key}", config.get(key, value)
        if isinstance(value, dict) and isinstance(other, dict):
            found = _first_difference(value, other, f"{name}.")
            if found is not None:
                return found
        elif other != value and name not in PROVENANCE:
            return f"{name}: {value!r} in the file, {other!r} now"
    return None
