"""The scan job: one run directory per (L, grid value) inside the scan's directory
(``points/``), trained in an order where each point starts from a trained neighbour
(:mod:`neuralrg.scaling.order`), each measured by the run's own evaluation; ``scan.json``
and ``scan.csv`` rewritten (atomically) as every point ends; at the end the free energy
integrated along the grid, the finite-size scaling and the figures.

Resumable point by point: a point with a ``summary.json`` is never trained again, an
interrupted one resumes from its checkpoint with the configuration it was started with,
and a point that failed (an exception) is retried. A failed or flagged point never stops
the scan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuralrg.jobs.config import RunConfig
from neuralrg.jobs.runs import SUMMARY, RunDirectory
from neuralrg.jobs.scan_config import (
    SCAN_JSON,
    ScanConfig,
    point_config,
    point_dir,
    prepare_scan_dir,
    scan_plan,
    validate_scan_config,
)
from neuralrg.jobs.scan_figures import exact_critical, write_figures
from neuralrg.jobs.scan_results import add_integration, finite_size, point_record, write_scan_files
from neuralrg.jobs.scan_runner import (
    DONE,
    FAILED,
    INTERRUPTED,
    PENDING,
    PointState,
    effective_source,
    run_points,
)
from neuralrg.scaling.order import GROWN, SCRATCH, WARM, PlannedPoint, Point


@dataclass
class ScanSession:
    """One session of a scan: its configuration, plan, directory and the points' states."""

    scan: ScanConfig
    scan_dir: Path
    plan: list[PlannedPoint]
    states: dict[Point, PointState]
    say: Callable[[str], None] = print
    started: float = field(default_factory=time.perf_counter)

    def run_dir(self, point: Point) -> Path:
        return point_dir(self.scan_dir, point, self.scan.param)

    def label(self, point: Point) -> str:
        return f"L={point.L} {self.scan.param}={point.value:g}"

    def summary(self, point: Point) -> dict[str, Any] | None:
        path = self.run_dir(point) / SUMMARY
        return json.loads(path.read_text()) if path.exists() else None

    def records(self) -> list[dict[str, Any]]:
        found = []
        for planned in self.plan:
            state, point = self.states[planned.point], planned.point
            relative = str(self.run_dir(point).relative_to(self.scan_dir))
            found.append(point_record(planned, state, relative, self.scan.param,
                                      self.summary(point)))
        add_integration(found, self.scan.param)
        return found


def _previous_records(scan_dir: Path) -> dict[tuple, dict[str, Any]]:
    path = scan_dir / SCAN_JSON
    points = json.loads(path.read_text()).get("points", []) if path.exists() else []
    return {(p["L"], p["run_dir"]): p for p in points}


def initial_states(session: ScanSession) -> dict[Point, PointState]:
    """Each point's state from its run directory (and the CPU time, start and errors that
    an earlier session recorded in ``scan.json``)."""
    previous = _previous_records(session.scan_dir)
    states = {}
    for planned in session.plan:
        point, run = planned.point, RunDirectory(session.run_dir(planned.point))
        status = DONE if run.file(SUMMARY).exists() else INTERRUPTED if run.exists() else PENDING
        old = previous.get((point.L, str(run.path.relative_to(session.scan_dir))), {})
        source = old.get("source")
        states[point] = PointState(
            status, old.get("start") if status != PENDING else None,
            None if source is None else Point(source["L"], source[session.scan.param]),
            old.get("error"), old.get("cpu_seconds", 0.0), old.get("wall_seconds", 0.0))
    return states


def _start_of(config: RunConfig) -> str:
    return GROWN if config.init_from else WARM if config.warm_from else SCRATCH


def prepare_point(session: ScanSession, planned: PlannedPoint) -> tuple[dict, Path, bool]:
    """The configuration of a point about to train: its stored one when it was interrupted,
    else the planned one from the source that is really there."""
    run, state = RunDirectory(session.run_dir(planned.point)), session.states[planned.point]
    if run.exists():
        config = run.read_config()
        state.start = state.start or _start_of(RunConfig.from_dict(config))
        session.say(f"resume {session.label(planned.point)} ({state.start})")
        return config, run.path, True
    sources = {p.point: p.source for p in session.plan}
    state.start, state.source = effective_source(planned, session.states, sources)
    index = session.plan.index(planned)
    source_dir = None if state.source is None else session.run_dir(state.source)
    config = point_config(session.scan, planned, index, source_dir, state.start)
    origin = "" if state.source is None else f" from {session.label(state.source)}"
    session.say(f"start  {session.label(planned.point)} ({state.start}{origin}, "
                f"{config.train.steps} steps)")
    return config.to_dict(), run.path, False


def finish_point(session: ScanSession, planned: PlannedPoint, outcome: dict | None,
                 error: BaseException | None) -> None:
    """Record a point that ended and rewrite ``scan.json`` and ``scan.csv``."""
    state = session.states[planned.point]
    if error is not None:
        state.status, state.error = FAILED, f"{type(error).__name__}: {error}"
        session.say(f"FAILED {session.label(planned.point)}: {state.error}")
    else:
        state.status, state.error = DONE, None
        state.cpu_seconds += outcome["cpu_seconds"]
        state.wall_seconds += outcome["wall_seconds"]
    records = session.records()
    write_scan_files(session.scan_dir, payload(session, records, "running"))
    if error is None:
        record = next(r for r in records if r["L"] == planned.point.L
                      and r[session.scan.param] == planned.point.value)
        session.say(point_line(session, record))


def point_line(session: ScanSession, record: dict[str, Any]) -> str:
    """One line per finished point: time, gap, pulls, flags."""
    done = sum(s.status == DONE for s in session.states.values())
    q = record.get("quantities", {})
    pulls = "  ".join(f"{short} pull {q[name]['pull']:+.2f}" for name, short in
                      (("free_energy_per_site", "f"), ("energy_per_site", "e"),
                       ("heat_capacity_per_site", "c"))
                      if name in q and q[name]["pull"] is not None)
    gap = "" if record.get("gap") is None else f"gap {record['gap']:.3f}  "
    flag = "  FLAGGED" if record["flags"] else ""
    return (f"done   {session.label(Point(record['L'], record[session.scan.param]))} "
            f"[{done}/{len(session.plan)}] {record['wall_seconds']:.0f} s  {gap}{pulls}{flag}")


def payload(session: ScanSession, records: list[dict[str, Any]], status: str,
            fss: dict[str, Any] | None = None, figures: dict[str, str] | None = None) -> dict:
    """Everything ``scan.json`` holds."""
    return {"config": session.scan.to_dict(), "status": status,
            "parameter": session.scan.param, "exact_critical": exact_critical(session.scan),
            "cpu_seconds": sum(r["cpu_seconds"] for r in records),
            "session_wall_seconds": time.perf_counter() - session.started,
            "points": records, "finite_size": fss or {}, "figures": figures or {}}


def finalize(session: ScanSession) -> dict[str, Any]:
    """Integration, finite-size scaling and figures from every finished point."""
    from neuralrg.jobs.scan_figures import is_ising_temperature_scan

    records = session.records()
    fss = finite_size(records, session.scan, is_ising_temperature_scan(session.scan))
    figures = write_figures(session.scan_dir, session.scan, records, fss)
    status = "completed" if all(s.status == DONE for s in session.states.values()) else \
        "incomplete"
    result = payload(session, records, status, fss, figures)
    write_scan_files(session.scan_dir, result)
    return result


def scan_job(scan: ScanConfig, scan_dir: str | Path, resume: bool = False, force: bool = False,
             jobs: int = 1, progress: bool = True,
             say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) the scan in ``scan_dir``; returns what ``scan.json`` holds. ``jobs``
    worker processes of one thread each train independent points side by side."""
    if not resume:
        validate_scan_config(scan)
    scan = prepare_scan_dir(scan, scan_dir, resume, force)
    if resume:
        validate_scan_config(scan)
    session = ScanSession(scan, Path(scan_dir), scan_plan(scan), {}, say)
    session.states = initial_states(session)
    run_points(session.plan, session.states, lambda p: prepare_point(session, p),
               lambda p, outcome, error: finish_point(session, p, outcome, error),
               jobs=jobs, progress=progress)
    return finalize(session)


def refresh_scan(scan_dir: str | Path) -> dict[str, Any]:
    """The results of a scan directory recomputed from its points as they stand (after a
    kill, or while it runs): integration, finite-size scaling, figures; no training."""
    scan = prepare_scan_dir(ScanConfig(), scan_dir, resume=True, force=False)
    session = ScanSession(scan, Path(scan_dir), scan_plan(scan), {}, lambda text: None)
    session.states = initial_states(session)
    for state in session.states.values():
        if state.status == INTERRUPTED:
            state.status = PENDING
    return finalize(session)
