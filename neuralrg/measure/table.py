"""The one table the product prints after training and after sampling, and that a
:class:`~neuralrg.measure.results.Measurement` shows as its text: the acceptance, then each
number with its error bar, exact value, pull and verdict (from the dict form of a
measurement, as ``summary.json`` stores it)."""

from __future__ import annotations

from typing import Any

HEADER = f"{'quantity':26s} {'value ± err':26s} {'exact':>12s} {'pull':>7s}  verdict"


def number(value: float | None, digits: int = 6) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def verdict_text(entry: dict[str, Any]) -> str:
    if entry["reliable"]:
        how = (entry.get("estimator") or "").replace("_", " ")
        chosen = entry.get("estimates", {}).get(entry.get("estimator"), {})
        note = f"; {chosen['note']}" if chosen.get("note") else ""
        return f"reliable ({how}{note})" if how else "reliable"
    return f"UNRELIABLE: {entry['reason']}"


def entry_row(label: str, entry: dict[str, Any]) -> str:
    """One line: label, value ± err, exact, pull, verdict.

    >>> row = entry_row("m2", {"value": 0.65, "err": 0.003, "exact": 0.6469, "pull": 1.03,
    ...                        "reliable": True, "estimator": "markov_chain",
    ...                        "estimates": {"markov_chain": {}}})
    >>> row.endswith("+1.03  reliable (markov chain)")
    True
    """
    value = f"{number(entry['value'])} ± {number(entry['err'])}"
    pull = "-" if entry.get("pull") is None else f"{entry['pull']:+.2f}"
    exact = number(entry["exact"])
    return f"{label:26s} {value:26s} {exact:>12s} {pull:>7s}  {verdict_text(entry)}"


def _acceptance_line(s: dict[str, Any]) -> str:
    if s.get("method") == "smc":
        return (f"annealed SMC from the flow: {s['smc_particles']} particles in all on the finer "
                f"ladder; flow-move acceptance {s['acceptance']:.4f}")
    line = f"acceptance {s['acceptance']:.4f}"
    if s.get("method") == "exact":
        line += " (flow-proposal Metropolis, long-run estimate)"
    if s.get("local_move") == "exact":
        line += " (flow moves), local moves exact (the target's equilibrium move)"
    elif s.get("local_acceptance") is not None:
        line += f" (flow moves), local moves {s['local_acceptance']:.4f}"
    return (f"{line}; {s.get('method', 'mh')}, {s['mc_chains']} chains x {s['mc_steps']} steps "
            f"after {s['mc_therm']} burn-in")


def _bound_row(s: dict[str, Any], kind: str) -> str:
    bound = f">= {number(s['ln_z_bound'])} ± {number(s['ln_z_bound_err'])}"
    text = f"{'ln Z bound' + kind:26s} {bound:26s} {number(s['ln_z_exact']):>12s}"
    if s.get("ln_z_exact") is None:
        return f"{text} {'-':>7s}  a lower bound (no exact value to compare)"
    consistent = "a lower bound, consistent" if s.get("ln_z_bound_consistent") else \
        "INCONSISTENT: above the exact value by more than 4 error bars"
    gap = f"gap {s['ln_z_exact'] - s['ln_z_bound']:.4f} ({s['relative_gap']:.2e} relative)"
    return f"{text} {'-':>7s}  {consistent}; {gap}"


DERIVED_LABELS = {"ising_ln_z": "ln Z (Ising)", "free_energy_per_site": "free energy per site"}


def relaxed_label(s: dict[str, Any]) -> str:
    """The label of the target's own ln Z when it is a relaxation of another model's."""
    return " (relaxed)" if "ising_ln_z" in s or "ising_ln_z_bound" in s else ""


def format_measurement(s: dict[str, Any]) -> str:
    """The table of a measurement summary (``neuralrg train`` or ``neuralrg sample``)."""
    kind = relaxed_label(s)
    lines = [_acceptance_line(s), HEADER]
    for name, entry in (s.get("observables") or {}).items():
        lines.append(entry_row(name, entry))
    if "ln_z" in s:
        lines.append(entry_row("ln Z" + kind, s["ln_z"]))
    for name, label in DERIVED_LABELS.items():
        if name in s:
            lines.append(entry_row(label, s[name]))
    if "ln_z_bound" in s:
        lines.append(_bound_row(s, kind))
    return "\n".join(lines)
