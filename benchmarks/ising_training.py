"""Quality benchmark: MERA-like NeuralRG on the 2D Ising model at T_c, contenders side by
side, each trained for the same CPU-time budget on one thread.

Contenders: ``affine`` (the paper's RealNVP block, from scratch), ``spline`` (the
rational-quadratic spline block), ``spline-growth`` / ``affine-growth`` (the same, first
trained at L/2 for the product's share of the budget, then grown to L; see
:func:`neuralrg.jobs.growth_stages`); any of them with the forward term on exact equilibrium
samples added as ``NAME+fwdW`` (weight W throughout) or ``NAME+fwdW-decay`` (W falling
linearly to 0), e.g. ``spline+fwd0.3``, and applied on every K-th step only with ``-everyK``
appended (``spline+fwd2-every4``). Each contender runs in its own process
(``--jobs`` at a time) and is evaluated at ``--evaluations`` evenly spaced points of its
budget: the bound (gap, nats, gap per site) on ``--eval-samples`` flow samples, ESS per
sample, Pareto k, the acceptance of a short flow-proposal Metropolis run started from flow
samples (``acceptance``, as in earlier results) and the stationary acceptance of flow
proposals, E over x ~ pi and x' ~ q of min(1, pi(x') q(x) / (pi(x) q(x'))), from exact
equilibrium samples (``acceptance_stationary``); the final point uses ``--final-samples``.
Evaluations are not counted in the budget.

    python -m benchmarks.ising_training --L 16 --minutes 20 --contenders affine,spline,spline-growth

The budget is CPU time of the contender's process, so other load on a shared machine does
not eat into it. Each trained model is kept as an ordinary run directory (``neuralrg
sample``/``analyze`` work on it); the figures go to benchmarks/results/ as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.common import RESULTS, environment, print_table, write_json
from neuralrg.estimators import ess_per_sample, pareto_k, variational_bound
from neuralrg.exact import T_CRITICAL_2D
from neuralrg.flows.flow import SYMMETRISE_MODES, FlowConfig
from neuralrg.flows.growth import grown_state_dict
from neuralrg.jobs import RunModel as Model
from neuralrg.jobs import growth_stages
from neuralrg.jobs.config import RunConfig
from neuralrg.jobs.runs import RunDirectory
from neuralrg.mcmc import independent_metropolis
from neuralrg.measure.sampling import flow_draws
from neuralrg.targets import TargetConfig
from neuralrg.training import TrainConfig, Trainer, gap_per_site, relative_gap
from neuralrg.training.objective import LossConfig

CONTENDERS = {"affine": ("affine", False), "spline": ("spline", False),
              "affine-growth": ("affine", True), "spline-growth": ("spline", True)}
FORWARD = re.compile(r"^(?P<base>[a-z-]+)"
                     r"(\+fwd(?P<weight>[0-9.]+)(?P<decay>-decay)?(-every(?P<every>[1-9][0-9]*))?)?$")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--L", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=20.0, help="CPU-time budget each")
    parser.add_argument("--contenders", default="affine,spline,spline-growth")
    parser.add_argument("--jobs", type=int, default=2, help="contenders at a time")
    parser.add_argument("--evaluations", type=int, default=4)
    parser.add_argument("--eval-samples", type=int, default=4096)
    parser.add_argument("--final-samples", type=int, default=65536)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--mlp-depth", type=int, default=1)
    parser.add_argument("--n-disentanglers", type=int, default=1)
    parser.add_argument("--bins", type=int, default=FlowConfig.bins)
    parser.add_argument("--spline-bound", type=float, default=FlowConfig.spline_bound)
    parser.add_argument("--context", type=int, default=FlowConfig.context,
                        help="patches a conditioner looks beyond its own (0: the paper's)")
    parser.add_argument("--z2", choices=SYMMETRISE_MODES[1:], default="eval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/bench-ising", help="run directories go here")
    parser.add_argument("--out", default=None, help="JSON name under benchmarks/results")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in args.contenders.split(","):
        match = FORWARD.match(name)
        if not match or match["base"] not in CONTENDERS:
            parser.error(f"--contenders: {name!r} is unknown; allowed: {', '.join(CONTENDERS)}, "
                         "each optionally with +fwdW or +fwdW-decay, then -everyK")
    if args.evaluations < 1 or args.minutes <= 0 or args.jobs < 1:
        parser.error("--evaluations and --jobs must be >= 1, --minutes > 0")
    return args


def contender_config(args: argparse.Namespace, name: str) -> RunConfig:
    match = FORWARD.match(name)
    coupling, grows = CONTENDERS[match["base"]]
    loss = LossConfig(forward=float(match["weight"] or 0),
                      forward_schedule="decay" if match["decay"] else "constant",
                      forward_every=int(match["every"] or 1))
    config = RunConfig(
        target=TargetConfig(L=args.L, options={"T": T_CRITICAL_2D}),
        flow=FlowConfig(L=args.L, n_layers=args.n_layers, hidden_s=args.hidden,
                        hidden_t=args.hidden, mlp_depth=args.mlp_depth,
                        n_disentanglers=args.n_disentanglers, symmetrise=args.z2,
                        coupling=coupling, bins=args.bins, spline_bound=args.spline_bound,
                        context=args.context),
        train=TrainConfig(steps=10**9, minutes=args.minutes, batch_size=args.batch_size,
                          lr=args.lr, seed=args.seed), loss=loss)
    return replace(config, grow_from=args.L // 2) if grows else config


@torch.no_grad()
def stationary_acceptance(model: Model, log_w: torch.Tensor, generator,
                          n_chains: int = 256, n_moves: int = 16) -> float:
    """Mean min(1, exp(w' - w)) over exact samples x of pi (``n_chains`` chains of exact
    moves from flow samples, 20 moves of burn-in, ``n_moves`` recorded) paired with flow
    samples x' (log-weights ``log_w``): the long-run acceptance of flow-proposal Metropolis."""
    target = model.target
    x = model.sampler.sample(n_chains, generator)[0]
    for _ in range(20):
        x = target.exact_move(x, generator)
    w_pi = []
    for _ in range(n_moves):
        x = target.exact_move(x, generator)
        w_pi.append((target.log_prob(x) - model.sampler.log_prob(x)).double())
    w_pi = torch.cat(w_pi)
    w_q = log_w[: len(w_pi)] if len(log_w) >= len(w_pi) else log_w.repeat(len(w_pi))[:len(w_pi)]
    return float(torch.clamp(w_q - w_pi, max=0).exp().mean())


@torch.no_grad()
def quality(model: Model, trainer: Trainer, samples: int, generator) -> dict:
    """Bound, gap, ESS, Pareto k and flow-Metropolis acceptance of the current flow."""
    log_w = flow_draws(model, samples, 2048, generator, with_moments=False)[0]
    bound, exact = variational_bound(log_w), model.exact_ln_z()
    n_sites = model.config.target.L ** model.config.target.d
    chains = independent_metropolis(lambda n: model.sampler.sample(n, generator),
                                    model.target.log_prob, 256, 20, n_therm=10,
                                    generator=generator)
    return {"cpu_minutes": trainer.seconds / 60, "steps": trainer.step,
            "L": model.config.target.L, "ln_z_bound": bound.value, "ln_z_bound_err": bound.err,
            "relative_gap": relative_gap(bound.value, exact), "nats": exact - bound.value,
            "gap_per_site": gap_per_site(bound.value, exact, n_sites),
            "ess_per_sample": ess_per_sample(log_w), "pareto_k": pareto_k(log_w),
            "acceptance": chains.acceptance,
            "acceptance_stationary": stationary_acceptance(model, log_w, generator),
            "samples": samples}


def train_stage(config: RunConfig, minutes: float, marks: list[float], args,
                seed_state: dict | None, small: FlowConfig | None) -> tuple[Model, Trainer, list]:
    """Train one stage for ``minutes`` of CPU time, evaluating at the CPU-minute ``marks``."""
    model = Model.build(replace(config, train=replace(config.train, minutes=minutes),
                                init_from=None, grow_from=None))
    if seed_state is not None:
        grown = grown_state_dict(seed_state, small, model.config.flow)
        model.training_density.load_state_dict(grown)
    trainer = model.trainer(model.config.train, model.config.loss)
    generator = torch.Generator().manual_seed(args.seed + 1)
    points, start, excluded = [], time.process_time(), 0.0
    while trainer.progress < 1:
        trainer.train_step()
        trainer.seconds = time.process_time() - start - excluded
        if marks and trainer.seconds >= 60 * marks[0] * (1 - 1e-9) or trainer.progress >= 1:
            before = time.process_time()
            last = trainer.progress >= 1
            points.append(quality(model, trainer, args.eval_samples, generator))
            print(json.dumps(points[-1]), flush=True)
            excluded += time.process_time() - before
            marks = marks[1:]
            if last:
                break
    return model, trainer, points


def run_worker(args: argparse.Namespace) -> None:
    """One contender in this process: train (growing if asked), evaluate, keep the run."""
    torch.set_num_threads(1)
    config = contender_config(args, args.worker)
    stages = growth_stages(config, "unused") if config.grow_from else [(config, None)]
    spent, points, state, small = 0.0, [], None, None
    for stage_config, _ in stages:
        minutes = stage_config.train.minutes
        last = stage_config.target.L == args.L
        marks = [args.minutes * (k + 1) / args.evaluations - spent
                 for k in range(args.evaluations)] if last else []
        marks = [m for m in marks if m > 0]
        model, trainer, stage_points = train_stage(stage_config, minutes, marks, args, state,
                                                   small)
        for point in stage_points:
            point["cpu_minutes"] += spent
        points += stage_points
        spent += trainer.seconds / 60
        state, small = model.training_density.state_dict(), stage_config.flow
    generator = torch.Generator().manual_seed(args.seed + 2)
    final = quality(model, trainer, args.final_samples, generator)
    final["cpu_minutes"] = spent
    run = RunDirectory(Path(args.runs) / f"L{args.L}-{args.worker}")
    run.start(model.config.to_dict(), resume=False, force=True)
    run.save_checkpoint(trainer.state_dict())
    run.write_summary({"steps": trainer.step, "stopped_reason": "completed", **final})
    print("RESULT " + json.dumps({"contender": args.worker, "points": points, "final": final,
                                  "run_dir": str(run.path)}), flush=True)


def launch(name: str) -> subprocess.Popen:
    """The contender ``name`` in a child process with the same flags, on one thread."""
    return subprocess.Popen([sys.executable, "-m", "benchmarks.ising_training", *sys.argv[1:],
                             "--worker", name], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def collect(process: subprocess.Popen, name: str) -> dict:
    result = None
    for line in process.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
        else:
            print(f"[{name}] {line}", end="", flush=True)
    if process.wait() != 0 or result is None:
        raise RuntimeError(f"contender {name} failed (exit code {process.returncode})")
    return result


def main() -> None:
    args = parse_args()
    if args.worker:
        return run_worker(args)
    names, results, running = args.contenders.split(","), {}, []
    pending = list(names)
    while pending or running:
        while pending and len(running) < args.jobs:
            name = pending.pop(0)
            running.append((name, launch(name)))
        name, process = running.pop(0)
        results[name] = collect(process, name)
    rows = [[name, r["final"]["steps"], r["final"]["cpu_minutes"], r["final"]["relative_gap"],
             r["final"]["nats"], r["final"]["gap_per_site"], r["final"]["ess_per_sample"],
             r["final"]["pareto_k"], r["final"]["acceptance"],
             r["final"]["acceptance_stationary"]] for name, r in results.items()]
    print_table(["contender", "steps", "CPU min", "rel. gap", "nats", "gap/site", "ESS/sample",
                 "Pareto k", "acceptance", "stationary acc."], rows)
    reference = results.get("affine")
    if reference:
        for name, r in results.items():
            if name != "affine":
                ratio = r["final"]["nats"] / reference["final"]["nats"]
                print(f"nats {name} / affine: {ratio:.3f}")
    out = args.out or f"ising_training_L{args.L}.json"
    write_json(RESULTS / out, {"L": args.L, "T": T_CRITICAL_2D, "args": vars(args),
                               "environment": environment(torch.device("cpu"), 1),
                               "contenders": results})


if __name__ == "__main__":
    main()
