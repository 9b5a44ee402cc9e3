"""The ``neuralrg`` command line: argument parsing and wiring only, no science."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import fields, replace

import torch

from neuralrg import distributed
from neuralrg.config import DTYPES, EvalConfig, RunConfig, resolve_device, validate_run_config
from neuralrg.exact import MAX_MOMENT_L, MAX_RING_L, T_CRITICAL_2D
from neuralrg.flows.flow import COUPLINGS, LAYOUTS, Z2_MODES, FlowConfig
from neuralrg.objective import LossConfig
from neuralrg.sampling import METHODS, SampleConfig
from neuralrg.summary_table import format_measurement, format_train_summary
from neuralrg.targets import TARGETS, TOY_SHAPE, Z2_TARGETS, TargetConfig
from neuralrg.training import LR_SCHEDULES, TrainConfig


class OneLineParser(argparse.ArgumentParser):
    """Reports usage errors as one line and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


DEVICE_HELP = "cpu, cuda or cuda:N (default: the device the run was trained on); no fallback"


def temperature(text: str) -> float:
    """A temperature: a number, or 'Tc' for the 2D critical point 2/ln(1+sqrt 2)."""
    if text.lower() == "tc":
        return T_CRITICAL_2D
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"T={text} must be a finite temperature > 0 (or 'Tc')")
    return value


def _model_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--target", choices=TARGETS, help="target density (default: ising)")
    add("--L", type=int, help="linear lattice size (default: 8)")
    add("--T", type=temperature, help="Ising temperature, or 'Tc' (default: Tc = 2.2692)")
    add("--kappa", type=float, help="phi^4 hopping parameter (default: 0.3)")
    add("--lam", type=float, help="phi^4 quartic coupling lambda (default: 0.02)")
    add("--d", type=int, help="lattice dimension, 1 or 2 (default: 2)")
    add("--layout", help=f"network layout: {', '.join(LAYOUTS)} (default: mera)")
    add("--depth", type=int, help="TEBD layers (default: 8)")
    add("--n-disentanglers", type=int, help="MERA disentangler layers per scale (default: 1)")
    add("--n-layers", type=int, help="RealNVP couplings per block (default: 4)")
    add("--coupling", choices=COUPLINGS,
        help="block: affine (the paper's RealNVP) or spline (rational-quadratic spline, then "
             f"the bounded affine map; default: {FlowConfig.coupling})")
    add("--bins", type=int, help=f"spline bins (--coupling spline; default: {FlowConfig.bins})")
    add("--spline-bound", type=float,
        help=f"spline interval [-B, B], identity outside (default: {FlowConfig.spline_bound})")
    add("--hidden-s", type=int, help="hidden width of the s networks (default: 64)")
    add("--hidden-t", type=int, help="hidden width of the t networks (default: 64)")
    add("--mlp-depth", type=int, help="hidden layers in each s/t network (default: 2)")
    add("--z2-symmetric", choices=Z2_MODES,
        help="use (q(x) + q(-x)) / 2: none, eval (train plain, sample symmetrised; "
             "default for Ising) or train (train through the mixture)")


def _train_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--steps", type=int, help="training steps (default: 1500)")
    add("--batch-size", type=int, help="samples per step (default: 256)")
    add("--lr", type=float, help="Adam learning rate (default: 3e-3)")
    add("--minutes", type=float, help="training wall-time budget; the schedule follows it")
    add("--weight-decay", type=float, help="Adam weight decay (default: 0)")
    add("--lr-schedule", help=f"{', '.join(LR_SCHEDULES)} (default: cosine)")
    add("--seed", type=int, help="random seed (default: 0)")
    add("--log-every", type=int, help="steps between metric rows (default: 10)")
    add("--checkpoint-every", type=int, help="steps between checkpoints (default: 200)")
    add("--max-bad-steps", type=int, help="consecutive non-finite steps before stopping")
    add("--omega", type=float, help="weight of the reverse-KL term (default: 1)")
    add("--delta", type=float, help="weight of the NLL of Metropolis samples (default: 0)")
    add("--epsilon", type=float, help="weight of the log-acceptance term (default: 0)")
    add("--beta", type=float, help="starting inverse temperature factor, rising to 1 (default: 1)")
    ev = EvalConfig()
    add("--eval-samples", type=int,
        help=f"fresh flow samples for the bound and importance sampling (default: {ev.samples})")
    add("--mc-method", choices=METHODS,
        help=f"sampler of the measurement after training (default: {ev.mc_method})")
    add("--mc-chains", type=int, help=f"chains of the measurement (default: {ev.mc_chains})")
    add("--mc-therm", type=int, help=f"burn-in steps of the measurement (default: {ev.mc_therm})")
    add("--mc-steps", type=int, help=f"recorded steps of the measurement (default: {ev.mc_steps})")
    add("--mc-local-moves", type=int,
        help=f"hybrid: local HMC moves per flow step (default: {ev.mc_local_moves})")
    add("--mc-local-step-size", type=float,
        help=f"hybrid: step size of the local moves (default: {ev.mc_local_step_size})")
    add("--mc-local-leapfrog", type=int,
        help=f"hybrid: leapfrog steps per local move (default: {ev.mc_local_leapfrog})")
    add("--mc-step-size", type=float,
        help=f"hmc-latent/hmc-physical: step size (default: {ev.mc_step_size})")
    add("--mc-leapfrog", type=int,
        help=f"hmc-latent/hmc-physical: leapfrog steps (default: {ev.mc_leapfrog})")
    add("--dtype", choices=list(DTYPES), help="float32 (default) or float64")
    add("--device", help="cpu (default), cuda or cuda:N; never falls back silently")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="neuralrg", description="Neural Network Renormalization Group")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for PyTorch (default: PyTorch's choice)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    train = commands.add_parser(
        "train", argument_default=argparse.SUPPRESS,
        help="train a NeuralRG flow (default: MERA on the 8x8 Ising model at Tc)",
    )
    _model_flags(train)
    _train_flags(train)
    train.add_argument("--run-dir", help="run directory (default: runs/<layout>-L<L>-T<T>-<time>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    train.add_argument("--init-from", metavar="RUN_DIR",
                       help="start from a trained MERA run at L/2 (same target, T, d, dtype "
                            "and architecture): lattice growth")
    train.add_argument("--grow-from", type=int, metavar="L0",
                       help="grow L0 -> 2 L0 -> ... -> L in one command, each stage a run in "
                            "RUN_DIR/stages, the budget split in proportion to the sites")
    train.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _sample_parser(commands)
    _analysis_parsers(commands)
    _mnist_parser(commands)
    exact = commands.add_parser("exact", help="exact Ising results on a finite periodic lattice")
    exact.add_argument("--L", type=int, required=True, help="linear lattice size")
    exact.add_argument("--T", type=temperature, required=True, help="temperature, or 'Tc'")
    exact.add_argument("--d", type=int, default=2, help="lattice dimension, 1 or 2 (default: 2)")
    exact.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _sample_parser(commands) -> None:
    sample = commands.add_parser("sample", help="exact sampling from a trained run, with a "
                                                "verdict per number")
    add, d = sample.add_argument, SampleConfig()
    add("run_dir", metavar="RUN_DIR", help="a trained run directory")
    add("--method", choices=METHODS, default=d.method,
        help="mh: flow-proposal Metropolis; hybrid: flow proposals with local HMC moves in x; "
             f"hmc-latent / hmc-physical: HMC (default: {d.method})")
    add("--chains", type=int, default=d.chains, help=f"parallel chains (default: {d.chains})")
    add("--therm", type=int, default=d.therm, help=f"burn-in steps (default: {d.therm})")
    add("--steps", type=int, default=d.steps, help=f"recorded steps (default: {d.steps})")
    add("--skip", type=int, default=d.skip, help="steps skipped between records (default: 0)")
    add("--step-size", type=float, default=d.step_size,
        help=f"HMC leapfrog step size (default: {d.step_size})")
    add("--n-leapfrog", type=int, default=d.n_leapfrog,
        help=f"HMC leapfrog steps per trajectory (default: {d.n_leapfrog})")
    add("--local-moves", type=int, default=d.local_moves,
        help=f"hybrid: local HMC moves in x per flow step (default: {d.local_moves})")
    add("--local-step-size", type=float, default=d.local_step_size,
        help=f"hybrid: step size of the local moves (default: {d.local_step_size})")
    add("--local-leapfrog", type=int, default=d.local_leapfrog,
        help=f"hybrid: leapfrog steps per local move (default: {d.local_leapfrog})")
    add("--spread", type=float, default=d.spread,
        help=f"width of the starting latents over the prior's (default: {d.spread})")
    add("--is-samples", type=int, default=d.importance_samples,
        help=f"flow samples for importance sampling (default: {d.importance_samples})")
    add("--seed", type=int, default=0, help="random seed (default: 0)")
    add("--device", help=DEVICE_HELP)


def _check_device(device: str | None) -> None:
    if device is not None:
        resolve_device(device)


def run_sample(args: argparse.Namespace) -> int:
    from neuralrg.jobs import load_model
    from neuralrg.sampling import sample_job, validate_sample_config

    config = SampleConfig(args.method, args.chains, args.therm, args.steps, args.skip,
                          args.step_size, args.n_leapfrog, args.local_moves,
                          args.local_step_size, args.local_leapfrog, args.spread,
                          args.is_samples, args.seed)
    validate_sample_config(config)
    _check_device(args.device)
    info = distributed.init_from_env(args.device or "cpu")
    device = str(info.device) if info.world_size > 1 else args.device
    try:
        model, run = load_model(args.run_dir, device)
        summary = sample_job(model, run.path, config)
    finally:
        distributed.shutdown()
    if not summary:
        return 0
    taus = "   ".join(f"{k}: {v:.3g}" for k, v in summary.items()
                       if k.startswith("tau_int") and v is not None)
    print(format_measurement(summary))
    if taus:
        print(taus)
    print(f"samples: {run.path / f'samples-{config.method}.h5'}")
    return 0


def config_from_flags(flags: dict) -> RunConfig:
    """Defaults of every config dataclass, overridden by the flags that were given."""
    def pick(cls, **extra):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in {**flags, **extra}.items() if k in names})

    if flags.get("coupling", FlowConfig.coupling) != "spline":
        for flag in ("bins", "spline_bound"):
            if flag in flags:
                raise ValueError(f"--{flag.replace('_', '-')} is for --coupling spline, "
                                 f"not --coupling {flags.get('coupling', FlowConfig.coupling)}")
    name = flags.get("target", "ising")
    shape = TOY_SHAPE if name not in ("ising", "phi4") else {}
    target = pick(TargetConfig, **{**shape, **flags, "name": name})
    z2 = flags.get("z2_symmetric", "eval" if target.name in Z2_TARGETS else "none")
    flow = pick(FlowConfig, L=target.L, d=target.d, z2_symmetric=z2)
    if "minutes" in flags and "steps" not in flags:
        flags = {**flags, "steps": 10**9}  # the time budget alone ends training
    eval_fields = {f.name for f in fields(EvalConfig)}
    evaluation = EvalConfig(**{"samples" if k == "eval_samples" else k: v
                               for k, v in flags.items() if k == "eval_samples" or (
                                   k in eval_fields and k.startswith("mc_"))})
    return RunConfig(target, flow, pick(TrainConfig), pick(LossConfig), evaluation,
                     **{k: flags[k] for k in ("dtype", "device", "init_from", "grow_from")
                        if k in flags})


def default_run_dir(config: RunConfig) -> str:
    t = config.target
    return f"runs/{config.flow.layout}-L{t.L}-d{t.d}-T{t.T:.4f}-{time.strftime('%Y%m%d-%H%M%S')}"


CONTROL_FLAGS = ("command", "threads", "run_dir", "resume", "force", "no_progress")


def split_control_flags(args: argparse.Namespace) -> tuple[dict, dict]:
    """(configuration flags given, run-control flags); with ``--resume`` the configuration
    comes from the run directory, so any configuration flag is an error."""
    flags = {k.replace("-", "_"): v for k, v in vars(args).items()}
    control = {k: flags.pop(k, None) for k in CONTROL_FLAGS}
    if control["resume"] and flags:
        raise ValueError(f"--resume takes the configuration from its run directory; drop "
                         f"{', '.join('--' + k.replace('_', '-') for k in flags)}")
    return flags, control


def run_train(args: argparse.Namespace) -> int:
    from neuralrg.jobs import grow_job, growth_source, growth_stages, train_job
    from neuralrg.runs import RunDirectory

    flags, control = split_control_flags(args)
    if control["resume"]:
        config = RunConfig.from_dict(RunDirectory(control["resume"]).read_config())
        run_dir = control["resume"]
    else:
        config = config_from_flags(flags)
        run_dir = control["run_dir"] or default_run_dir(config)
    validate_run_config(config)
    if config.init_from is not None and config.grow_from is not None:
        raise ValueError("--init-from and --grow-from exclude each other: the chain grows "
                         "from its own first stage")
    if config.grow_from is not None:
        growth_stages(config, run_dir)  # checks the chain before any work
    elif config.init_from is not None:
        growth_source(config)
    info = distributed.init_from_env(config.device)
    config = replace(config, device=str(info.device))
    if config.train.batch_size % info.world_size:
        raise ValueError(f"batch-size={config.train.batch_size} must be a multiple of the "
                         f"number of ranks ({info.world_size})")
    if info.rank == 0:
        print(f"run directory: {run_dir}" + (f" ({info.world_size} ranks)"
                                             if info.world_size > 1 else ""))
    try:
        job = grow_job if config.grow_from is not None else train_job
        summary = job(config, run_dir, resume=bool(control["resume"]),
                      force=bool(control["force"]), progress=not control["no_progress"])
    finally:
        distributed.shutdown()
    if info.rank == 0:
        print(format_train_summary(RunDirectory(run_dir).read_summary()))
    return 0 if summary["stopped_reason"] == "completed" else 1


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


def _analysis_parsers(commands) -> None:
    analyze = commands.add_parser("analyze", help="RG-microscope figures of a trained run")
    report = commands.add_parser("report", help="write a self-contained report.html of a run")
    for sub in (analyze, report):
        sub.add_argument("run_dir", metavar="RUN_DIR", help="a trained run directory")
        sub.add_argument("--samples", type=int, default=2000,
                         help="Metropolis samples for the statistics (default: 2000)")
        sub.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
        sub.add_argument("--device", help=DEVICE_HELP)
    analyze.add_argument("--out", help="output folder (default: RUN_DIR/analysis)")
    report.add_argument("--out", help="output file (default: RUN_DIR/report.html)")


def run_analyze(args: argparse.Namespace) -> int:
    from neuralrg.microscope import analyze_run, validate_analysis_args
    from neuralrg.report import format_analysis

    validate_analysis_args(args.samples, args.seed)
    _check_device(args.device)
    manifest = analyze_run(args.run_dir, args.out, args.samples, args.seed, args.device)
    print(format_analysis(manifest))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from neuralrg.microscope import validate_analysis_args
    from neuralrg.report import write_report

    validate_analysis_args(args.samples, args.seed)
    _check_device(args.device)
    path = write_report(args.run_dir, args.out, args.samples, args.seed, args.device)
    print(f"report: {path}")
    return 0


def _mnist_parser(commands) -> None:
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
    from neuralrg import mnist_job as job
    from neuralrg.runs import RunDirectory

    flags, control = split_control_flags(args)
    if control["resume"]:
        config = job.MnistConfig.from_dict(RunDirectory(control["resume"]).read_config())
    else:
        config = job.mnist_config_from_flags(flags)
    job.validate_mnist_config(config)
    run_dir = control["resume"] or control["run_dir"] or job.default_mnist_run_dir()
    print(f"run directory: {run_dir}")
    summary = job.mnist_job(config, run_dir, resume=bool(control["resume"]),
                            force=bool(control["force"]), progress=not control["no_progress"])
    print(job.format_mnist_summary(summary))
    return 0 if summary["stopped_reason"] == "completed" else 1


COMMANDS = {"train": run_train, "exact": run_exact, "sample": run_sample,
            "analyze": run_analyze, "report": run_report, "mnist": run_mnist}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"argument --threads: threads={args.threads} must be >= 1")
        torch.set_num_threads(args.threads)
    try:
        return COMMANDS[args.command](args)
    except ValueError as error:
        print(f"neuralrg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept (continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
