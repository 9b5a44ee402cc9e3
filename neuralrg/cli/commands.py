"""``neuralrg sample``, ``exact``, ``analyze``, ``report`` and ``mnist``: flags and wiring."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from neuralrg import distributed
from neuralrg.cli.common import (
    DEVICE_HELP,
    FLAGS,
    NAME_TARGET_HELP,
    add_config_flags,
    add_sample_flags,
    check_device,
    run_on_ranks,
    sample_config_from,
    split_control_flags,
)
from neuralrg.exact import MAX_MOMENT_L, MAX_RING_L
from neuralrg.jobs.config import DTYPES
from neuralrg.jobs.runs import RunDirectory
from neuralrg.measure.table import format_measurement


def add_sample_parser(commands) -> None:
    sample = commands.add_parser("sample", help="exact sampling from a trained run, with a "
                                                "verdict per number")
    add = sample.add_argument
    add("run_dir", metavar="RUN_DIR", help="a trained run directory")
    add_sample_flags(sample)
    add("--device", help=DEVICE_HELP)
    add("--target", help=NAME_TARGET_HELP)
    add("--tag", help="name the samples file samples-<method>-TAG.h5 (default: the first free "
                      "of samples-<method>.h5, samples-<method>-2.h5, ...)")
    add("--out", metavar="FILE.h5", help="write the samples to FILE.h5 (and FILE.json) instead "
                                         "of the run directory; its folder must exist")
    add("--force", action="store_true",
        help="replace the named samples file (--out, --tag, or else samples-<method>.h5)")


def run_sample(args: argparse.Namespace) -> int:
    from neuralrg.jobs import load_model, sample_job
    from neuralrg.jobs.sample import samples_file

    config = sample_config_from(vars(args))
    check_device(args.device)
    RunDirectory(args.run_dir).read_config()
    if samples_file(args.run_dir, config.method, args.out, args.tag, args.force) is None:
        print(f"neuralrg sample: note: {_NOT_SAVED.format(args.run_dir)}; the table will be "
              "printed", file=sys.stderr)
    info = distributed.init_from_env(args.device or "cpu")
    device = str(info.device) if info.world_size > 1 else args.device
    completed = False
    try:
        model, run = load_model(args.run_dir, device, target=args.target)
        summary = sample_job(model, run.path, config, args.out, args.tag, args.force)
        completed = True
    finally:
        distributed.shutdown(completed)
    if not summary:
        return 0
    taus = "   ".join(f"{k}: {v:.3g}" for k, v in summary.items()
                       if k.startswith("tau_int") and v is not None)
    print(format_measurement(summary))
    if taus:
        print(taus)
    print(_written(summary["samples_file"], run.path, args.out))
    return 0


_NOT_SAVED = ("run directory {} is not writable, so the samples are not saved (give --out "
              "FILE.h5 to save them elsewhere)")


def _written(name: str | None, run_dir: Path, out: str | None) -> str:
    if name is None:
        return f"samples: not saved: {_NOT_SAVED.format(run_dir)}"
    path = Path(out) if out is not None else run_dir / name
    return f"samples: {path} and {path.with_suffix('.json')}"


MAX_EXACT_L = 10**6  # Kaufman's products cost O(L) memory
MAX_RELAXED_SITES = 2**26  # the relaxed model's ln det runs over all L^d modes
_MOMENT_REACH = (f"the exact transfer matrix reaches L <= {MAX_MOMENT_L} in 2D and "
                 f"L <= {MAX_RING_L} in 1D")


def run_exact(args: argparse.Namespace) -> int:
    from neuralrg.exact import exact_ising, magnetisation_moments, moments_within_reach
    from neuralrg.targets.ising import RelaxedIsing

    if isinstance(args.L, int) and args.L > MAX_EXACT_L:
        raise ValueError(f"L={args.L} is too large for the exact solution here; allowed: "
                         f"2 <= L <= {MAX_EXACT_L}")
    result = exact_ising(args.L, args.T, args.d)
    relaxed = None
    if args.L**args.d <= MAX_RELAXED_SITES:
        relaxed = result.ln_z - RelaxedIsing(args.L, args.T, args.d).ln_z_shift
    payload = {
        "L": args.L, "T": args.T, "d": args.d,
        "ln_z": result.ln_z,
        "free_energy_per_site": result.free_energy_per_site,
        "energy_per_site": result.energy_per_site,
        "heat_capacity_per_site": result.heat_capacity_per_site,
        "ln_z_relaxed": relaxed,
        "m2": None, "abs_m": None, "m4": None, "binder": None,
    }
    if moments_within_reach(args.L, args.d):
        moments = magnetisation_moments(args.L, args.T, args.d)
        payload.update(m2=moments.m2, abs_m=moments.m_abs, m4=moments.m4, binder=moments.binder)
    else:
        payload["note"] = (f"magnetisation moments are out of reach for L={args.L} in "
                           f"d={args.d}: {_MOMENT_REACH}")
        print(f"neuralrg exact: note: {payload['note']}", file=sys.stderr)
    if args.json:
        print(json.dumps(payload))
    else:
        for key, value in payload.items():
            print(f"{key:24s} {value}")
    return 0


def add_analysis_parsers(commands) -> None:
    analyze = commands.add_parser("analyze", help="RG-microscope figures of a trained run")
    report = commands.add_parser("report", help="write a self-contained report.html of a run "
                                                "or of a scan directory")
    for sub in (analyze, report):
        sub.add_argument("run_dir", metavar="RUN_DIR", help="a trained run directory")
        sub.add_argument("--samples", type=int, default=2000,
                         help="Metropolis samples for the statistics (default: 2000)")
        sub.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
        sub.add_argument("--device", help=DEVICE_HELP)
        sub.add_argument("--target", help=NAME_TARGET_HELP)
        sub.add_argument("--no-progress", action="store_true", help="hide the progress lines")
    analyze.add_argument("--out", help="output folder (default: RUN_DIR/analysis)")
    report.add_argument("--out", help="output file (default: RUN_DIR/report.html)")


def run_analyze(args: argparse.Namespace) -> int:
    from neuralrg.jobs.analyze import ANALYSIS_DIR, analyze_run, validate_analysis_args
    from neuralrg.jobs.report import format_analysis

    validate_analysis_args(args.samples, args.seed)
    check_device(args.device)
    manifest = analyze_run(args.run_dir, args.out, args.samples, args.seed, args.device,
                           target=args.target, progress=not args.no_progress)
    folder = Path(args.out) if args.out is not None else Path(args.run_dir) / ANALYSIS_DIR
    print(format_analysis(manifest, folder))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from neuralrg.jobs.analyze import validate_analysis_args
    from neuralrg.jobs.report import write_report
    from neuralrg.jobs.scan_report import is_scan_dir, write_scan_report

    if is_scan_dir(args.run_dir):  # a scan directory: the scan's page
        print(f"report: {write_scan_report(args.run_dir, args.out)}")
        return 0
    validate_analysis_args(args.samples, args.seed)
    check_device(args.device)
    path = write_report(args.run_dir, args.out, args.samples, args.seed, args.device,
                        target=args.target, progress=not args.no_progress)
    print(f"report: {path}")
    return 0




def add_mnist_parser(commands) -> None:
    mnist = commands.add_parser(
        "mnist", argument_default=argparse.SUPPRESS,
        help="train the MERA-like NeuralRG on images (MNIST) by maximum likelihood",
    )
    add = mnist.add_argument
    from neuralrg.jobs.mnist import MnistConfig

    defaults = MnistConfig()
    add_config_flags(mnist, defaults, FLAGS)
    add_config_flags(mnist, defaults.flow, FLAGS)
    add("--no-positional", action="store_true", help="translation-invariant blocks")
    add_config_flags(mnist, defaults.train, FLAGS)
    add("--dtype", choices=list(DTYPES), help="float32 (default) or float64")
    add("--device", help="cpu (default), cuda or cuda:N; never falls back silently")
    add("--run-dir", help="run directory (default: runs/mnist-<time>)")
    add("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    add("--force", action="store_true", help="overwrite an existing run directory")
    add("--no-progress", action="store_true", help="hide the progress bar")


def run_mnist(args: argparse.Namespace) -> int:
    from neuralrg.jobs import mnist as job
    from neuralrg.jobs.config import in_config_file

    flags, control = split_control_flags(args)
    if control["resume"]:
        run = RunDirectory(control["resume"])
        data = run.read_config()
        with in_config_file(run):
            config = job.MnistConfig.from_dict(data)
            job.validate_mnist_config(config)
    else:
        config = job.mnist_config_from_flags(flags)
        job.validate_mnist_config(config)
    run_dir = control["resume"] or control["run_dir"] or job.default_mnist_run_dir()
    RunDirectory(run_dir).check_start(bool(control["resume"]), bool(control["force"]))

    def work(device: str) -> dict:
        return job.mnist_job(replace(config, device=device), run_dir,
                             resume=bool(control["resume"]), force=bool(control["force"]),
                             progress=not control["no_progress"])

    summary = run_on_ranks(config.device, run_dir, work,
                           lambda: job.format_mnist_summary(RunDirectory(run_dir).read_summary()))
    return 0 if summary["stopped_reason"] == "completed" else 1
