"""Run directories (the only part of the package that writes them): atomic files with the
user's umask (:mod:`~neuralrg.jobs.runs.files`), one writer at a time
(:mod:`~neuralrg.jobs.runs.lock`), the places to write checked up front
(:mod:`~neuralrg.jobs.runs.paths`), ``metrics.csv`` (:mod:`~neuralrg.jobs.runs.metrics`), safe
checkpoints (:mod:`~neuralrg.jobs.runs.checkpoint`) and the directory itself
(:mod:`~neuralrg.jobs.runs.directory`)."""

from neuralrg.jobs.runs.directory import CHECKPOINT, CONFIG, METRICS, SUMMARY, RunDirectory
from neuralrg.jobs.runs.files import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    json_kind,
    json_safe,
    read_json_object,
    save_figure,
)
from neuralrg.jobs.runs.lock import RunLocked, exclusive
from neuralrg.jobs.runs.paths import check_directory_to_write, check_file_to_write, writable

__all__ = ["CHECKPOINT", "CONFIG", "METRICS", "SUMMARY", "RunDirectory", "RunLocked",
           "atomic_path", "atomic_write_bytes", "atomic_write_json", "check_directory_to_write",
           "check_file_to_write", "exclusive", "json_kind", "json_safe", "read_json_object",
           "save_figure", "writable"]
