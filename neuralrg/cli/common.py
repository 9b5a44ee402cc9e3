"""What every subcommand shares: one-line usage errors, temperatures, devices, run control."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from neuralrg import distributed
from neuralrg.exact import T_CRITICAL_2D
from neuralrg.jobs.config import resolve_device


class OneLineParser(argparse.ArgumentParser):
    """Reports usage errors as one line and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


DEVICE_HELP = "cpu, cuda or cuda:N (default: the device the run was trained on); no fallback"
NAME_TARGET_HELP = ("the run's target, for a run made with a user's target class "
                    "(module:Class or file.py:Class): loading it runs that module")


def temperature(text: str) -> float:
    """A temperature: a number, or 'Tc' for the 2D critical point 2/ln(1+sqrt 2)."""
    if text.lower() == "tc":
        return T_CRITICAL_2D
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"T={text} must be a finite temperature > 0 (or 'Tc')")
    return value


def check_device(device: str | None) -> None:
    if device is not None:
        resolve_device(device)


CONTROL_FLAGS = ("command", "threads", "run_dir", "resume", "force", "no_progress")


def split_control_flags(args: argparse.Namespace) -> tuple[dict, dict]:
    """(configuration flags given, run-control flags); with ``--resume`` the configuration
    comes from the run directory, so any configuration flag is an error."""
    flags = {k.replace("-", "_"): v for k, v in vars(args).items()}
    control = {k: flags.pop(k, None) for k in CONTROL_FLAGS}
    if control["resume"]:
        control["target"] = flags.pop("target", None)  # naming a user target is allowed
    if control["resume"] and flags:
        raise ValueError(f"--resume takes the configuration from its run directory; drop "
                         f"{', '.join('--' + k.replace('_', '-') for k in flags)}")
    return flags, control


def run_on_ranks(device: str, run_dir: str, batch_size: int,
                 work: Callable[[str], dict], report: Callable[[], str]) -> dict:
    """Join the torchrun process group (if any), run ``work(device)`` on every rank and
    print ``report()`` on rank 0; the ranks part at a barrier once the work completed."""
    info = distributed.init_from_env(device)
    if batch_size % info.world_size:
        distributed.shutdown()
        raise ValueError(f"batch-size={batch_size} must be a multiple of the number of ranks "
                         f"({info.world_size})")
    if info.rank == 0:
        ranks = f" ({info.world_size} ranks)" if info.world_size > 1 else ""
        print(f"run directory: {run_dir}{ranks}", flush=True)
    completed = False
    try:
        summary = work(str(info.device))
        completed = True
    finally:
        distributed.shutdown(completed)
    if info.rank == 0:
        print(report())
    return summary
