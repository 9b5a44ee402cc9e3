"""Cost of a training step with rational-quadratic spline blocks against the affine blocks,
and of the neighbourhood context.

For each architecture, three MERA flows that differ only in their blocks are trained side
by side on the relaxed 2D Ising model at T_c with the product's ``Trainer.train_step``:
``affine`` (the paper's RealNVP blocks on isolated patches), ``spline`` (spline then
bounded affine map, one conditioner network of width ``hidden_s`` per coupling, isolated
patches) and ``spline-context`` (the same with ``context=1``, the default: conditioners see
the neighbouring patches). After a few warm-up steps each, steps alternate (affine, spline,
spline-context, affine, ...) in one process; ratios of the medians are the cost factors.

Architectures: L = 16 with width 16 and one hidden layer (the small L = 16 flow), and
L = 8 with width 64 and two hidden layers (the main job's); both 1 disentangler, 4
couplings per block, batch 256.

    python -m benchmarks.spline_cost --threads 1
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict

import torch

from benchmarks.common import add_common_arguments, environment, print_table, setup, write_json
from benchmarks.overhead import alternate
from neuralrg.exact import T_CRITICAL_2D
from neuralrg.flows.flow import FlowConfig, build_flow
from neuralrg.targets.ising import RelaxedIsing
from neuralrg.training import TrainConfig, Trainer

ARCHITECTURES = {
    "L16-w16-depth1": dict(L=16, hidden_s=16, hidden_t=16, mlp_depth=1),
    "L8-w64-depth2": dict(L=8, hidden_s=64, hidden_t=64, mlp_depth=2),
}
VARIANTS = {"affine": dict(coupling="affine", context=0),
            "spline": dict(coupling="spline", context=0),
            "spline-context": dict(coupling="spline", context=1)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--architectures", nargs="+", choices=list(ARCHITECTURES),
                   default=list(ARCHITECTURES))
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--bins", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per flow first")
    p.add_argument("--repeats", type=int, default=30, help="timed steps per flow")
    add_common_arguments(p, "spline_cost.json")
    return p.parse_args(argv)


def flow_config(architecture: str, variant: str, bins: int) -> FlowConfig:
    return FlowConfig(d=2, layout="mera", n_disentanglers=1, n_layers=4, bins=bins,
                      **VARIANTS[variant], **ARCHITECTURES[architecture])


def trainer(architecture: str, variant: str, args, device: torch.device) -> Trainer:
    """A Trainer for the MERA flow of ``architecture`` built with ``variant``'s blocks."""
    config = flow_config(architecture, variant, args.bins)
    torch.manual_seed(args.seed)
    flow = build_flow(config).to(device)
    target = RelaxedIsing(config.L, T_CRITICAL_2D)
    train = TrainConfig(steps=10**9, batch_size=args.batch_size, lr_schedule="constant",
                        seed=args.seed)
    return Trainer(flow, target.log_prob, train)


def measure(architecture: str, args, device: torch.device) -> dict:
    trainers = {v: trainer(architecture, v, args, device) for v in VARIANTS}
    for t in trainers.values():
        for _ in range(args.warmup):
            t.train_step()
    times = alternate({c: t.train_step for c, t in trainers.items()}, args.repeats, device)
    medians = {v: statistics.median(times[v]) for v in VARIANTS}
    return {
        "flow": {v: asdict(flow_config(architecture, v, args.bins)) for v in VARIANTS},
        "parameters": {v: sum(p.numel() for p in t.flow.parameters())
                       for v, t in trainers.items()},
        "median_seconds": medians, "ratio": medians["spline"] / medians["affine"],
        "context_ratio": medians["spline-context"] / medians["spline"],
        "all_seconds": times,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup(args.threads, args.seed, args.device)
    results = {name: measure(name, args, device) for name in args.architectures}
    print(f"\nTrainer.train_step, batch {args.batch_size}, {args.threads} thread(s), "
          f"bins {args.bins}, median of {args.repeats} alternating steps")
    print_table(["architecture", *(f"{v} ms" for v in VARIANTS), "spline / affine",
                 "context / spline", *(f"{v} params" for v in VARIANTS)],
                [[name, *(1e3 * r["median_seconds"][v] for v in VARIANTS), r["ratio"],
                  r["context_ratio"], *(r["parameters"][v] for v in VARIANTS)]
                 for name, r in results.items()])
    write_json(args.out, {
        "benchmark": "spline_cost",
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "environment": environment(device, args.threads),
        "architectures": {name: ARCHITECTURES[name] for name in args.architectures},
        "results": results,
    })


if __name__ == "__main__":
    main()
