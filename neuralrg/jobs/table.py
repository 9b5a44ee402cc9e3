"""What ``neuralrg train`` prints at the end (the measurement table itself is
:mod:`neuralrg.measure.table`)."""

from __future__ import annotations

from typing import Any

from neuralrg.measure.table import format_measurement, relaxed_label


def format_train_summary(s: dict[str, Any]) -> str:
    """What ``neuralrg train`` prints at the end: how training stopped, the bound and its gap,
    then the measurement table."""
    lines = [f"stopped: {s['stopped_reason']} after {s['steps']} steps "
             f"({s['wall_seconds']:.1f} s)"]
    if "evaluated_step" in s:
        lines.append(f"evaluated the last good checkpoint: step {s['evaluated_step']}")
    if "ln_z_bound" not in s:
        return "\n".join(lines)
    kind = relaxed_label(s)
    rows = [(f"variational bound of ln Z{kind}", f"{s['ln_z_bound']:.6f} ± "
                                                 f"{s['ln_z_bound_err']:.6f}")]
    if s["ln_z_exact"] is not None:
        rows += [(f"exact ln Z{kind}", f"{s['ln_z_exact']:.6f}"),
                 ("relative gap", f"{s['relative_gap']:.3e}"),
                 ("gap per site", f"{s['gap_per_site']:.3e}")]
    if s.get("pareto_k") is not None:
        rows.append(("flow samples", f"ESS/sample {s['ess_per_sample']:.3g}, "
                                     f"Pareto k {s['pareto_k']:.2f}"))
    lines += [f"{label + ':':37s}{value}" for label, value in rows]
    if s.get("ising_ln_z_exact") is not None:
        lines.append(f"Ising ln Z: bound {s['ising_ln_z_bound']:.6f}, "
                     f"exact {s['ising_ln_z_exact']:.6f}")
    if "acceptance" in s:
        lines.append(format_measurement(s))
    return "\n".join(lines)
