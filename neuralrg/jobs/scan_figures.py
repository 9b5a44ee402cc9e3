"""The figures of a scan directory (``SCAN_DIR/figures/*.png``): every measured quantity
against the scan parameter per size with the exact curves of the Ising model (Kaufman's
f, e, c at any L, the magnetisation moments of small lattices), the Binder crossings and
heat-capacity peaks marked, and the data collapse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neuralrg.exact import T_CRITICAL_2D
from neuralrg.jobs.runs import save_figure
from neuralrg.jobs.scan_config import FIGURES, ScanConfig
from neuralrg.jobs.scan_results import INTEGRATED, curves
from neuralrg.scaling.exact_lines import exact_lines
from neuralrg.scaling.figures import plot_collapse, plot_quantity
from neuralrg.scaling.fss import Exponents, Located

FIGURE_NAMES = {"free_energy_per_site": "free_energy", "energy_per_site": "energy",
                "heat_capacity_per_site": "heat_capacity", "m2": "m2", "abs_m": "abs_m",
                "binder": "binder"}


def is_ising_temperature_scan(scan: ScanConfig) -> bool:
    """The built-in Ising model scanned in T with J = 1: Kaufman's curves apply."""
    options = scan.run.target.options
    return (scan.run.target.name == "ising" and scan.param == "T"
            and options.get("J", 1.0) == 1.0)


def exact_critical(scan: ScanConfig) -> float | None:
    """The exact critical point where the product knows it: the 2D Ising model's T_c."""
    return T_CRITICAL_2D if is_ising_temperature_scan(scan) and scan.run.target.d == 2 else None


def _as_located(data: dict[str, Any]) -> Located:
    return Located(tuple(data["sizes"]), data["position"], data["err"], data.get("height"),
                   data.get("height_err"), None, data["found_fraction"], data["reliable"],
                   data["reason"])


def collapse_critical(scan: ScanConfig, fss: dict[str, Any]) -> float | None:
    """T_c of the data collapse: the configured one, the exact one, else the first reliable
    Binder crossing."""
    if scan.critical is not None:
        return scan.critical
    exact = exact_critical(scan)
    if exact is not None:
        return exact
    crossings = [c for c in fss.get("binder_crossings", []) if c["reliable"]]
    return crossings[0]["position"] if crossings else None


def write_figures(scan_dir: str | Path, scan: ScanConfig, records: list[dict[str, Any]],
                  fss: dict[str, Any]) -> dict[str, str]:
    """Draw and save every figure; name -> path relative to the scan directory."""
    folder = Path(scan_dir) / FIGURES
    folder.mkdir(parents=True, exist_ok=True)
    parameter, written = scan.param, {}
    lines = {}
    if is_ising_temperature_scan(scan):
        lo, hi = min(scan.values), max(scan.values)
        pad = 0.02 * (hi - lo)
        lines = {L: exact_lines(L, lo - pad, hi + pad, scan.run.target.d) for L in scan.sizes}
    marks = {"binder": ([_as_located(c) for c in fss.get("binder_crossings", [])], "crossing"),
             "heat_capacity_per_site": ([_as_located(p) for p in fss.get("heat_capacity_peaks",
                                                                         [])], "peak")}
    for quantity, name in FIGURE_NAMES.items():
        found = curves(records, quantity, parameter)
        if not found:
            continue
        second = curves(records, INTEGRATED, parameter) if quantity == "free_energy_per_site" \
            else []
        found_marks, label = marks.get(quantity, ([], ""))
        figure = plot_quantity(quantity, found, lines, parameter, second, found_marks, label,
                               exact_critical(scan) if quantity == "binder" else None)
        written[name] = _save(figure, folder, name, scan_dir)
    critical = collapse_critical(scan, fss)
    collapsing = {q: curves(records, q, parameter) for q in ("binder", "m2", "abs_m")}
    if critical is not None and any(collapsing.values()) and parameter == "T":
        exponents = Exponents(scan.nu, scan.beta_nu, scan.gamma_nu)
        written["collapse"] = _save(plot_collapse(collapsing, critical, exponents), folder,
                                    "collapse", scan_dir)
    return written


def _save(figure, folder: Path, name: str, scan_dir: str | Path) -> str:
    path = save_figure(figure, folder / f"{name}.png")
    return str(path.relative_to(Path(scan_dir)))
