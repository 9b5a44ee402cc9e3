"""Shared plumbing for the benchmarks: device and threads, timing, JSON output, tables.

Run the benchmarks as modules from the repository root (``python -m benchmarks.NAME``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralrg.jobs.config import resolve_device

RESULTS = Path(__file__).resolve().parent / "results"


def add_common_arguments(parser: argparse.ArgumentParser, out_name: str) -> None:
    """``--device``, ``--threads``, ``--seed`` and ``--out`` (default ``results/<out_name>``)."""
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (no fallback)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / out_name, help="JSON output")


def setup(threads: int, seed: int, device: str) -> torch.device:
    """Fix the thread count and seeds; return the device (an error if CUDA is missing)."""
    if threads < 1:
        raise ValueError(f"threads={threads!r} must be >= 1")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    return resolve_device(device)


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work so that wall-clock timers are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """Run ``fn()`` and return its result with the elapsed wall time in seconds."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - start


def environment(device: torch.device, threads: int) -> dict[str, Any]:
    """Where the figures were measured."""
    info = {
        "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "processor": platform.processor(),
        "cpu_count": os.cpu_count(), "threads": threads, "device": str(device),
        "argv": sys.argv, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (non-finite floats as null/"inf") and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    print(f"\nwrote {path}")


def fmt(value: Any, digits: int = 3) -> str:
    """Compact cell text: numbers to ``digits`` significant figures, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.{digits}g}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned text table."""
    cells = [list(headers)] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for k, row in enumerate(cells):
        pairs = enumerate(zip(row, widths, strict=True))
        line = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        print("  ".join(line).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None where either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator
