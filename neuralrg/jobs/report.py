"""``neuralrg report``: one self-contained ``report.html`` for a run (configuration, summary
table with error bars, every RG-microscope figure embedded as base64 PNG), and the terminal
summary printed by ``neuralrg analyze``."""

from __future__ import annotations

import base64
import html
import math
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neuralrg.estimators import PARETO_K_RELIABLE
from neuralrg.jobs.analyze import (
    ANALYSIS_DIR,
    MANIFEST,
    analyze_run,
    coverage_headline,
    validate_analysis_args,
)
from neuralrg.jobs.config import load_run_config
from neuralrg.jobs.runs import (
    CHECKPOINT,
    SUMMARY,
    RunDirectory,
    atomic_write_bytes,
    read_json_object,
)
from neuralrg.jobs.runs import writable as can_write
from neuralrg.measure.table import DERIVED_LABELS, relaxed_label

REPORT = "report.html"
FIGURE_ORDER = ["scales_generated", "scales_encoded", "samples", "receptive_fields",
                "receptive_extent", "mutual_information", "renormalized_energy", "training"]
STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #ddd}
.caption{color:#555;font-size:0.9em}"""


def format_analysis(manifest: dict[str, Any], folder: Path) -> str:
    """The files ``neuralrg analyze`` wrote in ``folder`` and its headline numbers, for the
    terminal."""
    numbers, mi = manifest["numbers"], manifest["numbers"]["mutual_information"]
    lines = [f"{name:20s} {folder / fig['png']}  (data: {fig['data']})"
             for name, fig in manifest["figures"].items()]
    lines.append(f"manifest: {folder / MANIFEST}")
    lines.append(f"acceptance: {numbers['acceptance']:.3f}")
    lines.append(f"mean off-diagonal mutual information (nats): latents {mi['latent_mean']:.3e}, "
                 f"physical {mi['physical_mean']:.3e} (ratio {_ratio(mi)})")
    radii = ", ".join(f"{e['scale']}: {e['rms_radius']:.2f}"
                      for e in numbers["receptive_field_rms_radius"])
    lines.append(f"receptive-field RMS radius (lattice spacings): {radii}")
    if "coverage" in numbers:
        lines.append(coverage_headline(numbers["coverage"]))
    return "\n".join(lines)


def _ratio(mi: dict[str, Any]) -> str:
    if mi["latent_mean"] <= 0:
        return "latent mean <= 0"
    return f"{mi['physical_mean'] / mi['latent_mean']:.1f}x"


@contextmanager
def current_analysis(run: RunDirectory, samples: int, seed: int, device: str | None = None,
                     target: str | None = None,
                     progress: bool = True) -> Iterator[tuple[dict[str, Any], Path]]:
    """The run's analysis manifest and its folder, for the block: the one in the run's
    analysis folder, recomputed there if it is missing, older than the checkpoint, made with
    other settings or missing a file; in a temporary folder if the run directory cannot be
    written. The manifest's file names are relative to the folder."""
    folder = run.file(ANALYSIS_DIR)
    manifest = _usable_manifest(folder, run, samples, seed)
    if manifest is not None:
        yield manifest, folder
    elif can_write(run.path):
        yield analyze_run(run.path, folder, samples, seed, device, target, progress), folder
    else:
        with tempfile.TemporaryDirectory() as temporary:
            yield (analyze_run(run.path, temporary, samples, seed, device, target, progress),
                   Path(temporary))


def _usable_manifest(folder: Path, run: RunDirectory, samples: int,
                     seed: int) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if not path.exists() or path.stat().st_mtime < run.file(CHECKPOINT).stat().st_mtime:
        return None
    try:
        manifest = read_json_object(path)
        names = [_local(folder, f[k]) for f in manifest["figures"].values()
                 for k in ("png", "data")]
        settings = (manifest["samples"], manifest["seed"])
    except (ValueError, KeyError, TypeError, AttributeError):  # damaged: make it again
        return None
    return manifest if settings == (samples, seed) and all(f.exists() for f in names) else None


def _local(folder: Path, name: str) -> Path:
    """A manifest's file in ``folder``: its name there (a manifest written before names were
    relative holds absolute paths, which a copied directory must not follow)."""
    return folder / Path(name).name


def write_report(run_dir: str | Path, out: str | Path | None = None, samples: int = 2000,
                 seed: int = 0, device: str | None = None, target: str | None = None,
                 progress: bool = True) -> Path:
    """Write ``report.html`` (default: in the run directory) and return its path; ``target``
    names a run's user target (see :func:`neuralrg.jobs.config.check_user_target`). A run
    directory that cannot be written still gets its report written elsewhere (``out``), its
    analysis then made in a temporary folder if it is not current."""
    validate_analysis_args(samples, seed)
    run = RunDirectory(run_dir)
    load_run_config(run, target)
    if not run.has_checkpoint():
        raise ValueError(f"run directory {run.path} holds no checkpoint ({CHECKPOINT})")
    path = run.destination(out, REPORT, "the report")
    summary = run.read_summary() if run.file(SUMMARY).exists() else {}
    with run.writing_to(path), current_analysis(run, samples, seed, device, target,
                                                progress) as (manifest, folder):
        page = render_html(run.read_config(), summary, manifest, str(run.path), folder)
        atomic_write_bytes(path, page.encode("utf-8"))
    return path



def render_html(config: dict, summary: dict, manifest: dict, name: str, folder: Path) -> str:
    """The report page, with the figures of ``manifest`` (in ``folder``) embedded, so that it
    needs no other file."""
    summary_rows = _summary_rows(summary, manifest)
    parts = [f"<h1>NeuralRG run report: {_e(name)}</h1>",
             f"<p>Generated {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>",
             "<h2>Summary</h2>", _table(["quantity", "value", "exact / ideal", "verdict"],
                                        summary_rows),
             "<h2>What the network learned</h2>",
             _table(["quantity", "value"], _analysis_rows(manifest["numbers"])),
             "<h2>Configuration</h2>", _table(["field", "value"], _flatten(config))]
    figures = manifest["figures"]
    for key in sorted(figures, key=lambda k: FIGURE_ORDER.index(k) if k in FIGURE_ORDER else 99):
        parts += [f"<h2>{_e(key.replace('_', ' ').capitalize())}</h2>",
                  _image(_local(folder, figures[key]["png"])),
                  f"<p class='caption'>{_e(figures[key]['caption'])} Numbers: "
                  f"<code>{_e(Path(figures[key]['data']).name)}</code>.</p>"]
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>NeuralRG report: {_e(name)}</title><style>{STYLE}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{_e(Path(path).stem)}' src='data:image/png;base64,{data}'>"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: Any, err: Any = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    if not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.6g}" if err is None else f"{value:.6g} ± {err:.2g}"


def _verdict(entry: dict) -> str:
    if "reliable" not in entry:
        return "no verdict"
    return "reliable" if entry["reliable"] else f"UNRELIABLE: {entry.get('reason')}"


def _summary_rows(summary: dict, manifest: dict) -> list[list[str]]:
    s, numbers = summary, manifest["numbers"]
    kind = relaxed_label(s)
    bound = "lower bound" + ("" if s.get("ln_z_bound_consistent") is not False else
                             ", INCONSISTENT with the exact value")
    rows = [[f"ln Z variational bound{kind}", _number(s.get("ln_z_bound"),
                                                        s.get("ln_z_bound_err")),
             _number(s.get("ln_z_exact")), bound],
            [f"ln Z importance-sampled{kind}", _number(s.get("ln_z_is"), s.get("ln_z_is_err")),
             _number(s.get("ln_z_exact")),
             _verdict({"reliable": s.get("ln_z_is_reliable"), "reason": s.get("ln_z_is_reason")})
             if "ln_z_is_reliable" in s else "no verdict"]]
    if "ln_z" in s:
        rows.append([f"ln Z, best estimate{kind} ({s['ln_z'].get('estimator')})",
                     _number(s["ln_z"]["value"], s["ln_z"]["err"]),
                     _number(s.get("ln_z_exact")), _verdict(s["ln_z"])])
    for key, label in DERIVED_LABELS.items():
        if key in s:
            rows.append([label, _number(s[key]["value"], s[key]["err"]),
                         _number(s[key]["exact"]), _verdict(s[key])])
    rows += [["relative gap (ln Z - bound) / |ln Z|", _number(s.get("relative_gap")), "0", ""],
             ["ESS per sample", _number(s.get("ess_per_sample")), "1", ""],
             [f"Pareto k of the importance weights (reliable below {PARETO_K_RELIABLE})",
              _number(s.get("pareto_k")), "< 0.5 ideal", ""],
             ["flow-Metropolis acceptance (training summary)", _number(s.get("acceptance")),
              "1", s.get("method", "")],
             ["Metropolis acceptance (this analysis)", _number(numbers.get("acceptance")), "1",
              ""]]
    observables = s.get("observables") or {}
    source = "" if observables else " (this analysis)"
    for key, entry in (observables or numbers.get("observables", {})).items():
        rows.append([key + source, _number(entry.get("value"), entry.get("err")),
                     _number(entry.get("exact")), _verdict(entry)])
    return rows


def _analysis_rows(numbers: dict) -> list[list[str]]:
    mi = numbers["mutual_information"]
    rows = [["mean off-diagonal MI, latents (same scale, pooled)",
             f"{mi['latent_mean']:.3e} nats"],
            ["mean off-diagonal MI, physical variables", f"{mi['physical_mean']:.3e} nats"],
            ["ratio physical / latent", _ratio(mi)]]
    if "physical_mean_both_sectors" in mi:
        rows.append(["mean off-diagonal MI, physical, with the global Z2 sign",
                     f"{mi['physical_mean_both_sectors']:.3e} nats"])
    rows += [[f"receptive-field RMS radius, {e['scale']}", f"{e['rms_radius']:.3f} lattice "
              "spacings"] for e in numbers["receptive_field_rms_radius"]]
    energy = numbers["renormalized_energy"]
    rows.append(["mean of E_eff - C - |z|²/2 over z ~ N(0, I)",
                 f"{energy['mean_excess']:.4f} k_B T ({energy['constant_note']})"])
    return rows


def _flatten(config: dict, prefix: str = "") -> list[list[str]]:
    rows = []
    for key, value in config.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", str(value)])
    return rows
