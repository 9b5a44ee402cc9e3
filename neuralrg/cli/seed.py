"""Front end with the original NeuralRG command lines (``learn_tebd.py``, ``learn_mera.py``).

The seed's flags (``-Batchsize``, ``-Nlayers``, ``-Hs``, ... with argparse prefix
abbreviations such as ``-Batch``) are mapped onto the same configuration and code
as ``neuralrg train``. One seed "epoch" is one training step of ``-Batchsize``
samples; after training a Metropolis run with ``-Ntherm``/``-Nsteps``/``-Nskips``
measures the acceptance and the observables.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import matplotlib
import torch

from neuralrg.cli import OneLineParser, temperature
from neuralrg.flows.flow import COUPLINGS, SYMMETRISE_AUTO, FlowConfig
from neuralrg.jobs.config import EvalConfig, RunConfig
from neuralrg.jobs.runs import check_directory_to_write
from neuralrg.jobs.table import format_train_summary
from neuralrg.measure.sampling import SampleConfig
from neuralrg.measure.table import format_measurement
from neuralrg.model import resolve_symmetrise
from neuralrg.targets import TARGETS, TargetConfig, option_defaults, target_class
from neuralrg.training import TrainConfig
from neuralrg.training.objective import LossConfig

LAYOUT_ONLY = {"tebd": ("Depth",), "mera": ("Ndisentangler",)}


def build_parser(layout: str) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=f"learn_{layout}.py", description=f"{layout.upper()}-like NeuralRG")
    add = parser.add_argument
    add("-L", type=int, default=4, help="linear lattice size")
    add("-T", type=temperature, default=2.269, help="temperature")
    add("-d", type=int, default=2, help="dimension")
    add("-exact", type=float, default=None, help="exact <m^2> to compare the measurement with")
    add("-epsilon", type=float, default=0.0, help="weight of the log-acceptance term")
    add("-beta", type=float, default=1.0, help="starting inverse-temperature factor")
    add("-delta", type=float, default=1.0, help="weight of the NLL of Metropolis samples")
    add("-omega", type=float, default=0.5, help="weight of the reverse KL")
    add("-Nepochs", "-Nepoch", type=int, default=500, help="training epochs (steps)")
    add("-lr", type=float, default=1e-3, help="learning rate")
    add("-Batchsize", type=int, default=64, help="samples per epoch and Metropolis chains")
    add("-Ntherm", type=int, default=10, help="Metropolis thermalisation steps")
    add("-Nsteps", type=int, default=10, help="Metropolis measurement steps")
    add("-Nskips", type=int, default=0, help="Metropolis steps skipped between measurements")
    add("-Depth", type=int, default=None, help="TEBD layers (learn_tebd.py only; default 8)")
    add("-Ndisentangler", type=int, default=None,
        help="disentangler layers per scale (learn_mera.py only; default 1)")
    add("-Nlayers", type=int, default=4, help="couplings per RealNVP block")
    add("-coupling", choices=COUPLINGS, default="affine",
        help="block: affine (the paper's, the default here) or spline")
    add("-bins", type=int, default=None, help="spline bins (-coupling spline)")
    add("-spline_bound", type=float, default=None, help="spline interval [-B, B]")
    add("-context", type=int, default=0,
        help="patches away a conditioner looks (0: the paper's isolated patches)")
    add("-Hs", type=int, default=64, help="hidden width of the s networks")
    add("-Ht", type=int, default=64, help="hidden width of the t networks")
    add("-target", default="ising", choices=TARGETS, help="target density")
    add("-train_model", action="store_true", help="train (otherwise load -modelname and sample)")
    add("-folder", default=f"data/learn_{layout}", help="folder for runs")
    add("-modelname", default=None, help="run directory name inside -folder")
    add("-cuda", type=int, default=-1, help="CUDA device number (-1: CPU)")
    add("-double", action="store_true", help="float64")
    add("-seed", type=int, default=0, help="random seed")
    return parser


def config_from_args(layout: str, args: argparse.Namespace) -> RunConfig:
    other = "mera" if layout == "tebd" else "tebd"
    for flag in LAYOUT_ONLY[other]:
        if getattr(args, flag) is not None:
            raise ValueError(f"-{flag} is for learn_{other}.py, not learn_{layout}.py")
    flow = FlowConfig(
        L=args.L, d=args.d, layout=layout, depth=args.Depth or 8,
        n_disentanglers=1 if args.Ndisentangler is None else args.Ndisentangler,
        n_layers=args.Nlayers, hidden_s=args.Hs, hidden_t=args.Ht, coupling=args.coupling,
        context=args.context, **_spline_options(args),
        symmetrise=resolve_symmetrise(SYMMETRISE_AUTO, target_class(args.target)),
    )
    return RunConfig(
        target=_target(args),
        flow=flow,
        train=TrainConfig(steps=args.Nepochs, batch_size=args.Batchsize, lr=args.lr,
                          seed=args.seed, log_every=1, lr_schedule="constant"),
        loss=LossConfig(omega=args.omega, delta=args.delta, epsilon=args.epsilon, beta=args.beta),
        eval=EvalConfig(SampleConfig(method="mh", chains=args.Batchsize, therm=args.Ntherm,
                                     steps=args.Nsteps, skip=args.Nskips)),
        dtype="float64" if args.double else "float32",
        device="cpu" if args.cuda < 0 else f"cuda:{args.cuda}",
    )


def _target(args: argparse.Namespace) -> TargetConfig:
    """The seed's -target with -L, -d and -T where the target takes a temperature (the toy
    densities pin their own two-variable lattice)."""
    cls = target_class(args.target)
    fixed = getattr(cls, "fixed_lattice", None)
    if fixed:
        return TargetConfig(args.target, fixed["L"], fixed["d"])
    return TargetConfig(args.target, args.L, args.d,
                        {"T": args.T} if "T" in option_defaults(cls) else {})


def _spline_options(args: argparse.Namespace) -> dict:
    options = {k: v for k, v in (("bins", args.bins), ("spline_bound", args.spline_bound))
               if v is not None}
    if options and args.coupling != "spline":
        raise ValueError(f"-{next(iter(options))} is for -coupling spline")
    return options


def run_directory(layout: str, args: argparse.Namespace) -> Path:
    name = args.modelname or (
        f"{args.target}_L{args.L}_d{args.d}_T{args.T:.6g}_Nl{args.Nlayers}_Hs{args.Hs}_Ht{args.Ht}"
        f"_epsilon{args.epsilon}_beta{args.beta}_delta{args.delta}_omega{args.omega}"
        f"_Batchsize{args.Batchsize}_lr{args.lr}_{layout}"
    )
    return Path(args.folder) / name


def report(summary: dict, exact_m2: float | None, table: bool = True) -> str:
    """The seed's closing lines: acceptance ratio, the measurement table (unless already
    printed) and the comparison with ``-exact``."""
    lines = [f"acceptance ratio: {summary['acceptance']:.4f}"]
    if table:
        lines.append(format_measurement(summary))
    m2 = summary["observables"]["m2"]
    if exact_m2 is not None:
        deviation = "cannot be judged (no error bar)" if not m2["err"] else \
            f"deviates by {(m2['value'] - exact_m2) / m2['err']:+.2f} error bars"
        lines.append(f"-exact {exact_m2}: m2 {deviation}")
    return "\n".join(lines)


def main(layout: str, argv: Sequence[str] | None = None) -> int:
    from neuralrg.jobs import load_model, measure_run, train_job

    matplotlib.use("Agg")  # figures go to files, as in the neuralrg command
    parser = build_parser(layout)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(layout, args)
        run_dir = run_directory(layout, args)
        print(f"run directory: {run_dir}")
        if args.train_model:
            check_directory_to_write("folder", run_dir)
            summary = train_job(config, run_dir, force=True, progress=True, epoch_log=True)
            print(format_train_summary(summary))
        else:
            model, _ = load_model(run_dir)
            model = replace(model, config=replace(model.config, eval=config.eval))
            generator = torch.Generator(device=model.flow_device).manual_seed(args.seed)
            summary = measure_run(model, generator)
        print(report(summary, args.exact, table=not args.train_model))
    except (ValueError, OSError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    return 0
