"""What every subcommand shares: one-line usage errors, temperatures, devices, run control."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable

from neuralrg import distributed
from neuralrg.exact import T_CRITICAL_2D
from neuralrg.flows.layouts import LAYOUTS
from neuralrg.jobs.config import resolve_device
from neuralrg.measure.sampling import FLAG_NAMES, METHODS, SampleConfig
from neuralrg.training import LR_SCHEDULES


class OneLineParser(argparse.ArgumentParser):
    """Reports usage errors as one line and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


DEVICE_HELP = "cpu, cuda or cuda:N (default: the device the run was trained on); no fallback"
NAME_TARGET_HELP = ("the run's target, for a run made with a user's target class "
                    "(module:Class or file.py:Class): loading it runs that module")


def temperature(text: str) -> float:
    """A temperature: a number, or 'Tc' for the 2D critical point 2/ln(1+sqrt 2)."""
    if text.lower() == "tc":
        return T_CRITICAL_2D
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"T={text} must be a finite temperature > 0 (or 'Tc')")
    return value


def check_device(device: str | None) -> None:
    if device is not None:
        resolve_device(device)


CONTROL_FLAGS = ("command", "threads", "run_dir", "resume", "force", "no_progress")


def split_control_flags(args: argparse.Namespace) -> tuple[dict, dict]:
    """(configuration flags given, run-control flags); with ``--resume`` the configuration
    comes from the run directory, so any configuration flag is an error."""
    flags = {k.replace("-", "_"): v for k, v in vars(args).items()}
    control = {k: flags.pop(k, None) for k in CONTROL_FLAGS}
    if control["resume"]:
        control["target"] = flags.pop("target", None)  # naming a user target is allowed
    if control["resume"] and flags:
        raise ValueError(f"--resume takes the configuration from its run directory; drop "
                         f"{', '.join('--' + k.replace('_', '-') for k in flags)}")
    return flags, control


def run_on_ranks(device: str, run_dir: str, work: Callable[[str], dict],
                 report: Callable[[], str]) -> dict:
    """Join the torchrun process group (if any), run ``work(device)`` on every rank and
    print ``report()`` on rank 0; the ranks part at a barrier once the work completed."""
    info = distributed.init_from_env(device)
    if info.rank == 0:
        ranks = f" ({info.world_size} ranks)" if info.world_size > 1 else ""
        print(f"run directory: {run_dir}{ranks}", flush=True)
    completed = False
    try:
        summary = work(str(info.device))
        completed = True
    finally:
        distributed.shutdown(completed)
    if info.rank == 0:
        print(report())
    return summary


FLAGS = {  # field of FlowConfig, TrainConfig, LossConfig or MnistConfig: (type, help)
    "layout": (str, f"network layout: {', '.join(LAYOUTS)}"),
    "depth": (int, "TEBD layers"),
    "n_disentanglers": (int, "MERA disentangler layers per scale"),
    "n_layers": (int, "RealNVP couplings per block"),
    "coupling": (str, "block: affine (the paper's RealNVP) or spline (rational-quadratic "
                      "spline, then the bounded affine map)"),
    "bins": (int, "spline bins (--coupling spline)"),
    "spline_bound": (float, "spline interval [-B, B], identity outside (--coupling spline)"),
    "context": (int, "patches away a coupling's conditioner looks on its layer's grid of "
                     "patches, 0 to 3 (0: the paper's isolated patches)"),
    "hidden_s": (int, "hidden width of the s networks (of the one network of a spline block)"),
    "hidden_t": (int, "hidden width of the t networks (affine blocks)"),
    "mlp_depth": (int, "hidden layers in each network"),
    "symmetrise": (str, "use (q(x) + q(-x)) / 2: none, eval (train plain, sample symmetrised) "
                        "or train (train through the mixture); auto: eval for a Z2-symmetric "
                        "target such as Ising, else none"),
    "steps": (int, "training steps"), "batch_size": (int, "samples per step"),
    "lr": (float, "Adam learning rate"),
    "minutes": (float, "training wall-time budget; the schedule follows it"),
    "weight_decay": (float, "Adam weight decay"),
    "lr_schedule": (str, ", ".join(LR_SCHEDULES)), "seed": (int, "random seed"),
    "log_every": (int, "steps between metric rows"),
    "checkpoint_every": (int, "steps between checkpoints"),
    "max_bad_steps": (int, "consecutive non-finite steps before stopping"),
    "omega": (float, "weight of the reverse-KL term"),
    "delta": (float, "weight of the NLL of Metropolis samples"),
    "epsilon": (float, "weight of the log-acceptance term"),
    "beta": (float, "starting inverse temperature factor, rising to 1"),
    "buffer_factor": (int, "replay buffer of the delta term, in batches"),
    "forward": (float, "weight of the NLL of exact equilibrium samples (targets with exact "
                       "moves, e.g. Ising)"),
    "forward_schedule": (str, "constant, or decay (linearly to 0)"),
    "forward_samples": (int, "chains of exact moves feeding the forward term"),
    "forward_every": (int, "apply the forward term (and move its chains) every K-th step"),
  # MnistConfig field: (type, help; the default is appended)
    "data_dir": (str, "folder with MNIST IDX files (train-*/t10k-*, raw or .gz); default: "
                      "scikit-learn's bundled 8x8 digits, no download needed"),
    "split": (str, "MNIST files to read: auto (every split present), all, train, test"),
    "max_images": (int, "use only the first N images (default: all)"),
    "n_heldout": (int, "images kept out of training (default: 10%%)"),
    "max_grad_norm": (float, "gradient-norm clipping threshold"),
    "alpha": (float, "logit transform margin"),  # the image flow's, beside the train flags'
}

SAMPLE_FLAGS = {  # SampleConfig field: (type, help; the default is appended)
    "method": (str, "exact: chains of the target's exact equilibrium moves (Ising: cluster "
                    "moves); hybrid: flow proposals with local moves in x; mh: flow-proposal "
                    "Metropolis; hmc-latent / hmc-physical: HMC; smc: annealed SMC from the "
                    "flow; auto: exact where the target has exact moves, else hybrid"),
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
                           "particles (0: off; with method smc: instead of chains, 256 if 0)"),
    "smc_repeats": (int, "SMC runs on each of two ladders (the second twice as fine)"),
    "smc_hmc_moves": (int, "SMC: HMC trajectories per rung (besides one flow proposal)"),
    "smc_step_size": (float, "SMC: HMC leapfrog step size"),
    "seed": (int, "random seed"),
}
FLAG_ALIASES = {"n_leapfrog": "--leapfrog"}  # the train command's earlier --mc-leapfrog
CHOICES = {"method": METHODS}  # argparse lists them; other values are checked by SampleConfig


def flag_of(name: str) -> str:
    """The flag of a configuration field (``--chains``, ``--is-samples``, ``--hidden-s``)."""
    return "--" + FLAG_NAMES.get(name, name.replace("_", "-"))


def add_config_flags(parser: argparse.ArgumentParser, defaults: object, table: dict,
                     prefix: str = "", suppress: bool = True, skip: tuple[str, ...] = (),
                     choices: dict | None = None, aliases: dict | None = None) -> None:
    """One flag per field of the dataclass ``defaults`` in ``table`` (field -> (type, help);
    a table may serve several classes), each ``--<prefix><flag>`` with ``dest`` its field
    (prefix included) and its value in ``defaults`` appended to the help; ``suppress``: a
    flag not given is left out of the namespace."""
    choices, aliases = choices or {}, aliases or {}
    own = {f.name for f in dataclasses.fields(defaults)}
    for name, (kind, text) in table.items():
        if name in skip or name not in own:
            continue
        flags = [flag_of(name).replace("--", "--" + prefix, 1)]
        if name in aliases:
            flags.append(aliases[name].replace("--", "--" + prefix, 1))
        default = getattr(defaults, name)
        parser.add_argument(
            *flags, type=kind, choices=choices.get(name), dest=prefix.replace("-", "_") + name,
            default=argparse.SUPPRESS if suppress else default,
            metavar=None if name in choices else flags[0][2:].upper().replace("-", "_"),
            help=text if default is None else f"{text} (default: {default})")


def add_sample_flags(parser: argparse.ArgumentParser, prefix: str = "",
                     skip: tuple[str, ...] = ()) -> None:
    """The flags of :data:`SAMPLE_FLAGS` (but ``skip``); with ``prefix`` (the train command's
    ``mc-``) a flag not given is left out, and the earlier spellings are accepted too."""
    add_config_flags(parser, SampleConfig(), SAMPLE_FLAGS, prefix, suppress=bool(prefix),
                     skip=skip, choices=CHOICES, aliases=FLAG_ALIASES if prefix else None)


def sample_config_from(values: dict, prefix: str = "") -> SampleConfig:
    """The :class:`SampleConfig` of the flags in ``values`` (keyed by ``dest``); a bad value's
    error names its flag as given (``prefix`` + the flag's name)."""
    fields = {name: values[prefix.replace("-", "_") + name] for name in SAMPLE_FLAGS
              if prefix.replace("-", "_") + name in values}
    try:
        return SampleConfig(**fields)
    except ValueError as error:
        raise ValueError(f"{prefix}{error}") from None
