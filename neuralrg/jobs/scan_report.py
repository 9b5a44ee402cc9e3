"""What a scan prints at the end, and ``neuralrg report SCAN_DIR``: one self-contained page
(the finite-size scaling, a table of every point and quantity with error bars, exact
values, pulls and verdicts, every figure embedded)."""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import Any

from neuralrg.jobs.runs import atomic_write_bytes
from neuralrg.jobs.scan_config import SCAN_JSON, ScanConfig

REPORT = "report.html"
SHOWN = (("free_energy_per_site", "f"), ("energy_per_site", "e"),
         ("heat_capacity_per_site", "c"), ("m2", "<m^2>"), ("binder", "U"))
STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}td,th{border:1px solid #ccc;
padding:2px 6px;text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #ddd}
.bad{color:#b00}.caption{color:#555;font-size:0.9em}"""


def _value(entry: dict[str, Any] | None, digits: int = 5) -> str:
    if not entry or entry.get("value") is None:
        return "-"
    text = f"{entry['value']:.{digits}f}±{entry['err']:.{digits}f}" if entry.get("err") \
        else f"{entry['value']:.{digits}f}"
    pull = "" if entry.get("pull") is None else f" ({entry['pull']:+.1f})"
    return text + pull + ("" if entry.get("reliable") else " !")


def fss_lines(result: dict[str, Any]) -> list[str]:
    """The finite-size scaling, each estimate with its error bar and the exact value."""
    fss, exact, p = result.get("finite_size") or {}, result.get("exact_critical"), \
        result["parameter"]
    beside = "" if exact is None else f"   (exact T_c = {exact:.6f})"
    lines = []
    for c in fss.get("binder_crossings", []):
        sizes = "/".join(str(L) for L in c["sizes"])
        if c["position"] is None or c["err"] is None:
            lines.append(f"Binder crossing L={sizes}: UNRELIABLE: {c['reason']}")
            continue
        verdict = "" if c["reliable"] else f"  UNRELIABLE: {c['reason']}"
        lines.append(f"Binder crossing L={sizes}: {p}_c = {c['position']:.5f} ± "
                     f"{c['err'] or 0:.5f}{beside}{verdict}")
    for k in fss.get("heat_capacity_peaks", []):
        L = k["sizes"][0]
        if k["position"] is None or k["height"] is None or k["err"] is None:
            lines.append(f"heat-capacity peak L={L}: UNRELIABLE: {k['reason']}")
            continue
        exact_peak = "" if k.get("exact_position") is None else \
            f"   (exact: {k['exact_position']:.5f}, c = {k['exact_height']:.5f})"
        verdict = "" if k["reliable"] else f"  UNRELIABLE: {k['reason']}"
        lines.append(f"heat-capacity peak L={L}: {p} = {k['position']:.5f} ± "
                     f"{k['err'] or 0:.5f}, c = {k['height']:.5f} ± {k['height_err'] or 0:.5f}"
                     f"{exact_peak}{verdict}")
    return lines


def point_rows(result: dict[str, Any]) -> list[list[str]]:
    """Per point: L, value, start, steps, gap, the main quantities (pull in brackets, '!'
    when unreliable) and the flags."""
    p, rows = result["parameter"], []
    for r in sorted(result["points"], key=lambda r: (r["L"], r[p])):
        q = r.get("quantities") or {}
        gap = "-" if r.get("gap") is None else f"{r['gap']:.3f}"
        rows.append([str(r["L"]), f"{r[p]:.5g}", r["start"], str(r.get("steps", "-")), gap,
                     *(_value(q.get(name)) for name, _ in SHOWN),
                     "; ".join(r["flags"]) or "ok"])
    return rows


HEADER = ["L", "{p}", "start", "steps", "gap", *(short for _, short in SHOWN), "flags"]


def format_scan(result: dict[str, Any]) -> str:
    """The terminal summary: every point (value±err (pull), '!' unreliable), then the
    finite-size scaling."""
    p = result["parameter"]
    header = [h.format(p=p) for h in HEADER]
    rows = point_rows(result)
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
             for row in [header, *rows]]
    flagged = sum(1 for r in result["points"] if r["flags"])
    lines.append(f"{len(result['points'])} points, {flagged} flagged; CPU "
                 f"{result['cpu_seconds'] / 60:.1f} min; status {result['status']}")
    return "\n".join(lines + pull_lines(result) + fss_lines(result))


def pull_lines(result: dict[str, Any]) -> list[str]:
    """Per quantity with exact values: how many reliable numbers, the largest |pull| among
    them and how many lie beyond 4 error bars; how many are flagged.

    >>> point = {"quantities": {"energy_per_site": {"pull": -1.5, "reliable": True},
    ...                         "m2": {"pull": 6.0, "reliable": False}}}
    >>> pull_lines({"points": [point]})
    ['energy_per_site: 1 reliable, largest |pull| 1.50, 0 beyond 4; 0 flagged', \
'm2: 0 reliable, largest |pull| -, 0 beyond 4; 1 flagged']
    """
    lines = []
    for name in ("free_energy_per_site", "energy_per_site", "heat_capacity_per_site", "m2",
                 "abs_m", "binder", "free_energy_integrated"):
        entries = [r["quantities"][name] for r in result["points"]
                   if name in (r.get("quantities") or {})]
        pulls = [abs(e["pull"]) for e in entries if e["reliable"] and e["pull"] is not None]
        if not entries or all(e["pull"] is None for e in entries):
            continue
        largest = f"{max(pulls):.2f}" if pulls else "-"
        lines.append(f"{name}: {len(pulls)} reliable, largest |pull| {largest}, "
                     f"{sum(p > 4 for p in pulls)} beyond 4; "
                     f"{sum(not e['reliable'] for e in entries)} flagged")
    return lines


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _quantity_rows(result: dict[str, Any]) -> list[list[str]]:
    p, rows = result["parameter"], []
    for r in sorted(result["points"], key=lambda r: (r["L"], r[p])):
        for name, e in (r.get("quantities") or {}).items():
            verdict = "reliable" if e["reliable"] else f"UNRELIABLE: {e['reason']}"
            rows.append([str(r["L"]), f"{r[p]:.6g}", name, _value(e, 6),
                         "-" if e.get("exact") is None else f"{e['exact']:.6f}", verdict])
    return rows


def render_scan_html(result: dict[str, Any], name: str) -> str:
    """The page; the figures are read from the scan directory and embedded."""
    scan, p = ScanConfig.from_dict(result["config"]), result["parameter"]
    parts = [f"<h1>NeuralRG scan: {_e(name)}</h1>",
             f"<p>Generated {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}. Target "
             f"{_e(scan.run.target.name)}, L = {_e(', '.join(map(str, scan.sizes)))}, "
             f"{len(scan.values)} values of {_e(p)} from {min(scan.values):g} to "
             f"{max(scan.values):g}; status {_e(result['status'])}, CPU "
             f"{result['cpu_seconds'] / 60:.1f} min.</p>",
             "<h2>Finite-size scaling</h2>",
             "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in fss_lines(result)) + "</ul>",
             "<h2>Points</h2><p class='caption'>value±error (pull against the exact value); "
             "'!' marks an unreliable number. The gap is ln Z - the variational bound.</p>",
             _table([h.format(p=p) for h in HEADER], point_rows(result))]
    for key, relative in (result.get("figures") or {}).items():
        parts += [f"<h2>{_e(key.replace('_', ' ').capitalize())}</h2>",
                  _image(Path(name) / relative)]
    parts += ["<h2>Every number</h2>",
              _table(["L", p, "quantity", "value±err (pull)", "exact", "verdict"],
                     _quantity_rows(result)),
              "<h2>Configuration</h2>", f"<pre>{_e(json.dumps(result['config'], indent=1))}"
                                        "</pre>"]
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>NeuralRG scan: {_e(name)}</title><style>{STYLE}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def _image(path: Path) -> str:
    if not path.exists():
        return f"<p class='bad'>missing figure {_e(path.name)}</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{_e(path.stem)}' src='data:image/png;base64,{data}'>"


def is_scan_dir(path: str | Path) -> bool:
    return (Path(path) / SCAN_JSON).exists()


def write_scan_report(scan_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the scan's page (default ``SCAN_DIR/report.html``) and return its path; a scan
    that has not completed is summarised from the points it has."""
    from neuralrg.jobs.scan import refresh_scan

    result = json.loads((Path(scan_dir) / SCAN_JSON).read_text())
    if result.get("status") != "completed":  # killed or still running: as the points stand
        result = refresh_scan(scan_dir)
    page = render_scan_html(result, str(scan_dir))
    path = Path(out) if out is not None else Path(scan_dir) / REPORT
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
