"""Time and peak memory per generated sample and per training step, L = 16 ... 128.

Every (mode, L) measurement runs in a fresh child process, so that its memory
high-water mark is its own: the child reports ``ru_maxrss`` of itself
(``RUSAGE_SELF``; the parent's ``RUSAGE_CHILDREN`` would be the maximum over all
children so far, and ``tracemalloc`` does not see torch's allocator), the RSS before
the measured work (interpreter, torch and the model), and on CUDA
``torch.cuda.max_memory_allocated``.

* ``sample``: ``flow.sample(B)`` with ln q, no gradients (MERA default architecture);
* ``train``: one training step of the product (``Trainer.train_step``: reverse KL at
  batch B, split into micro-batches of about 2^16 sites whose gradients add up);
* ``memory check``: the training step at ``--memory-check-L`` / ``--memory-check-batch``
  (acceptance: L = 64 at batch 256 within 4 GB);
* ``energy``: x^T (K + aI)^{-1} x through the FFT against the dense matrix
  (``Circulant(1 / spectrum, dense=...)``), in this process.

Growth = (cost per sample at L_max / at L_min) / (N_max / N_min); acceptance <= 1.3.

    python -m benchmarks.scaling
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

from benchmarks.common import (
    add_common_arguments,
    environment,
    fmt,
    print_table,
    ratio,
    setup,
    synchronize,
    timed,
    write_json,
)
from neuralrg.exact import T_CRITICAL_2D
from neuralrg.flows.flow import FlowConfig, build_flow
from neuralrg.targets.ising import RelaxedIsing
from neuralrg.targets.lattice import Circulant
from neuralrg.training import TrainConfig, Trainer

MEMORY_LIMIT_MB = 4096


def rss_high_water_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_call(mode: str, L: int, batch: int, device: torch.device):
    """The function one measurement repeats: a no-grad sample, or one training step."""
    flow = build_flow(FlowConfig(L=L, d=2, layout="mera")).to(device)
    if mode == "sample":
        return torch.no_grad()(lambda: flow.sample(batch))
    trainer = Trainer(flow, RelaxedIsing(L, T_CRITICAL_2D).log_prob,
                      TrainConfig(steps=10**9, batch_size=batch), z2_symmetric=True)
    return trainer.train_step


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement (inside the child process) and return its figures."""
    device = setup(spec["threads"], spec["seed"], spec["device"])
    call = make_call(spec["mode"], spec["L"], spec["batch"], device)
    baseline = rss_high_water_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = [timed(call, device)[1] for _ in range(spec["repeats"] + 1)][1:]
    result = {**spec, "seconds": statistics.median(times), "all_seconds": times,
              "baseline_rss_mb": baseline, "peak_rss_mb": rss_high_water_mb()}
    result["seconds_per_sample"] = result["seconds"] / spec["batch"]
    if device.type == "cuda":
        result["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def run_child(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Launch ``python -m benchmarks.scaling --child SPEC`` and parse its JSON line."""
    command = [sys.executable, "-m", "benchmarks.scaling", "--child", json.dumps(spec)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        return {**spec, "error": f"exit code {done.returncode}: {tail[0]}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["child_wall_seconds"] = time.perf_counter() - start
    return result


def energy_timings(L: int, batch: int, repeats: int, dense: bool, device) -> dict[str, Any]:
    """Median seconds of one batched x^T M^{-1} x, and the FFT-vs-dense float64 difference."""
    spectrum = RelaxedIsing(L, T_CRITICAL_2D).spectrum
    fft = Circulant(1 / spectrum, dense=False)
    x = torch.randn(batch, L, L, device=device)
    row: dict[str, Any] = {"L": L, "batch": batch}
    row["fft_seconds"] = statistics.median(timed(lambda: fft.quadratic(x), device)[1]
                                           for _ in range(repeats))
    if dense:
        matrix = Circulant(1 / spectrum, dense=True)
        row["dense_seconds"] = statistics.median(timed(lambda: matrix.quadratic(x), device)[1]
                                                 for _ in range(repeats))
        x64 = x.double()
        a, b = fft.quadratic(x64), matrix.quadratic(x64)
        row["max_relative_difference_float64"] = float(((a - b).abs() / b.abs()).max())
    synchronize(device)
    return row


def growth(rows: list[dict[str, Any]], key: str) -> float | None:
    """(per-sample cost growth from the smallest to the largest L) / (growth of N)."""
    good = sorted((r for r in rows if "error" not in r), key=lambda r: r["L"])
    if len(good) < 2:
        return None
    first, last = good[0], good[-1]
    return ratio(last[key] / first[key], (last["L"] / first["L"]) ** 2)


def print_results(samples, trains, check, energy) -> None:
    def cells(r: dict[str, Any]) -> list[Any]:
        if "error" in r:
            return [r["mode"], r["L"], r["batch"], r["error"], None, None, None, None]
        return [r["mode"], r["L"], r["batch"], r["seconds"], r["seconds_per_sample"] * 1e6,
                r["baseline_rss_mb"], r["peak_rss_mb"], r.get("cuda_peak_mb")]

    print_table(["mode", "L", "batch", "s/call", "us/sample", "RSS before MiB", "peak RSS MiB",
                 "CUDA peak MiB"],
                [cells(r) for r in [*samples, *trains, check]])
    print()
    print_table(["L", "batch", "FFT s", "dense s", "dense/FFT", "max rel diff (f64)"],
                [[e["L"], e["batch"], e["fft_seconds"], e.get("dense_seconds"),
                  ratio(e.get("dense_seconds"), e["fft_seconds"]),
                  e.get("max_relative_difference_float64")] for e in energy])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--L", type=int, nargs="+", default=[16, 32, 64, 128])
    p.add_argument("--sample-batch", type=int, default=256)
    p.add_argument("--train-batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--memory-check-L", type=int, default=64)
    p.add_argument("--memory-check-batch", type=int, default=256)
    p.add_argument("--dense-max-L", type=int, default=64, help="largest L for the dense matrix")
    p.add_argument("--child-timeout", type=float, default=1800.0)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    add_common_arguments(p, "scaling.json")
    return p.parse_args(argv)


def spec(args, mode: str, L: int, batch: int, repeats: int) -> dict[str, Any]:
    return {"mode": mode, "L": L, "batch": batch, "repeats": repeats, "device": args.device,
            "threads": args.threads, "seed": args.seed}


def measure_all(args) -> tuple[list, list, dict]:
    def go(mode: str, L: int, batch: int, repeats: int) -> dict[str, Any]:
        result = run_child(spec(args, mode, L, batch, repeats), args.child_timeout)
        print(f"  {mode:5s} L={L:4d} B={batch:4d}: "
              f"{result.get('seconds', result.get('error'))}", flush=True)
        return result

    samples = [go("sample", L, args.sample_batch, args.repeats) for L in args.L]
    trains = [go("train", L, args.train_batch, args.repeats) for L in args.L]
    check = go("train", args.memory_check_L, args.memory_check_batch, 2)
    return samples, trains, check


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(json.loads(args.child))))
        return
    device = setup(args.threads, args.seed, args.device)
    samples, trains, check = measure_all(args)
    energy = [energy_timings(L, args.sample_batch, args.repeats, L <= args.dense_max_L, device)
              for L in args.L]
    summary = {"sample_growth_vs_sites": growth(samples, "seconds_per_sample"),
               "train_growth_vs_sites": growth(trains, "seconds_per_sample"),
               "memory_check_peak_rss_mb": check.get("peak_rss_mb"),
               "memory_check_within_4gb": check.get("peak_rss_mb", float("inf")) <= MEMORY_LIMIT_MB}
    print_results(samples, trains, check, energy)
    print(f"\nper-sample cost growth / site growth, L={min(args.L)} to {max(args.L)}: sampling "
          f"{fmt(summary['sample_growth_vs_sites'])}, training "
          f"{fmt(summary['train_growth_vs_sites'])} (acceptance <= 1.3)")
    print(f"L={args.memory_check_L} training at batch {args.memory_check_batch}: peak RSS "
          f"{fmt(summary['memory_check_peak_rss_mb'], 5)} MiB (acceptance <= {MEMORY_LIMIT_MB})")
    write_json(args.out, {"benchmark": "scaling", "config": {k: v for k, v in vars(args).items()
                                                             if k not in ("out", "child")},
                          "environment": environment(device, args.threads), "summary": summary,
                          "sample": samples, "train": trains, "memory_check": check,
                          "energy": energy})


if __name__ == "__main__":
    main()
