"""``neuralrg train``: its flags, the run configuration they describe, and the run."""

from __future__ import annotations

import argparse
import time
from dataclasses import fields, replace

from neuralrg.cli.common import (
    FLAGS,
    add_config_flags,
    add_sample_flags,
    run_on_ranks,
    sample_config_from,
    split_control_flags,
    temperature,
)
from neuralrg.flows.flow import COUPLINGS, SYMMETRISE_AUTO, FlowConfig
from neuralrg.jobs.config import DTYPES, EvalConfig, RunConfig, validate_run_config
from neuralrg.jobs.table import format_train_summary
from neuralrg.measure.sampling import SampleConfig
from neuralrg.model import resolve_symmetrise
from neuralrg.targets import (
    TARGETS,
    TargetConfig,
    is_user_spec,
    option_defaults,
    target_class,
    with_defaults,
)
from neuralrg.training import TrainConfig
from neuralrg.training.objective import LossConfig
from neuralrg.validation import check_int


def _model_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--target", help=f"target density: {', '.join(TARGETS)}, or a class of your own as "
                         "module.path:ClassName or path/to/file.py:ClassName (default: ising)")
    add("--target-option", action="append", metavar="KEY=VALUE",
        help="an option of the target (repeatable), checked against its class's parameters")
    phi4 = option_defaults(target_class("phi4"))
    add("--L", type=int, help=f"linear lattice size (default: {TargetConfig.L})")
    add("--T", type=temperature, help="Ising temperature, or 'Tc' (default: Tc = 2.2692)")
    add("--kappa", type=float, help=f"phi^4 hopping parameter (default: {phi4['kappa']})")
    add("--lam", type=float, help=f"phi^4 quartic coupling lambda (default: {phi4['lam']})")
    add("--d", type=int, help=f"lattice dimension, 1 or 2 (default: {TargetConfig.d})")
    add_config_flags(parser, FlowConfig(), FLAGS, choices={"coupling": COUPLINGS},
                     aliases={"symmetrise": "--z2-symmetric"})




def _train_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add_config_flags(parser, TrainConfig(), FLAGS)
    add_config_flags(parser, LossConfig(), FLAGS)
    add("--eval-samples", type=int,
        help="fresh flow samples for the bound and importance sampling (default: "
             f"{SampleConfig.importance_samples})")
    add_sample_flags(parser, "mc-", skip=("importance_samples", "seed"))  # the measurement
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
    z2 = resolve_symmetrise(flags.get("symmetrise", SYMMETRISE_AUTO), target_class(target.name))
    flow = pick(FlowConfig, L=target.L, d=target.d, symmetrise=z2)  # recorded as decided
    if "minutes" in flags and "steps" not in flags:
        flags = {**flags, "steps": 10**9}  # the time budget alone ends training
    sampling = sample_config_from(flags, "mc-")
    if "eval_samples" in flags:
        check_int("eval-samples", flags["eval_samples"], 2)
        sampling = replace(sampling, importance_samples=flags["eval_samples"])
    evaluation = EvalConfig(sampling)
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
    from neuralrg.jobs.config import in_config_file, load_run_config
    from neuralrg.jobs.runs import RunDirectory
    from neuralrg.jobs.warm import warm_source

    flags, control = split_control_flags(args)
    resume = bool(control["resume"])
    if resume:
        run = RunDirectory(control["resume"])
        config = load_run_config(run, control["target"])
        with in_config_file(run):
            validate_run_config(config)
        run_dir = control["resume"]
    else:
        config = config_from_flags(flags)
        validate_run_config(config)
        run_dir = control["run_dir"] or default_run_dir(config)
    RunDirectory(run_dir).check_start(resume, bool(control["force"]))
    if config.grow_from is not None:
        growth_stages(config, run_dir)  # checks the chain before any work
    elif config.init_from is not None and not (resume and RunDirectory(run_dir).has_checkpoint()):
        growth_source(config)
    if config.warm_from is not None:
        warm_source(config)
    job = grow_job if config.grow_from is not None else train_job

    def work(device: str) -> dict:
        return job(replace(config, device=device), run_dir, resume=resume,
                   force=bool(control["force"]), progress=not control["no_progress"])

    summary = run_on_ranks(config.device, run_dir, work,
                           lambda: format_train_summary(RunDirectory(run_dir).read_summary()))
    return 0 if summary["stopped_reason"] == "completed" else 1
