"""Effective independent samples per second of |m| and of the energy, 2D Ising at T_c.

Contenders, run one after another in the same process for each L (default 16 and 32):
single-spin Metropolis (checkerboard-vectorised torch), Wolff clusters (numba),
physical-space HMC on the relaxed model, and, given a trained run directory for that L
(``--run-dir-16``, ``--run-dir-32``), flow-proposal independent Metropolis and
latent-space HMC. Each contender thermalises for ``--therm-seconds`` (HMC step sizes
adapt toward acceptance 0.7 only then), then samples for ``--seconds``; the timed
part includes drawing spins from the relaxed variables and measuring.

ESS/s = n_samples / (2 tau_int) / seconds, with tau_int from
``neuralrg.mcmc.integrated_autocorr_time`` over (steps, chains), floored at 1/2.
For the flow contenders the training wall time (the run's summary.json) is reported
separately and amortised: ESS/s(N) = (N / 2 tau) / (t_train + N / sampling rate).

    python -m benchmarks.vs_monte_carlo --run-dir-16 runs/L16 --run-dir-32 runs/L32
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import mc_samplers as mc
from benchmarks.common import add_common_arguments, environment, setup, synchronize, write_json
from benchmarks.mc_report import report
from benchmarks.wolff import warm_up
from neuralrg.exact import T_CRITICAL_2D, exact_ising
from neuralrg.jobs import load_model
from neuralrg.mcmc import integrated_autocorr_time
from neuralrg.targets.ising import RelaxedIsing

AMORTISE_OVER = (10_000, 1_000_000)
MAX_SEGMENT_ELEMENTS = 2**24  # recorded configurations per segment: bounds the memory
FLOW_CONTENDERS = ("flow Metropolis", "latent HMC")


def max_steps_per_call(name: str, n_chains: int, n_sites: int) -> int:
    """Steps per call such that the recorded configurations stay within memory bounds."""
    if name == "Wolff":  # records observables only
        return 10**6
    return max(1, MAX_SEGMENT_ELEMENTS // (n_chains * n_sites))


def thermalise(sampler, seconds: float, device: torch.device, per_call: int) -> tuple[int, float]:
    """Advance for ``seconds``; return the steps per call for sampling and the time used."""
    start, steps = time.perf_counter(), 1
    while True:
        synchronize(device)
        t0 = time.perf_counter()
        sampler.advance(steps)
        synchronize(device)
        elapsed = time.perf_counter() - t0
        if hasattr(sampler, "adapt"):
            sampler.adapt()
        steps = min(per_call, max(1, round(steps * 0.5 / max(elapsed, 1e-9))))
        if time.perf_counter() - start >= seconds:
            return steps, time.perf_counter() - start


def sample(sampler, seconds: float, steps: int, device) -> tuple[np.ndarray, np.ndarray, float]:
    """Record whole calls until ``seconds`` have passed: (|m|, e, seconds used)."""
    m_parts, e_parts, used = [], [], 0.0
    while used < seconds:
        synchronize(device)
        t0 = time.perf_counter()
        m_abs, energy = sampler.advance(steps)
        synchronize(device)
        used += time.perf_counter() - t0
        m_parts.append(m_abs)
        e_parts.append(energy)
    return np.concatenate(m_parts), np.concatenate(e_parts), used


def statistics(series: np.ndarray, seconds: float, exact: float | None = None) -> dict[str, Any]:
    """tau_int, ESS and ESS/s of a (steps, chains) series, its mean with error and z-score."""
    n_steps, n = series.shape[0], series.size
    tau, window = integrated_autocorr_time(series, return_window=True)
    tau_used = max(float(tau), 0.5) if math.isfinite(tau) else math.inf
    ess = n / (2 * tau_used)
    err = math.sqrt(2 * tau_used * float(series.var()) / n)
    row = {"tau_int": float(tau), "window": window, "ess": ess, "ess_per_second": ess / seconds,
           "tau_reliable": bool(window < n_steps - 1 and n_steps >= 50 * tau_used),
           "mean": float(series.mean()), "err": err}
    if exact is not None:
        row.update(exact=exact, z_score=(row["mean"] - exact) / err if err > 0 else math.nan)
    return row


def amortised(stats: dict[str, Any], samples_per_second: float, train_seconds: float | None):
    """ESS/s including the training time, for N samples in AMORTISE_OVER."""
    if train_seconds is None or not math.isfinite(stats["tau_int"]):
        return None
    tau = max(stats["tau_int"], 0.5)
    return {str(n): (n / (2 * tau)) / (train_seconds + n / samples_per_second)
            for n in AMORTISE_OVER}


def measure(name: str, sampler, args, L: int, device, train_seconds=None) -> dict[str, Any]:
    """Thermalise, sample and summarise one contender."""
    n_chains = args.wolff_chains if name == "Wolff" else args.chains
    per_call = max_steps_per_call(name, n_chains, L * L)
    steps, therm = thermalise(sampler, args.therm_seconds, device, per_call)
    m_abs, energy, seconds = sample(sampler, args.seconds, steps, device)
    exact_e = exact_ising(L, T_CRITICAL_2D).energy_per_site
    row = {"sampler": name, "L": L, "implementation": sampler.implementation,
           "unit": sampler.unit, "n_chains": n_chains, "n_steps": m_abs.shape[0],
           "n_samples": m_abs.size, "seconds": seconds, "therm_seconds": therm,
           "samples_per_second": m_abs.size / seconds,
           "acceptance": getattr(sampler, "acceptance", None),
           "step_size": getattr(sampler, "step_size", None), "train_seconds": train_seconds,
           "m_abs": statistics(m_abs, seconds), "energy": statistics(energy, seconds, exact_e)}
    for obs in ("m_abs", "energy"):
        row[obs]["amortised_ess_per_second"] = amortised(
            row[obs], row["samples_per_second"], train_seconds)
    print(f"  L={L:3d} {name:16s} {row['n_samples']:9d} samples in {seconds:6.1f}s  "
          f"ESS/s |m| {row['m_abs']['ess_per_second']:.4g}  "
          f"E {row['energy']['ess_per_second']:.4g}", flush=True)
    return row


def load_flow(run_dir: Path, L: int, device: torch.device):
    """The trained model of ``run_dir`` on ``device`` and its training wall time."""
    model, run = load_model(run_dir)
    target = model.config.target
    if (target.L, target.d) != (L, 2):
        raise ValueError(f"{run_dir} holds an L={target.L}, d={target.d} model; expected L={L}")
    if abs(target.T - T_CRITICAL_2D) > 1e-6:
        print(f"  warning: {run_dir} was trained at T={target.T}, the benchmark is at T_c")
    model.flow.to(device)
    summary = run.read_summary() if run.file("summary.json").exists() else {}
    return model, summary.get("wall_seconds")


def contenders(L: int, args, device: torch.device) -> list[tuple[str, Any, float | None]]:
    """(name, sampler, training seconds) for this L; flow contenders need a run directory."""
    target, seed = RelaxedIsing(L, T_CRITICAL_2D), args.seed + L
    out = [("Metropolis", mc.CheckerboardMetropolis(L, T_CRITICAL_2D, args.chains, device, seed),
            None),
           ("Wolff", mc.Wolff(L, T_CRITICAL_2D, args.wolff_chains, seed), None),
           ("physical HMC", mc.PhysicalHMC(target, args.chains, args.step_size_physical,
                                           args.leapfrog, device), None)]
    run_dir = getattr(args, f"run_dir_{L}", None)
    if run_dir is None:
        print(f"  L={L}: no --run-dir-{L} given: skipping {' and '.join(FLOW_CONTENDERS)}")
        return out
    model, train_seconds = load_flow(run_dir, L, device)
    out += [("flow Metropolis", mc.FlowMetropolis(model, args.chains), train_seconds),
            ("latent HMC", mc.LatentHMC(model, args.chains, args.step_size_latent,
                                        args.leapfrog), train_seconds)]
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--L", type=int, nargs="+", default=[16, 32], choices=(16, 32))
    p.add_argument("--run-dir-16", type=Path, default=None)
    p.add_argument("--run-dir-32", type=Path, default=None)
    p.add_argument("--seconds", type=float, default=60.0, help="sampling time per contender")
    p.add_argument("--therm-seconds", type=float, default=15.0)
    p.add_argument("--chains", type=int, default=256, help="batched chains (all but Wolff)")
    p.add_argument("--wolff-chains", type=int, default=4)
    p.add_argument("--leapfrog", type=int, default=10)
    p.add_argument("--step-size-latent", type=float, default=0.2)
    p.add_argument("--step-size-physical", type=float, default=0.1)
    add_common_arguments(p, "vs_monte_carlo.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup(args.threads, args.seed, args.device)
    warm_up()
    rows = []
    for L in args.L:
        for name, sampler, train_seconds in contenders(L, args, device):
            rows.append(measure(name, sampler, args, L, device, train_seconds))
    verdicts = report(rows)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    write_json(args.out, {"benchmark": "vs_monte_carlo", "T": T_CRITICAL_2D, "config": config,
                          "environment": environment(device, args.threads),
                          "amortise_over": AMORTISE_OVER, "results": rows, "verdicts": verdicts})


if __name__ == "__main__":
    main()
