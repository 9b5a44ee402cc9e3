"""Training a scan's points: in plan order on this process (``jobs=1``), or side by side in
``jobs`` worker processes of one thread each, the ready point with the longest chain of
dependants first. A point is ready once its source finished; when the source failed the
point starts from the source's own nearest finished ancestor, or from scratch."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from neuralrg.jobs.config import RunConfig
from neuralrg.scaling.order import SCRATCH, WARM, PlannedPoint, Point, critical_path

DONE, FAILED, PENDING, INTERRUPTED = "done", "failed", "pending", "interrupted"


@dataclass
class PointState:
    """Where a point stands: ``pending``, ``interrupted`` (a run directory without a
    summary), ``done`` (trained and measured) or ``failed`` (an exception: ``error``); the
    source it actually started from, and the CPU and wall seconds spent on it so far."""

    status: str = PENDING
    start: str | None = None
    source: Point | None = None
    error: str | None = None
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


def train_point(config: dict[str, Any], run_dir: str, resume: bool,
                progress: bool) -> dict[str, float]:
    """Train and measure one point (in a worker or in this process); its CPU and wall
    seconds."""
    from neuralrg.jobs.train import train_job

    cpu, wall = time.process_time(), time.perf_counter()
    summary = train_job(RunConfig.from_dict(config), run_dir, resume=resume, progress=progress)
    return {"stopped_reason": summary["stopped_reason"],
            "cpu_seconds": time.process_time() - cpu, "wall_seconds": time.perf_counter() - wall}


def _one_thread() -> None:
    torch.set_num_threads(1)


class _Inline(Executor):
    """Runs each submitted call at once, in this process (``jobs=1``)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # a failing point is recorded, never stops the scan
            future.set_exception(error)
        return future


def _executor(jobs: int) -> Executor:
    if jobs == 1:
        return _Inline()
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_one_thread)


def effective_source(planned: PlannedPoint, states: dict[Point, PointState],
                     sources: dict[Point, Point | None]) -> tuple[str, Point | None]:
    """How a point really starts: as planned when its source is done, else from the
    nearest done ancestor of that source (same L: warm), else from scratch."""
    source = planned.source
    while source is not None and states[source].status != DONE:
        source = sources.get(source)
    if source is None:
        return SCRATCH, None
    if source == planned.source:
        return planned.start, source
    return (WARM if source.L == planned.point.L else SCRATCH), (
        source if source.L == planned.point.L else None)


def _ready(planned: PlannedPoint, states: dict[Point, PointState]) -> bool:
    return planned.source is None or states[planned.source].status in (DONE, FAILED)


Prepare = Callable[[PlannedPoint], tuple[dict[str, Any], Path, bool]]
Finish = Callable[[PlannedPoint, dict[str, float] | None, BaseException | None], None]


def run_points(plan: list[PlannedPoint], states: dict[Point, PointState], prepare: Prepare,
               finish: Finish, jobs: int = 1, progress: bool = True) -> None:
    """Train every point of ``plan`` that is not done. ``prepare(planned)`` gives its
    configuration (as a dict), run directory and whether to resume; ``finish(planned,
    outcome, error)`` records the result as soon as a point ends."""
    cost = critical_path(plan, lambda p: float(p.L) ** 2)
    waiting = [p for p in plan if states[p.point].status != DONE]
    with _executor(jobs) as pool:
        running: dict[Future, PlannedPoint] = {}
        while waiting or running:
            ready = sorted((p for p in waiting if _ready(p, states)),
                           key=lambda p: -cost[p.point])
            for planned in ready[: jobs - len(running)]:
                config, run_dir, resume = prepare(planned)
                waiting.remove(planned)
                running[pool.submit(train_point, config, str(run_dir), resume,
                                    progress and jobs == 1)] = planned
            if not running:  # nothing ready and nothing running: a source never finished
                raise RuntimeError("scan plan has a point whose source is not in the plan")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                planned = running.pop(future)
                error = future.exception()
                finish(planned, None if error is not None else future.result(), error)
