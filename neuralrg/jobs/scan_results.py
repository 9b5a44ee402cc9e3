"""What a scan found, point by point and as a whole: each point's record (how it started,
its verdict entries), the free energy integrated from the neighbours (a second estimate
that flags a point's own free energy when every neighbour's disagrees), the finite-size
scaling (Binder crossings of successive sizes, heat-capacity peaks), and ``scan.json``
and ``scan.csv`` (one row per L, value, quantity)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from neuralrg.estimators.verdicts import pull
from neuralrg.jobs.runs import atomic_write_bytes, atomic_write_json
from neuralrg.jobs.scan_config import SCAN_CSV, SCAN_JSON, ScanConfig
from neuralrg.jobs.scan_runner import DONE, PointState
from neuralrg.scaling import integration
from neuralrg.scaling.curves import Curve
from neuralrg.scaling.exact_lines import heat_capacity_peak
from neuralrg.scaling.fss import Located, binder_crossing, peak
from neuralrg.scaling.order import PlannedPoint

QUANTITIES = ("free_energy_per_site", "energy_per_site", "heat_capacity_per_site", "m2",
              "abs_m", "binder", "ising_ln_z", "ln_z")
JUDGED = ("free_energy_per_site", "energy_per_site", "heat_capacity_per_site")
INTEGRATED = "free_energy_integrated"
ENTRY_KEYS = ("value", "err", "exact", "pull", "reliable", "reason", "estimator")


def _entries(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {**summary, **(summary.get("observables") or {})}
    return {name: {k: found[name].get(k) for k in ENTRY_KEYS}
            for name in QUANTITIES if isinstance(found.get(name), dict)}


def _gap(summary: dict[str, Any]) -> float | None:
    exact, bound = summary.get("ln_z_exact"), summary.get("ln_z_bound")
    return None if exact is None or bound is None else exact - bound


def point_record(planned: PlannedPoint, state: PointState, run_dir: str, parameter: str,
                 summary: dict[str, Any] | None) -> dict[str, Any]:
    """One point for ``scan.json``: where it stands, how it started, its numbers."""
    source = state.source if state.start is not None else planned.source
    record = {"L": planned.point.L, parameter: planned.point.value, "run_dir": run_dir,
              "status": state.status, "start": state.start or planned.start,
              "source": None if source is None else {"L": source.L, parameter: source.value},
              "lane": planned.lane, "error": state.error,
              "cpu_seconds": state.cpu_seconds, "wall_seconds": state.wall_seconds}
    if summary is not None and state.status == DONE:
        record.update(steps=summary.get("steps"), stopped_reason=summary.get("stopped_reason"),
                      gap=_gap(summary), relative_gap=summary.get("relative_gap"),
                      gap_per_site=summary.get("gap_per_site"),
                      acceptance=summary.get("acceptance"), pareto_k=summary.get("pareto_k"),
                      quantities=_entries(summary))
    record["flags"] = flags(record)
    return record


def flags(record: dict[str, Any]) -> list[str]:
    """Why a point is not to be trusted: it failed, did not finish training, or one of its
    free energy, energy and heat capacity is unreliable."""
    if record["status"] != DONE:
        return [f"{record['status']}" + (f": {record['error']}" if record.get("error") else "")]
    found = [] if record.get("stopped_reason") == "completed" else [
        f"training stopped: {record.get('stopped_reason')}"]
    quantities = record.get("quantities", {})
    for name in JUDGED:
        if name in quantities and not quantities[name]["reliable"]:
            found.append(f"{name}: {quantities[name]['reason']}")
    return found


def _usable(entry: dict[str, Any] | None) -> bool:
    return bool(entry and entry["reliable"] and entry["err"] and entry["value"] is not None)


def add_integration(records: list[dict[str, Any]], parameter: str) -> None:
    """For a temperature scan, every point's free energy integrated from its neighbours at
    the same L (points with reliable energy and heat capacity), written as the entry
    ``free_energy_integrated``; a point's own free energy that disagrees with every
    neighbour's is flagged unreliable."""
    if parameter != "T":
        return
    for L in sorted({r["L"] for r in records}):
        chain = sorted((r for r in records if r["L"] == L and r["status"] == DONE
                        and all(_usable(r["quantities"].get(q)) for q in JUDGED[1:])),
                       key=lambda r: r["T"])
        if len(chain) >= 2:
            _integrate_chain(chain)


def _integrate_chain(chain: list[dict[str, Any]]) -> None:
    q = [r["quantities"] for r in chain]
    points = [integration.ThermoPoint(r["T"], x["energy_per_site"]["value"],
                                      x["energy_per_site"]["err"],
                                      x["heat_capacity_per_site"]["value"],
                                      x["heat_capacity_per_site"]["err"])
              for r, x in zip(chain, q, strict=True)]
    f = [x.get("free_energy_per_site") for x in q]
    values = [e["value"] if _usable(e) else math.nan for e in f]
    errors = [e["err"] if _usable(e) else math.nan for e in f]
    for record, own, found in zip(chain, f, integration.integrated_free_energies(
            points, values, errors), strict=True):
        combined = integration.combine(found)
        if combined is None:
            continue
        exact = None if own is None else own.get("exact")
        record["quantities"][INTEGRATED] = {
            "value": combined[0], "err": combined[1], "exact": exact,
            "pull": pull(combined[0], combined[1], exact), "reliable": True, "reason": None,
            "estimator": "energy_integration",
            "from": [{"T": e.from_T, "value": e.value, "err": e.err, "stat_err": e.stat_err,
                      "quad_err": e.quad_err, "pull_of_own": e.pull} for e in found]}
        reason = integration.disagreement(found)
        if reason is not None and _usable(own):
            own.update(reliable=False, reason=f"{reason} (energy integration)")
            record["flags"] = flags(record)


def curves(records: list[dict[str, Any]], quantity: str, parameter: str) -> list[Curve]:
    """The measured curve of ``quantity`` at every size (done points only)."""
    found = []
    for L in sorted({r["L"] for r in records}):
        entries = [(r[parameter], r["quantities"][quantity]) for r in records
                   if r["L"] == L and r["status"] == DONE and quantity in r.get("quantities", {})]
        if entries:
            found.append(Curve.of(L, [x for x, _ in entries], [e["value"] for _, e in entries],
                                  [e["err"] for _, e in entries],
                                  [e["exact"] for _, e in entries],
                                  [bool(e["reliable"]) for _, e in entries]))
    return found


def _located(item: Located, exact: tuple[float, float] | None = None) -> dict[str, Any]:
    data = {"sizes": list(item.sizes), "position": item.position, "err": item.position_err,
            "height": item.height, "height_err": item.height_err,
            "window": None if item.window is None else list(item.window),
            "found_fraction": item.found_fraction, "reliable": item.reliable,
            "reason": item.reason}
    if exact is not None:
        data.update(exact_position=exact[0], exact_height=exact[1])
    return data


def finite_size(records: list[dict[str, Any]], scan: ScanConfig, ising: bool) -> dict[str, Any]:
    """Binder crossings of successive sizes and the heat-capacity peak of each size (with
    the exact finite-lattice peak for the Ising model)."""
    parameter, seed = scan.param, scan.run.train.seed
    binder = curves(records, "binder", parameter)
    crossings = [binder_crossing(a, b, scan.resamples, seed)
                 for a, b in zip(binder, binder[1:], strict=False)]
    peaks = []
    for curve in curves(records, "heat_capacity_per_site", parameter):
        exact = heat_capacity_peak(curve.L, float(curve.x[0]), float(curve.x[-1]),
                                   scan.run.target.d) if ising and len(curve) > 1 else None
        peaks.append(_located(peak(curve, scan.resamples, seed), exact))
    return {"binder_crossings": [_located(c) for c in crossings],
            "heat_capacity_peaks": peaks}


def csv_text(records: list[dict[str, Any]], parameter: str) -> str:
    """One row per (L, value, quantity): value, error, exact, pull, verdict, reason, how the
    point started and where it stands."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["L", parameter, "quantity", "value", "err", "exact", "pull", "verdict",
                     "reason", "estimator", "start", "status"])
    for r in sorted(records, key=lambda r: (r["L"], r[parameter])):
        for name, e in (r.get("quantities") or {}).items():
            verdict = "reliable" if e["reliable"] else "UNRELIABLE"
            writer.writerow([r["L"], r[parameter], name, *(_cell(e[k]) for k in
                             ("value", "err", "exact", "pull")), verdict, e["reason"] or "",
                             e.get("estimator") or "", r["start"], r["status"]])
        if not r.get("quantities"):
            writer.writerow([r["L"], r[parameter], "", "", "", "", "", "", "; ".join(r["flags"]),
                             "", r["start"], r["status"]])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def write_scan_files(scan_dir: str | Path, payload: dict[str, Any]) -> None:
    """``scan.json`` and ``scan.csv``, each written atomically."""
    path = Path(scan_dir)
    atomic_write_json(path / SCAN_JSON, payload)
    parameter = ScanConfig.from_dict(payload["config"]).param
    atomic_write_bytes(path / SCAN_CSV, csv_text(payload["points"], parameter).encode())
