"""ln Z of the 2D Ising model at T_c from a trained flow, every estimator side by side at equal
CPU time, against Kaufman's exact value and against thermodynamic integration.

Contenders, each given the same CPU-time budget on one thread (``--budgets``, seconds):

- ``bound``: the variational bound E_q[ln pi - ln q] (a bound, not an estimate);
- ``importance_sampling``: Z = E_q[pi/q] on flow samples;
- ``reverse``: 1/Z = E_pi[q/pi] on chains of exact cluster moves, scored by the flow;
- ``bennett``: Bennett's acceptance ratio, ``--bennett-chain-share`` of the budget for the
  chains, the rest for flow samples;
- ``smc``: annealed SMC from the flow (runs of 256 particles, half on a ladder twice as fine);
- ``thermodynamic_integration``: the classical route, no flow (40 Gauss-Legendre nodes, 8
  Swendsen-Wang chains each, as many sweeps as the budget allows).

For each: value ± error, the pull against Kaufman, the product's verdict, the CPU seconds
spent, and the efficiency 1 / (error^2 x CPU seconds) relative to thermodynamic integration's,
without and with the flow's training time (read from the run's summary) counted.

    python -m benchmarks.free_energy runs/bench-fwd/L16-spline --budgets 30 120
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import RESULTS, environment, print_table, write_json
from neuralrg.estimators import Verdict, variational_bound
from neuralrg.jobs import load_model
from neuralrg.mcmc.smc import SMCConfig, SMCRepeats, smc
from neuralrg.measure.free_energy import (
    bennett_entry,
    forward_ln_z,
    reverse_ln_z,
    smc_entry,
    thermodynamic_entry,
)
from neuralrg.measure.sampling import overdispersed_start

SCORE_BATCH = 1024  # chain states scored by the flow at a time
CONTENDERS = ("bound", "importance_sampling", "reverse", "bennett", "smc",
              "thermodynamic_integration")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--budgets", type=float, nargs="+", default=[30.0, 120.0])
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--chains", type=int, default=16,
                        help="chains of exact moves (few, long chains pass R-hat sooner)")
    parser.add_argument("--bennett-chain-share", type=float, default=0.5,
                        help="Bennett: the share of the budget for the chains (the rest: flow)")
    parser.add_argument("--training-minutes", type=float, default=None,
                        help="training CPU minutes (default: read from the run's summary)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON name under benchmarks/results")
    args = parser.parse_args()
    for name in args.contenders.split(","):
        if name not in CONTENDERS:
            parser.error(f"--contenders: {name!r} is unknown; allowed: {', '.join(CONTENDERS)}")
    return args


def until(budget: float, step: Callable[[], None]) -> float:
    """Call ``step`` until ``budget`` CPU seconds have passed; returns the seconds used."""
    start = time.process_time()
    while time.process_time() - start < budget:
        step()
    return time.process_time() - start


@torch.no_grad()
def flow_weights(model, budget: float, generator) -> tuple[torch.Tensor, float]:
    parts = []

    def draw():
        x, log_q = model.sampler.sample(1024, generator)
        parts.append((model.target.log_prob(x) - log_q).double())

    seconds = until(budget, draw)
    return torch.cat(parts), seconds


@torch.no_grad()
def chain_weights(model, budget: float, chains: int, generator) -> tuple[np.ndarray, float]:
    """ln pi - ln q on chains of exact moves (20 moves of burn-in inside the budget); the
    states are scored by the flow in batches of about ``SCORE_BATCH``, as ``sample`` does."""
    start = time.process_time()
    x = overdispersed_start(model, chains, 1.5, generator)[1]
    for _ in range(20):
        x = model.target.exact_move(x, generator)
    rows, pending = [], []

    def score():
        states = torch.stack(pending)  # (moves, chains, ...)
        pending.clear()
        flat = states.reshape(-1, *states.shape[2:])
        log_w = model.target.log_prob(flat) - model.sampler.log_prob(flat)
        rows.append(log_w.double().reshape(states.shape[:2]))

    def advance():
        nonlocal x
        x = model.target.exact_move(x, generator)
        pending.append(x)
        if len(pending) * chains >= SCORE_BATCH:
            score()

    until(budget - (time.process_time() - start), advance)
    if pending:
        score()
    return torch.cat(rows).numpy(), time.process_time() - start


def run_contender(name: str, model, budget: float, args, generator) -> tuple[dict, Verdict, float]:
    if name in ("bound", "importance_sampling"):
        log_w, seconds = flow_weights(model, budget, generator)
        if name == "bound":
            bound = variational_bound(log_w)
            return ({"value": bound.value, "err": bound.err, "samples": len(log_w)},
                    Verdict(False, "a lower bound, not an estimate"), seconds)
        fields, verdict = forward_ln_z(log_w)
        return {**fields, "samples": len(log_w)}, verdict, seconds
    if name == "reverse":
        chain_log_w, seconds = chain_weights(model, budget, args.chains, generator)
        fields, verdict = reverse_ln_z(chain_log_w)
        return {**fields, "states": chain_log_w.size}, verdict, seconds
    if name == "bennett":
        share = args.bennett_chain_share
        log_w, flow_seconds = flow_weights(model, budget * (1 - share), generator)
        chain_log_w, chain_seconds = chain_weights(model, budget * share, args.chains, generator)
        start = time.process_time()
        fields, verdict = bennett_entry(log_w, chain_log_w)
        seconds = flow_seconds + chain_seconds + time.process_time() - start
        return {**fields, "flow_samples": len(log_w), "states": chain_log_w.size}, verdict, seconds
    if name == "smc":
        return smc_contender(model, budget, generator)
    return ti_contender(model, budget, generator)


def smc_contender(model, budget: float, generator) -> tuple[dict, Verdict, float]:
    config, runs = SMCConfig(particles=256), SMCRepeats([], [])
    start = time.process_time()
    while time.process_time() - start < budget or len(runs.fine) < 2:
        runs.coarse.append(smc(model.sampler, model.target.log_prob, config, generator))
        runs.fine.append(smc(model.sampler, model.target.log_prob, config.finer(), generator))
    fields, verdict = smc_entry(runs)
    return fields, verdict, time.process_time() - start


def ti_contender(model, budget: float, generator) -> tuple[dict, Verdict, float]:
    path = model.target.thermodynamic_path(generator)
    start = time.process_time()
    path.energy_series(path.beta, 8, 20, 0)
    per_sweep = (time.process_time() - start) / 20  # 8 chains
    nodes = 40
    sweeps = max(int(budget / (per_sweep * nodes)), 40)
    steps = max(int(sweeps * 0.8), 32)
    fields, verdict = thermodynamic_entry(path, nodes, steps)
    return fields, verdict, time.process_time() - start


def training_seconds(run_dir: Path, given: float | None) -> float:
    if given is not None:
        return 60 * given
    summary = json.loads((run_dir / "summary.json").read_text())
    return 60 * summary.get("cpu_minutes", summary.get("wall_seconds", 0) / 60)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    model, run = load_model(args.run_dir)
    exact = model.exact_ln_z()
    train = training_seconds(Path(args.run_dir), args.training_minutes)
    results, rows = [], []
    for budget in args.budgets:
        measured = {}
        for name in args.contenders.split(","):
            generator = torch.Generator().manual_seed(args.seed)
            fields, verdict, seconds = run_contender(name, model, budget, args, generator)
            measured[name] = {**fields, "reliable": verdict.reliable, "reason": verdict.reason,
                              "cpu_seconds": seconds, "pull": (fields["value"] - exact)
                              / fields["err"] if fields["err"] > 0 else None}
            print(name, budget, json.dumps({k: v for k, v in measured[name].items()
                                            if not isinstance(v, list)}), flush=True)
        for m in measured.values():
            m["efficiency"] = 1 / (m["err"] ** 2 * m["cpu_seconds"])
            m["efficiency_with_training"] = 1 / (m["err"] ** 2 * (m["cpu_seconds"] + train))
        anchor = measured.get("thermodynamic_integration")
        for name, m in measured.items():
            if anchor is not None:
                m["vs_ti"] = m["efficiency"] / anchor["efficiency"]
                m["vs_ti_with_training"] = m["efficiency_with_training"] / anchor["efficiency"]
            rows.append([budget, name, m["value"], m["err"], m["pull"],
                         "yes" if m["reliable"] else "no", m["cpu_seconds"],
                         m.get("vs_ti"), m.get("vs_ti_with_training")])
        results.append({"budget": budget, "contenders": measured})
    print(f"exact ln Z (relaxed) {exact:.6f}; training {train / 60:.1f} CPU minutes")
    print_table(["budget s", "estimator", "ln Z", "err", "pull", "reliable", "CPU s",
                 "eff. / TI", "eff. / TI, training counted"], rows)
    L = model.target.L
    out = RESULTS / (args.out or f"free_energy_L{L}.json")
    write_json(out, {"L": L, "T": model.target.T, "run_dir": str(args.run_dir),
                     "ln_z_exact": exact, "training_seconds": train, "results": results,
                     "environment": environment(torch.device("cpu"), 1)})


if __name__ == "__main__":
    main()
