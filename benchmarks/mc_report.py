"""Table and plain-language verdicts for ``vs_monte_carlo``."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.common import fmt, print_table

CLASSICAL = ("Metropolis", "Wolff", "physical HMC")
OBSERVABLES = {"m_abs": "|m|", "energy": "E"}


def _amortised(stats: dict[str, Any], n: str) -> float | None:
    table = stats.get("amortised_ess_per_second")
    return None if table is None else table.get(n)


def table_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    for r in rows:
        for key, label in OBSERVABLES.items():
            s = r[key]
            tau = fmt(s["tau_int"]) + ("" if s["tau_reliable"] else " (!)")
            z = s.get("z_score")
            out.append([r["L"], r["sampler"], label, r["n_samples"], tau, s["ess_per_second"],
                        _amortised(s, "10000"), _amortised(s, "1000000"), r["acceptance"],
                        f"{s['mean']:.5f} ± {s['err']:.1g}", None if z is None else round(z, 1)])
    return out


def break_even(flow: dict[str, Any], stats: dict[str, Any], rival_rate: float) -> float | None:
    """Samples N at which the flow's amortised ESS/s equals ``rival_rate`` (None: never)."""
    train = flow["train_seconds"]
    tau = max(stats["tau_int"], 0.5)
    margin = 1 / (2 * tau) - rival_rate / flow["samples_per_second"]
    if train is None or not math.isfinite(tau) or margin <= 0:
        return None
    return rival_rate * train / margin


def verdict(L: int, key: str, rows: list[dict[str, Any]]) -> list[str]:
    """Who wins for one L and observable, with and without the training cost."""
    label = OBSERVABLES[key]
    classical = [r for r in rows if r["sampler"] in CLASSICAL]
    best = max(classical, key=lambda r: r[key]["ess_per_second"])
    rate = best[key]["ess_per_second"]
    lines = [f"L={L} {label}: best classical sampler is {best['sampler']} "
             f"({rate:.3g} ESS/s)"]
    for flow in (r for r in rows if r["sampler"] not in CLASSICAL):
        lines.append("  " + _flow_line(flow, key, best["sampler"], rate))
    return lines


def _flow_line(flow: dict[str, Any], key: str, rival: str, rate: float) -> str:
    stats = flow[key]
    own = stats["ess_per_second"]
    if not own > 0:
        return f"{flow['sampler']} produced no effective samples (stuck chains?): {rival} wins"
    if own > rate:
        text = f"{flow['sampler']} wins sampling-only by {own / rate:.3g}x"
    else:
        text = f"{rival} wins over {flow['sampler']} sampling-only by {rate / own:.3g}x"
    if flow["train_seconds"] is None:
        return text + "; training time unknown (no wall_seconds in summary.json)"
    n_even = break_even(flow, stats, rate)
    text += f"; with {flow['train_seconds']:.0f} s of training amortised, "
    if n_even is None:
        return text + f"{rival} wins at every N"
    return text + f"the flow wins only beyond N = {n_even:.3g} samples"


def report(rows: list[dict[str, Any]]) -> list[str]:
    """Print the table and the verdicts; return the verdicts."""
    print("\n(!) tau_int not reliable (series too short for its window): ESS/s is an upper bound")
    print("z: (mean - exact) / err for the energy (Kaufman); ESS/s amortised includes training\n")
    print_table(["L", "sampler", "obs", "samples", "tau_int", "ESS/s", "ESS/s N=1e4",
                 "ESS/s N=1e6", "accept", "mean ± err", "z"], table_rows(rows))
    verdicts = []
    for L in sorted({r["L"] for r in rows}):
        at_L = [r for r in rows if r["L"] == L]
        for key in OBSERVABLES:
            verdicts += verdict(L, key, at_L)
    print("\n" + "\n".join(verdicts))
    return verdicts
