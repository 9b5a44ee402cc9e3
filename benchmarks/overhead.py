"""A training step's time against its bare matrix multiplications at the same shapes.

One training step is run with forward hooks on every ``nn.Linear`` that record
(rows, in_features, out_features) and whether the input needs a gradient. The
replay then performs, for every recorded call and with preallocated tensors of
those shapes, the forward ``addmm`` and the backward products ``G W`` (only when the
input needs a gradient) and ``G^T X``: all the matmul work of the step and nothing
else. Steps and replays alternate; the ratio of the medians is the overhead
(acceptance: <= 3).

Two steps are timed: the product's ``neuralrg.training.Trainer.train_step`` (with its
finiteness checks and learning-rate schedule) and a bare step (sample, loss, backward,
Adam).

    python -m benchmarks.overhead
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from benchmarks.common import (
    add_common_arguments,
    environment,
    fmt,
    print_table,
    setup,
    timed,
    write_json,
)
from neuralrg.exact import T_CRITICAL_2D
from neuralrg.flows.flow import FlowConfig, build_flow
from neuralrg.targets.ising import RelaxedIsing
from neuralrg.training import TrainConfig, Trainer


@dataclass(frozen=True)
class LinearCall:
    """The shape of one ``nn.Linear`` application."""

    rows: int
    n_in: int
    n_out: int
    input_grad: bool


def record_linear_calls(model: nn.Module, step: Callable[[], Any]) -> list[LinearCall]:
    """Run ``step`` once and return the shapes of every Linear call it made."""
    calls: list[LinearCall] = []

    def hook(module: nn.Linear, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        x = inputs[0]
        calls.append(LinearCall(x.numel() // module.in_features, module.in_features,
                                module.out_features, x.requires_grad))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        step()
    finally:
        for handle in handles:
            handle.remove()
    return calls


class MatmulReplay:
    """The matmuls of a list of Linear calls, on preallocated random tensors."""

    def __init__(self, calls: list[LinearCall], device: torch.device, dtype: torch.dtype):
        self.calls, self.tensors = calls, {}
        for c in calls:
            key = (c.rows, c.n_in, c.n_out)
            if key not in self.tensors:
                self.tensors[key] = tuple(torch.randn(shape, device=device, dtype=dtype) for shape
                                          in [(c.rows, c.n_in), (c.n_out, c.n_in), (c.n_out,),
                                              (c.rows, c.n_out)])

    @property
    def flops(self) -> int:
        return sum(2 * c.rows * c.n_in * c.n_out * (3 if c.input_grad else 2) for c in self.calls)

    def __call__(self) -> None:
        for c in self.calls:
            x, w, b, g = self.tensors[(c.rows, c.n_in, c.n_out)]
            torch.addmm(b, x, w.t())
            if c.input_grad:
                torch.mm(g, w)
            torch.mm(g.t(), x)


def bare_step(flow: nn.Module, target: RelaxedIsing, batch: int) -> Callable[[], None]:
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        x, log_q = flow.sample(batch)
        (log_q - target.log_prob(x)).mean().backward()
        optimizer.step()

    return step


def alternate(functions: dict[str, Callable[[], Any]], repeats: int, device) -> dict[str, list]:
    """Time every function once per round, ``repeats`` rounds, after one warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for round_index in range(repeats + 1):
        for name, fn in functions.items():
            seconds = timed(fn, device)[1]
            if round_index:
                times[name].append(seconds)
    return times


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--L", type=int, default=16)
    p.add_argument("--layout", choices=("mera", "tebd"), default="mera")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=20)
    add_common_arguments(p, "overhead.json")
    return p.parse_args(argv)


def build(args, device: torch.device):
    torch.manual_seed(args.seed)
    flow = build_flow(FlowConfig(L=args.L, d=2, layout=args.layout)).to(device)
    target = RelaxedIsing(args.L, T_CRITICAL_2D)
    config = TrainConfig(steps=10**9, batch_size=args.batch_size, lr_schedule="constant",
                         seed=args.seed)
    return flow, target, Trainer(flow, target.log_prob, config)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = setup(args.threads, args.seed, args.device)
    flow, target, trainer = build(args, device)
    replay = MatmulReplay(record_linear_calls(flow, trainer.train_step), device,
                          next(flow.parameters()).dtype)
    times = alternate({"trainer step": trainer.train_step,
                       "bare step": bare_step(flow, target, args.batch_size),
                       "matmul replay": replay}, args.repeats, device)
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratios = {name: medians[name] / medians["matmul replay"] for name in medians}
    print(f"\nL={args.L} {args.layout}, batch {args.batch_size}: {len(replay.calls)} Linear "
          f"calls per step, {replay.flops / 1e9:.3g} GFLOP of matmuls")
    print_table(["what", "median s", "ratio to matmuls"],
                [[name, medians[name], ratios[name]] for name in medians])
    print(f"\noverhead ratio (trainer step / bare matmuls): {fmt(ratios['trainer step'])} "
          "(acceptance <= 3)")
    write_json(args.out, {
        "benchmark": "overhead", "config": {k: v for k, v in vars(args).items() if k != "out"},
        "environment": environment(device, args.threads), "n_linear_calls": len(replay.calls),
        "matmul_flops": replay.flops, "median_seconds": medians, "ratio_to_matmuls": ratios,
        "all_seconds": times,
        "linear_shapes": sorted({(c.rows, c.n_in, c.n_out) for c in replay.calls})})


if __name__ == "__main__":
    main()
