"""``neuralrg train``: its flags, the run configuration they describe, and the run."""

from __future__ import annotations

import argparse
import time
from dataclasses import fields, replace

from neuralrg.cli.common import run_on_ranks, split_control_flags, temperature
from neuralrg.flows.flow import COUPLINGS, LAYOUTS, Z2_MODES, FlowConfig
from neuralrg.jobs.config import DTYPES, EvalConfig, RunConfig, validate_run_config
from neuralrg.jobs.table import format_train_summary
from neuralrg.objective import LossConfig
from neuralrg.sampling import LOCAL_MOVES, METHODS
from neuralrg.targets import (
    TARGETS,
    TargetConfig,
    is_user_spec,
    option_defaults,
    target_class,
    with_defaults,
)
from neuralrg.training import LR_SCHEDULES, TrainConfig


def _model_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--target", help=f"target density: {', '.join(TARGETS)}, or a class of your own as "
                         "module.path:ClassName or path/to/file.py:ClassName (default: ising)")
    add("--target-option", action="append", metavar="KEY=VALUE",
        help="an option of the target (repeatable), checked against its class's parameters")
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
    add("--forward", type=float,
        help="weight of the NLL of exact equilibrium samples (targets with exact moves, e.g. "
             "Ising; default: 0)")
    add("--forward-schedule", help="constant, or decay (linearly to 0; default: constant)")
    add("--forward-samples", type=int,
        help="chains of exact moves feeding the forward term (default: 64)")
    ev = EvalConfig()
    add("--eval-samples", type=int,
        help=f"fresh flow samples for the bound and importance sampling (default: {ev.samples})")
    add("--mc-method", choices=METHODS,
        help=f"sampler of the measurement after training (default: {ev.mc_method})")
    add("--mc-chains", type=int, help=f"chains of the measurement (default: {ev.mc_chains})")
    add("--mc-therm", type=int, help=f"burn-in steps of the measurement (default: {ev.mc_therm})")
    add("--mc-steps", type=int, help=f"recorded steps of the measurement (default: {ev.mc_steps})")
    add("--mc-local", choices=LOCAL_MOVES,
        help=f"hybrid: the local move, exact, hmc or auto (default: {ev.mc_local})")
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
    add("--mc-ti-nodes", type=int,
        help="thermodynamic integration of ln Z over this many nodes (Ising; default: "
             f"{ev.mc_ti_nodes}, off)")
    add("--mc-ti-steps", type=int,
        help=f"thermodynamic integration: moves per node and chain (default: {ev.mc_ti_steps})")
    add("--dtype", choices=list(DTYPES), help="float32 (default) or float64")
    add("--device", help="cpu (default), cuda or cuda:N; never falls back silently")


def add_train_parser(commands) -> None:
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
    train.add_argument("--warm-from", metavar="RUN_DIR",
                       help="start from the trained flow of a run with the same target, L and "
                            "architecture at other target options (e.g. a neighbouring T)")
    train.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")


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
    if "init_from" in flags and "grow_from" in flags:
        raise ValueError("--init-from and --grow-from exclude each other: the chain grows "
                         "from its own first stage")
    target = target_from_flags(flags)
    z2_default = "eval" if getattr(target_class(target.name), "z2_symmetric", False) else "none"
    flow = pick(FlowConfig, L=target.L, d=target.d,
                z2_symmetric=flags.get("z2_symmetric", z2_default))
    if "minutes" in flags and "steps" not in flags:
        flags = {**flags, "steps": 10**9}  # the time budget alone ends training
    eval_fields = {f.name for f in fields(EvalConfig)}
    evaluation = EvalConfig(**{"samples" if k == "eval_samples" else k: v
                               for k, v in flags.items() if k == "eval_samples" or (
                                   k in eval_fields and k.startswith("mc_"))})
    return RunConfig(target, flow, pick(TrainConfig), pick(LossConfig), evaluation,
                     **{k: flags[k] for k in ("dtype", "device", "init_from", "grow_from",
                                              "warm_from")
                        if k in flags})


TARGET_FLAGS = ("T", "kappa", "lam")  # built-in targets' options with flags of their own


def target_from_flags(flags: dict) -> TargetConfig:
    """The target named by ``--target`` (imported if it is a user's class), its lattice
    (``--L``, ``--d``, or what the target pins) and options (``--T``, ``--kappa``, ``--lam``,
    ``--target-option KEY=VALUE``), each checked against the class's parameters."""
    name = flags.get("target", "ising")
    cls = target_class(name)
    allowed = option_defaults(cls)
    options = dict(parse_option(text, name, allowed) for text in flags.get("target_option") or [])
    for flag in TARGET_FLAGS:
        if flag in flags:
            if flag not in allowed:
                raise ValueError(f"--{flag} is not an option of target {name!r}; its options: "
                                 f"{', '.join(allowed) or 'none'}")
            options[flag] = flags[flag]
    fixed = getattr(cls, "fixed_lattice", None) or {}
    return with_defaults(TargetConfig(name, flags.get("L", fixed.get("L", 8)),
                                      flags.get("d", fixed.get("d", 2)), options))


def parse_option(text: str, target: str, allowed: dict) -> tuple[str, object]:
    """``KEY=VALUE`` as the key and the value in the type of the option's default (numbers
    when it has none)."""
    key, sep, raw = text.partition("=")
    if not sep or key not in allowed:
        raise ValueError(f"--target-option {text!r}: target {target!r} takes KEY=VALUE with KEY "
                         f"one of: {', '.join(allowed) or 'none'}")
    default = allowed[key]
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false"):
                raise ValueError
            return key, raw.lower() == "true"
        if isinstance(default, (int, float)) and default is not None:
            return key, type(default)(raw) if not isinstance(default, int) else int(raw)
        return key, _number_or_text(raw)
    except ValueError:
        kind = type(default).__name__
        raise ValueError(f"--target-option {text!r}: {key} must be a {kind}") from None


def _number_or_text(raw: str) -> object:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def default_run_dir(config: RunConfig, given: tuple[str, ...] = ("T", "kappa", "lam")) -> str:
    """``runs/<layout>[-<target>]-L<L>-d<d>[-<option><value>...]-<time>``."""
    t = config.target
    name = t.name.rpartition(":")[2] if is_user_spec(t.name) else t.name
    options = "".join(f"-{k}{v:.4f}" if isinstance(v, float) else f"-{k}{v}"
                      for k, v in t.options.items() if v is not None and k in given)
    name = "" if name == "ising" else f"-{name}"
    return (f"runs/{config.flow.layout}{name}-L{t.L}-d{t.d}{options}-"
            f"{time.strftime('%Y%m%d-%H%M%S')}")


def run_train(args: argparse.Namespace) -> int:
    from neuralrg.jobs import grow_job, growth_source, growth_stages, train_job
    from neuralrg.jobs.model import check_user_target
    from neuralrg.jobs.warm import warm_source
    from neuralrg.runs import RunDirectory

    flags, control = split_control_flags(args)
    if control["resume"]:
        run = RunDirectory(control["resume"])
        config = RunConfig.from_dict(run.read_config())
        check_user_target(config, control["target"], run)
        run_dir = control["resume"]
    else:
        config = config_from_flags(flags)
        run_dir = control["run_dir"] or default_run_dir(config)
    validate_run_config(config)
    if config.grow_from is not None:
        growth_stages(config, run_dir)  # checks the chain before any work
    elif config.init_from is not None:
        growth_source(config)
    if config.warm_from is not None:
        warm_source(config)
    job = grow_job if config.grow_from is not None else train_job

    def work(device: str) -> dict:
        return job(replace(config, device=device), run_dir, resume=bool(control["resume"]),
                   force=bool(control["force"]), progress=not control["no_progress"])

    summary = run_on_ranks(config.device, run_dir, config.train.batch_size, work,
                           lambda: format_train_summary(RunDirectory(run_dir).read_summary()))
    return 0 if summary["stopped_reason"] == "completed" else 1
