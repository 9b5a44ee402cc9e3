"""Warm starts in a temperature scan: the same scan warm-started (``neuralrg scan``'s
default: lanes from T_c, each point from its trained neighbour, L grown from L/2) and from
scratch, at equal training CPU: the from-scratch baseline gives every point of a size the
mean steps per point that the warm-started scan spends on that size (a step costs the same
at every T). Compares the gap (ln Z - bound, nats) and the error bars point by point, and
prints the ratio of the mean gap per point, warm / scratch.

    .venv/bin/python -m benchmarks.scan_warm_start                     # L = 8 16, 2.1:2.5:9
    .venv/bin/python -m benchmarks.scan_warm_start --L 4 --T 2.2:2.4:3 --steps 40 \\
        --eval-samples 512 --mc-steps 100 --runs /tmp/smoke                # a smoke test

Writes ``results/scan_warm_start.json``; the scans stay under ``--runs``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import RESULTS, environment, print_table, ratio, write_json
from neuralrg.jobs.config import EvalConfig
from neuralrg.jobs.scan import scan_job
from neuralrg.jobs.scan_config import SCAN_STEPS, ScanConfig, scan_run_defaults
from neuralrg.measure.sampling import SampleConfig
from neuralrg.model import resolve_symmetrise
from neuralrg.scaling import parse_grid
from neuralrg.targets import target_class

ERRORS = ("free_energy_per_site", "energy_per_site", "heat_capacity_per_site")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--L", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--T", nargs="+", default=["2.1:2.5:9"])
    parser.add_argument("--steps", type=int, default=SCAN_STEPS,
                        help="steps of a point from scratch in the warm-started scan")
    parser.add_argument("--warm-fraction", type=float, default=ScanConfig.warm_fraction)
    parser.add_argument("--grow-fraction", type=float, default=ScanConfig.grow_fraction)
    parser.add_argument("--jobs", type=int, default=2, help="points side by side per scan")
    parser.add_argument("--eval-samples", type=int, default=SampleConfig.importance_samples)
    parser.add_argument("--mc-chains", type=int, default=SampleConfig.chains)
    parser.add_argument("--mc-steps", type=int, default=SampleConfig.steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-scan-warm"))
    parser.add_argument("--out", type=Path, default=RESULTS / "scan_warm_start.json")
    return parser.parse_args()


def base_scan(args: argparse.Namespace, values: tuple[float, ...]) -> ScanConfig:
    run = scan_run_defaults()
    symmetrise = resolve_symmetrise(run.flow.symmetrise, target_class(run.target.name))
    run = replace(run, flow=replace(run.flow, symmetrise=symmetrise),  # as the CLI records it
                  train=replace(run.train, steps=args.steps, seed=args.seed),
                  eval=EvalConfig(replace(run.eval.sampling, importance_samples=args.eval_samples,
                                          chains=args.mc_chains, steps=args.mc_steps)))
    return ScanConfig(run=run, sizes=tuple(args.L), values=values,
                      warm_fraction=args.warm_fraction, grow_fraction=args.grow_fraction)


def scratch_steps(scan: ScanConfig, L: int) -> int:
    """The mean training steps per point that the warm-started scan spends at size ``L``."""
    from neuralrg.jobs.scan_config import point_config, scan_plan

    plan = [p for p in scan_plan(scan) if p.point.L == L]
    steps = [point_config(scan, p, 0, None).train.steps for p in plan]
    return round(sum(steps) / len(steps))


def run(scan: ScanConfig, where: Path, jobs: int) -> tuple[dict[str, Any], float]:
    start = time.perf_counter()
    result = scan_job(scan, where, resume=(where / "scan.json").exists(), jobs=jobs,
                      progress=False)
    return result, time.perf_counter() - start


def by_point(results: list[dict[str, Any]]) -> dict[tuple[int, float], dict[str, Any]]:
    return {(p["L"], round(p["T"], 6)): p for r in results for p in r["points"]}


def row(key, warm: dict[str, Any], cold: dict[str, Any]) -> list[Any]:
    def err(point, name):
        entry = (point.get("quantities") or {}).get(name)
        return None if entry is None else entry["err"]

    errors = [ratio(err(warm, name), err(cold, name)) for name in ERRORS]
    return [key[0], key[1], warm.get("gap"), cold.get("gap"), ratio(warm.get("gap"),
                                                                     cold.get("gap")), *errors]


def main() -> None:
    args = arguments()
    torch.set_num_threads(1)
    values = parse_grid(args.T)
    warm_scan = base_scan(args, values)
    warm, warm_wall = run(warm_scan, args.runs / "warm", args.jobs)
    cold_results, cold_wall = [], 0.0
    for L in args.L:
        cold_scan = replace(warm_scan, sizes=(L,), warm=False, run=replace(
            warm_scan.run, train=replace(warm_scan.run.train, steps=scratch_steps(warm_scan, L))))
        result, wall = run(cold_scan, args.runs / f"scratch-L{L}", args.jobs)
        cold_results.append(result)
        cold_wall += wall
    warm_points, cold_points = by_point([warm]), by_point(cold_results)
    rows = [row(key, warm_points[key], cold_points[key]) for key in sorted(warm_points)]
    print_table(["L", "T", "gap warm", "gap scratch", "ratio", "err f w/s", "err e w/s",
                 "err c w/s"], rows)
    gaps = {name: [p.get("gap") for p in points.values() if p.get("gap") is not None]
            for name, points in (("warm", warm_points), ("scratch", cold_points))}
    mean = {name: float(np.mean(values)) if values else None for name, values in gaps.items()}
    summary = {"mean_gap_warm": mean["warm"], "mean_gap_scratch": mean["scratch"],
               "mean_gap_ratio": ratio(mean["warm"], mean["scratch"]),
               "cpu_seconds_warm": warm["cpu_seconds"],
               "cpu_seconds_scratch": sum(r["cpu_seconds"] for r in cold_results),
               "wall_seconds_warm": warm_wall, "wall_seconds_scratch": cold_wall,
               "scratch_steps": {L: scratch_steps(warm_scan, L) for L in args.L}}
    print(f"\nmean gap per point: warm {mean['warm']:.4g}, scratch {mean['scratch']:.4g}, "
          f"ratio {summary['mean_gap_ratio']:.3f} (acceptance: <= 0.7); CPU warm "
          f"{summary['cpu_seconds_warm'] / 60:.1f} min, scratch "
          f"{summary['cpu_seconds_scratch'] / 60:.1f} min")
    write_json(args.out, {"environment": environment(torch.device("cpu"), 1), "args": vars(args),
                          "summary": summary,
                          "columns": ["L", "T", "gap_warm", "gap_scratch", "gap_ratio",
                                      "err_ratio_f", "err_ratio_e", "err_ratio_c"],
                          "rows": rows, "warm": warm, "scratch": cold_results})


if __name__ == "__main__":
    main()
