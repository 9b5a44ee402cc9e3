"""``neuralrg scan``: its flags, the scan configuration they describe, and the scan."""

from __future__ import annotations

import argparse
import os
import time

from neuralrg.cli.train import _model_flags, _train_flags, config_from_flags
from neuralrg.jobs.scan_config import (
    SCAN_FLOW,
    SCAN_STEPS,
    ScanConfig,
    read_scan_config,
    scan_parameter,
    validate_scan_config,
)
from neuralrg.scaling.grid import parse_grid
from neuralrg.targets import option_defaults, target_class
from neuralrg.validation import check_int

GRID_FLAGS = ("T", "kappa")  # options with flags of their own that may hold a grid
SCAN_FLAGS = ("param", "values", "start", "warm_fraction", "grow_fraction", "warm_lr_factor",
              "no_warm", "no_grow", "resamples", "nu", "beta_nu", "gamma_nu", "critical")
CONTROL = ("scan_dir", "resume", "force", "no_progress", "jobs")
DEFAULT_JOBS = min(2, os.cpu_count() or 1)


def add_scan_parser(commands) -> None:
    scan = commands.add_parser(
        "scan", argument_default=argparse.SUPPRESS, conflict_handler="resolve",
        help="train and measure one run per (L, T) of a grid, each from a trained neighbour; "
             "curves, free-energy cross-checks and finite-size scaling")
    _model_flags(scan)
    _train_flags(scan)
    add = scan.add_argument
    add("--L", type=int, nargs="+", help="lattice sizes, e.g. --L 8 16 (default: 8)")
    add("--T", nargs="+", metavar="GRID",
        help="the temperature grid: start:stop:count (inclusive), values, or both; 'Tc' "
             "allowed (a single value when the scan varies another option)")
    add("--kappa", nargs="+", metavar="GRID",
        help="phi^4 hopping parameter: its grid when the scan varies kappa, else one value")
    add("--param", help="the target option the scan varies (default: the target's own, T for "
                        "ising, kappa for phi4)")
    add("--values", nargs="+", metavar="GRID", help="the grid of --param (instead of --T)")
    add("--start", help="where the lanes start (the grid value nearest it; default: Tc for a 2D "
                        "temperature scan, else the middle of the grid)")
    for name in ("hidden_s", "hidden_t", "mlp_depth"):
        flag = "--" + name.replace("_", "-")
        add(flag, type=int, help=f"{name.replace('_', ' ')} of the networks (scan default: "
                                 f"{getattr(SCAN_FLOW, name)}, one architecture for every L)")
    add("--steps", type=int, help=f"training steps of a point from scratch (default: "
                                  f"{SCAN_STEPS})")
    add("--minutes", type=float, help="training wall-time budget of a point from scratch")
    add("--warm-fraction", type=float,
        help="share of the steps and minutes for a point warm-started from its neighbour "
             "(default: 0.2)")
    add("--grow-fraction", type=float,
        help="share of the steps and minutes for the first point of a size, grown from L/2 "
             "(default: 0.5)")
    add("--warm-lr-factor", type=float,
        help="learning rate of a warm-started point relative to --lr (default: 1/3)")
    add("--no-warm", action="store_true", help="train every point from scratch")
    add("--no-grow", action="store_true", help="no lattice growth from L/2")
    add("--jobs", type=int, help=f"points trained side by side, one thread each (default: "
                                 f"{DEFAULT_JOBS})")
    add("--resamples", type=int, help="bootstrap resamples of the crossings and peaks "
                                      "(default: 1000)")
    add("--nu", type=float, help="data collapse: nu (default: 1, the 2D Ising value)")
    add("--beta-nu", type=float, help="data collapse: beta/nu (default: 1/8)")
    add("--gamma-nu", type=float, help="data collapse: gamma/nu (default: 7/4)")
    add("--critical", help="data collapse: T_c (default: the exact 2D Ising T_c, else the "
                           "Binder crossing)")
    add("--scan-dir", help="scan directory (default: runs/scan-<target>-L<sizes>-<time>)")
    add("--resume", metavar="SCAN_DIR", help="continue the scan in SCAN_DIR")
    add("--force", action="store_true", help="start the scan in an existing directory again")
    add("--no-progress", action="store_true", help="hide the training progress bars")


def _single(name: str, given: list[str], param: str) -> float:
    if len(given) != 1:
        raise ValueError(f"--{name} takes one value when the scan varies {param}; got "
                         f"{' '.join(given)}")
    return parse_grid(given, name)[0]


def _grid(flags: dict, param: str) -> tuple[float, ...]:
    """Take the grid flags out of ``flags``: the scan's grid, and fixed values of the other
    grid flags (put back as single values)."""
    text = flags.pop("values", None)
    for name in GRID_FLAGS:
        if name in flags:
            given = flags.pop(name)
            if name == param and text is None:
                text = given
            else:
                flags[name] = _single(name, given, param)
    if text is None:
        where = f"--{param}" if param in GRID_FLAGS else f"--param {param} --values"
        raise ValueError(f"no {param} grid given: {where} start:stop:count (or values)")
    return parse_grid(text, param)


def _number(name: str, text: str, param: str) -> float:
    """A single value of the scan parameter (``Tc`` allowed for a temperature)."""
    return parse_grid([text], name, temperature=param == "T")[0]


def scan_config_from_flags(flags: dict) -> ScanConfig:
    """The scan the flags describe: the template run from the model and training flags (the
    scan's defaults where none is given), sizes, grid and the scan's own settings."""
    flags = dict(flags)
    sizes = tuple(flags.pop("L", [8]))
    target = flags.get("target", "ising")
    param = flags.get("param") or scan_parameter(target)
    if param not in option_defaults(target_class(target)):
        raise ValueError(f"param={param!r} is not an option of target {target!r}; its options: "
                         f"{', '.join(option_defaults(target_class(target))) or 'none'}")
    values = _grid(flags, param)
    own = {k: flags.pop(k) for k in SCAN_FLAGS if k in flags}
    for name in ("hidden_s", "hidden_t", "mlp_depth"):
        flags.setdefault(name, getattr(SCAN_FLOW, name))
    if "steps" not in flags and "minutes" not in flags:
        flags["steps"] = SCAN_STEPS
    run = config_from_flags({**flags, "L": min(sizes)})
    settings = {k: own[k] for k in ("warm_fraction", "grow_fraction", "warm_lr_factor",
                                    "resamples", "nu", "beta_nu", "gamma_nu") if k in own}
    for name in ("start", "critical"):
        if name in own:
            settings[name] = _number(name, own[name], param)
    return ScanConfig(run=run, sizes=sizes, values=values, parameter=own.get("param"),
                      warm=not own.get("no_warm", False), grow=not own.get("no_grow", False),
                      **settings)


def default_scan_dir(scan: ScanConfig) -> str:
    sizes = "-".join(str(L) for L in sorted(scan.sizes))
    name = scan.run.target.name.rpartition(":")[2]
    return f"runs/scan-{name}-L{sizes}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_scan(args: argparse.Namespace) -> int:
    from neuralrg.jobs.scan import scan_job
    from neuralrg.jobs.scan_report import format_scan

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "threads")}
    control = {k: flags.pop(k, None) for k in CONTROL}
    if control["resume"]:
        if flags:
            raise ValueError("--resume takes the configuration from its scan directory; drop "
                             + ", ".join("--" + k.replace("_", "-") for k in flags))
        scan = read_scan_config(control["resume"])
    else:
        scan = scan_config_from_flags(flags)
    jobs = check_int("jobs", DEFAULT_JOBS if control["jobs"] is None else control["jobs"], 1, 64)
    validate_scan_config(scan)
    scan_dir = control["resume"] or control["scan_dir"] or default_scan_dir(scan)
    print(f"scan directory: {scan_dir} ({len(scan.sizes) * len(scan.values)} points, "
          f"{jobs} at a time)", flush=True)
    result = scan_job(scan, scan_dir, resume=bool(control["resume"]),
                      force=bool(control["force"]), jobs=jobs,
                      progress=not control["no_progress"])
    print(format_scan(result))
    return 0 if result["status"] == "completed" else 1
