"""``neuralrg sample``, ``exact``, ``analyze``, ``report`` and ``mnist``: flags and wiring."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from neuralrg import distributed
from neuralrg.cli.common import (
    DEVICE_HELP,
    NAME_TARGET_HELP,
    check_device,
    run_on_ranks,
    split_control_flags,
)
from neuralrg.exact import MAX_MOMENT_L, MAX_RING_L
from neuralrg.jobs.config import DTYPES
from neuralrg.jobs.table import format_measurement
from neuralrg.sampling import FLAG_NAMES, METHODS, SampleConfig

SAMPLE_FLAGS = {  # SampleConfig field: (type, help; the default is appended)
    "chains": (int, "parallel chains"), "therm": (int, "burn-in steps"),
    "steps": (int, "recorded steps"), "skip": (int, "steps skipped between records"),
    "step_size": (float, "HMC leapfrog step size"),
    "n_leapfrog": (int, "HMC leapfrog steps per trajectory"),
    "local": (str, "hybrid: the local move, exact (the target's exact equilibrium move), hmc, "
                   "or auto (exact where the target has one)"),
    "local_moves": (int, "hybrid: local HMC moves in x per flow step"),
    "local_step_size": (float, "hybrid: step size of the local moves"),
    "local_leapfrog": (int, "hybrid: leapfrog steps per local move"),
    "spread": (float, "width of the starting latents over the prior's"),
    "importance_samples": (int, "flow samples for importance sampling"),
    "ti_nodes": (int, "thermodynamic integration of ln Z over this many Gauss-Legendre nodes "
                      "(targets with a thermodynamic path, e.g. Ising; 0: off)"),
    "ti_steps": (int, "thermodynamic integration: recorded moves of each node's 8 chains"),
    "smc_particles": (int, "annealed SMC from the flow beside the chains with this many "
                           "particles (0: off; --method smc: instead of chains, 256 if 0)"),
    "smc_repeats": (int, "SMC runs on each of two ladders (the second twice as fine)"),
    "smc_hmc_moves": (int, "SMC: HMC trajectories per rung (besides one flow proposal)"),
    "smc_step_size": (float, "SMC: HMC leapfrog step size"),
    "seed": (int, "random seed"),
}


def add_sample_parser(commands) -> None:
    sample = commands.add_parser("sample", help="exact sampling from a trained run, with a "
                                                "verdict per number")
    add, d = sample.add_argument, SampleConfig()
    add("run_dir", metavar="RUN_DIR", help="a trained run directory")
    add("--method", choices=METHODS, default=d.method,
        help="exact: chains of the target's exact equilibrium moves (Ising: cluster moves); "
             "hybrid: flow proposals with local moves in x; mh: flow-proposal Metropolis; "
             "hmc-latent / hmc-physical: HMC; smc: annealed SMC from the flow; auto: exact "
             f"where the target has exact moves, else hybrid (default: {d.method})")
    for name, (kind, text) in SAMPLE_FLAGS.items():
        flag = "--" + FLAG_NAMES.get(name, name.replace("_", "-"))
        add(flag, type=kind, default=getattr(d, name), dest=name,
            metavar=flag[2:].upper().replace("-", "_"),
            help=f"{text} (default: {getattr(d, name)})")
    add("--device", help=DEVICE_HELP)
    add("--target", help=NAME_TARGET_HELP)


def run_sample(args: argparse.Namespace) -> int:
    from neuralrg.jobs import load_model, sample_job
    from neuralrg.sampling import validate_sample_config

    config = SampleConfig(args.method, **{name: getattr(args, name) for name in SAMPLE_FLAGS})
    validate_sample_config(config)
    check_device(args.device)
    info = distributed.init_from_env(args.device or "cpu")
    device = str(info.device) if info.world_size > 1 else args.device
    completed = False
    try:
        model, run = load_model(args.run_dir, device, target=args.target)
        summary = sample_job(model, run.path, config)
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
    method = summary["method"]
    print(f"samples: {run.path / f'samples-{method}.h5'}")
    return 0


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
    analyze.add_argument("--out", help="output folder (default: RUN_DIR/analysis)")
    report.add_argument("--out", help="output file (default: RUN_DIR/report.html)")


def run_analyze(args: argparse.Namespace) -> int:
    from neuralrg.jobs.analyze import analyze_run, validate_analysis_args
    from neuralrg.jobs.report import format_analysis

    validate_analysis_args(args.samples, args.seed)
    check_device(args.device)
    manifest = analyze_run(args.run_dir, args.out, args.samples, args.seed, args.device,
                           target=args.target)
    print(format_analysis(manifest))
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
                        target=args.target)
    print(f"report: {path}")
    return 0


def add_mnist_parser(commands) -> None:
    mnist = commands.add_parser(
        "mnist", argument_default=argparse.SUPPRESS,
        help="train the MERA-like NeuralRG on images (MNIST) by maximum likelihood",
    )
    add = mnist.add_argument
    add("--data-dir", help="folder with MNIST IDX files (train-*/t10k-*, raw or .gz); default: "
                           "scikit-learn's bundled 8x8 digits, no download needed")
    add("--split", help="MNIST files to read: auto (every split present), all, train, test")
    add("--max-images", type=int, help="use only the first N images (default: all)")
    add("--n-heldout", type=int, help="images kept out of training (default: 10%%)")
    add("--n-disentanglers", type=int, help="disentangler layers per scale (default: 1)")
    add("--n-layers", type=int, help="RealNVP couplings per block (default: 4)")
    add("--hidden-s", type=int, help="hidden width of the s networks (default: 32)")
    add("--hidden-t", type=int, help="hidden width of the t networks (default: 32)")
    add("--mlp-depth", type=int, help="hidden layers in each s/t network (default: 2)")
    add("--alpha", type=float, help="logit transform margin (default: 1e-6)")
    add("--no-positional", action="store_true", help="translation-invariant blocks")
    add("--steps", type=int, help="training steps (default: 2000)")
    add("--batch-size", type=int, help="images per step (default: 32)")
    add("--lr", type=float, help="Adam learning rate (default: 3e-3, cosine schedule)")
    add("--minutes", type=float, help="training wall-time budget; the schedule follows it")
    add("--max-grad-norm", type=float, help="gradient-norm clipping threshold (default: 50)")
    add("--seed", type=int, help="random seed of split, weights and noise (default: 0)")
    add("--log-every", type=int, help="steps between metric rows (default: 50)")
    add("--checkpoint-every", type=int, help="steps between checkpoints (default: 500)")
    add("--dtype", choices=list(DTYPES), help="float32 (default) or float64")
    add("--device", help="cpu (default), cuda or cuda:N; never falls back silently")
    add("--run-dir", help="run directory (default: runs/mnist-<time>)")
    add("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    add("--force", action="store_true", help="overwrite an existing run directory")
    add("--no-progress", action="store_true", help="hide the progress bar")


def run_mnist(args: argparse.Namespace) -> int:
    from neuralrg.jobs import mnist as job
    from neuralrg.runs import RunDirectory

    flags, control = split_control_flags(args)
    if control["resume"]:
        config = job.MnistConfig.from_dict(RunDirectory(control["resume"]).read_config())
    else:
        config = job.mnist_config_from_flags(flags)
    job.validate_mnist_config(config)
    run_dir = control["resume"] or control["run_dir"] or job.default_mnist_run_dir()

    def work(device: str) -> dict:
        return job.mnist_job(replace(config, device=device), run_dir,
                             resume=bool(control["resume"]), force=bool(control["force"]),
                             progress=not control["no_progress"])

    summary = run_on_ranks(config.device, run_dir, config.train.batch_size, work,
                           lambda: job.format_mnist_summary(RunDirectory(run_dir).read_summary()))
    return 0 if summary["stopped_reason"] == "completed" else 1
