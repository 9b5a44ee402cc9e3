"""The figures of a scan, as matplotlib Figures (the jobs save them): every quantity against
the scan parameter for every size, the exact curves drawn in, and below it the deviation
from the exact value with the error bars (where they are visible); the data collapse.
Filled markers are reliable points, open ones flagged."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from neuralrg.scaling.curves import Curve
from neuralrg.scaling.fss import COLLAPSE_POWERS, ISING_2D, Exponents, Located, collapse

LABELS = {
    "free_energy_per_site": "free energy per site f",
    "energy_per_site": "energy per site e",
    "heat_capacity_per_site": "heat capacity per site c",
    "m2": "<m²>",
    "abs_m": "<|m|>",
    "binder": "Binder cumulant U",
}
Lines = dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]


def _colour(k: int) -> str:
    return plt.get_cmap("tab10")(k % 10)


def _offsets(curves: Sequence[Curve]) -> list[float]:
    """Small shifts along x so that the error bars of several sizes do not overlap."""
    spacing = min((float(np.min(np.diff(c.x))) for c in curves if len(c) > 1), default=0.0)
    n = len(curves)
    return [0.08 * spacing * (k - (n - 1) / 2) for k in range(n)]


def _points(ax, x: np.ndarray, y: np.ndarray, err: np.ndarray, reliable: np.ndarray,
            colour, label: str, marker: str = "o") -> None:
    """Reliable points filled, flagged ones open, both with their error bars."""
    for keep, face, suffix in ((reliable, colour, ""), (~reliable, "none", ", flagged")):
        if keep.any():
            ax.errorbar(x[keep], y[keep], yerr=err[keep], fmt=marker, ms=5, color=colour,
                        mfc=face, capsize=3, elinewidth=1.2, lw=0, label=label + suffix)


def _exact_line(ax, curve: Curve, lines: Lines, quantity: str, colour) -> bool:
    line = lines.get(curve.L, {}).get(quantity)
    if line is not None:
        ax.plot(*line, "-", color=colour, lw=1.3, alpha=0.7, label=f"L={curve.L} exact")
        return True
    known = np.isfinite(curve.exact)
    if known.sum() > 1:
        ax.plot(curve.x[known], curve.exact[known], "--", color=colour, lw=1.0, alpha=0.7,
                label=f"L={curve.L} exact (grid points)")
        return True
    return False


def _mark(ax, found: Sequence[Located], exact: float | None, what: str) -> None:
    """Vertical bands at the reliable estimated positions (± error), a dotted line at the
    exact one."""
    for k, item in enumerate(found):
        if not item.reliable:
            continue
        err = item.position_err or 0.0
        sizes = "/".join(str(L) for L in item.sizes)
        ax.axvspan(item.position - err, item.position + err, color=_colour(k + 5), alpha=0.25,
                   label=f"{what} L={sizes}: {item.position:.4f} ± {err:.4f}")
    if exact is not None:
        ax.axvline(exact, color="k", ls=":", lw=1, label=f"exact T_c = {exact:.6f}")


def plot_quantity(quantity: str, curves: Sequence[Curve], lines: Lines, parameter: str = "T",
                  second: Sequence[Curve] = (), marks: Sequence[Located] = (),
                  mark_label: str = "", critical: float | None = None) -> Figure:
    """One quantity against the parameter for every size: values with the exact curves,
    and (where exact values exist) the deviation value - exact with the error bars;
    ``second`` draws a second estimate (e.g. the free energy integrated from the
    neighbours) in the deviation panel; ``marks`` shade estimated positions (crossings,
    peaks) and ``critical`` marks the exact critical point."""
    has_exact = any(np.isfinite(c.exact).any() for c in curves)
    rows = 2 if has_exact else 1
    fig, axes = plt.subplots(rows, 1, figsize=(7.5, 3.6 * rows + 0.6), sharex=True,
                             squeeze=False, dpi=100, height_ratios=[1.3, 1][:rows])
    top = axes[0, 0]
    for k, (curve, dx) in enumerate(zip(curves, _offsets(curves), strict=True)):
        _exact_line(top, curve, lines, quantity, _colour(k))
        _points(top, curve.x + dx, curve.y, curve.err, curve.reliable, _colour(k),
                f"L={curve.L} measured")
    _mark(top, marks, critical, mark_label)
    label = LABELS.get(quantity, quantity)
    top.set(ylabel=label, title=f"{label} against {parameter}")
    top.legend(fontsize=7, ncol=2)
    if has_exact:
        _deviation_panel(axes[1, 0], quantity, curves, second)
    axes[-1, 0].set_xlabel(parameter)
    fig.tight_layout()
    return fig


def _deviation_panel(ax, quantity: str, curves: Sequence[Curve],
                     second: Sequence[Curve]) -> None:
    ax.axhline(0, color="k", lw=0.8)
    offsets = _offsets([*curves, *second])
    for k, (curve, dx) in enumerate(zip(curves, offsets, strict=False)):
        known = np.isfinite(curve.exact)
        _points(ax, curve.x[known] + dx, (curve.y - curve.exact)[known], curve.err[known],
                curve.reliable[known], _colour(k), f"L={curve.L}")
    for k, (curve, dx) in enumerate(zip(second, offsets[len(curves):], strict=False)):
        known = np.isfinite(curve.exact) & np.isfinite(curve.y)
        colour = _colour([c.L for c in curves].index(curve.L) if curve.L in
                         [c.L for c in curves] else k)
        _points(ax, curve.x[known] + dx, (curve.y - curve.exact)[known], curve.err[known],
                curve.reliable[known], colour, f"L={curve.L} integrated from neighbours",
                marker="s")
    ax.set_ylabel("measured - exact")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3)


def plot_collapse(curves: dict[str, Sequence[Curve]], critical: float,
                  exponents: Exponents = ISING_2D) -> Figure:
    """Data collapse of each quantity (one panel each: :data:`COLLAPSE_POWERS`) in the
    scaling variable (T - T_c) / T_c L^(1/nu)."""
    names = [q for q in COLLAPSE_POWERS if curves.get(q)]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5 * max(len(names), 1), 4.2),
                             squeeze=False, dpi=100)
    for ax, quantity in zip(axes[0], names, strict=False):
        for k, curve in enumerate(curves[quantity]):
            x, y, err = collapse(curve, quantity, critical, exponents)
            _points(ax, x, y, err, curve.reliable, _colour(k), f"L={curve.L}")
        power = COLLAPSE_POWERS[quantity](exponents)
        scale = f" L^{power:g}" if power else ""
        ax.set(xlabel=f"({'T'} - T_c) / T_c · L^(1/{exponents.nu:g})",
               ylabel=f"{LABELS[quantity]}{scale}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Data collapse: T_c = {critical:.6f}, ν = {exponents.nu:g}, "
                 f"β/ν = {exponents.beta_nu:g}, γ/ν = {exponents.gamma_nu:g}", fontsize=10)
    fig.tight_layout()
    return fig
