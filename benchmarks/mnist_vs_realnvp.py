"""MERA-like NeuralRG against a plain RealNVP on MNIST: held-out bits/dim in equal wall time.

Both contenders model the same padded 32 x 32 pictures through the same dequantisation and
logit transform (``neuralrg.images.ImageModel``) and are scored in the same convention
(bits per original 28 x 28 pixel, the padding charged to them). Data: the official 10,000
test images in ``--data-dir``, split with a fixed seed into 9,000 for training and 1,000
held out.

* ``neuralrg``: the product's image model (``build_image_flow`` with ``--n-disentanglers``,
  ``--n-layers``, ``--hidden``, ``--mlp-depth``; positional patch couplings; defaults as in
  ``neuralrg mnist``).
* ``realnvp``: a non-hierarchical RealNVP over the whole picture: ``--rnvp-couplings``
  affine couplings with alternating checkerboard masks; s and t come from one small conv net
  (3x3 conv, 1x1 conv, 3x3 conv, ELU, ``--rnvp-channels`` channels, ``auto`` = the width
  that matches NeuralRG's parameter count), s bounded by a learned scale x tanh. Several
  widths may be given (e.g. ``auto 48``: a parameter-matched and a lighter, faster one);
  each becomes its own contender ``realnvp-c<width>``.

Both train by maximum likelihood with the product's ``Trainer`` (Adam, cosine schedule
over the time budget, same batch size and learning rate), in alternating chunks of
``--chunk-seconds`` in one process so that both see the same machine load; only a
contender's own chunks count towards its ``--minutes``. Then (untimed) bits/dim on the
held-out images and on the first ``--n-train-eval`` training images.

    python -m benchmarks.mnist_vs_realnvp --minutes 30 --threads 1

Duration: (number of contenders) x ``--minutes`` of training plus a few minutes of scoring
(the parameter-matched RealNVP costs ~0.3 GMAC per picture); ``--minutes 30`` with the
default two contenders takes about 65 minutes.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from benchmarks.common import add_common_arguments, environment, print_table, setup, write_json
from neuralrg.flows.bijector import Bijector, Chain
from neuralrg.flows.flow import Flow
from neuralrg.images import (
    ImageFlowConfig,
    ImageModel,
    MaximumLikelihood,
    build_image_flow,
    evaluate_bits_per_dim,
)
from neuralrg.images.mnist import load_mnist, split_train_heldout
from neuralrg.training import TrainConfig, Trainer

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


class CheckerboardConvCoupling(Bijector):
    """x_b <- x_b exp(s(x_a)) + t(x_a) on one colour of a checkerboard over the whole picture."""

    def __init__(self, L: int, parity: int, channels: int):
        super().__init__()
        rows, cols = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
        self.register_buffer("mask", ((rows + cols) % 2 == parity).float())
        self.net = nn.Sequential(
            nn.Conv2d(2, channels, 3, padding=1), nn.ELU(),
            nn.Conv2d(channels, channels, 1), nn.ELU(),
            nn.Conv2d(channels, 2, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(1))

    def _log_scale_and_shift(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mask = self.mask.to(x.dtype)
        features = torch.stack([x * mask, mask.expand_as(x)], dim=1)
        s, t = self.net(features).unbind(1)
        return self.scale * torch.tanh(s) * (1 - mask), t * (1 - mask)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._log_scale_and_shift(z)
        return z * torch.exp(s) + t, s.sum((1, 2))

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._log_scale_and_shift(x)
        return (x - t) * torch.exp(-s), -s.sum((1, 2))


def build_realnvp(L: int, n_couplings: int, channels: int) -> Flow:
    """Plain RealNVP: ``n_couplings`` checkerboard couplings, alternating colours."""
    couplings = [CheckerboardConvCoupling(L, k % 2, channels) for k in range(n_couplings)]
    return Flow(Chain(couplings), (L, L))


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matching_channels(target: int, L: int, n_couplings: int) -> int:
    """The conv width whose RealNVP has the parameter count closest to ``target``."""
    def gap(c: int) -> int:
        return abs(n_parameters(build_realnvp(L, n_couplings, c)) - target)

    return min(range(4, 513), key=gap)


def load_split(data_dir: Path, n_heldout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_mnist(data_dir, "test")
    (train, _), (held, _) = split_train_heldout(images, labels, n_heldout, seed)
    return train, held


def train_chunk(trainer: Trainer, seconds: float) -> None:
    """Train for about ``seconds`` (or until the budget is spent), counting only this time."""
    start = time.perf_counter()
    while trainer.progress < 1 and time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        trainer.train_step()
        trainer.seconds += time.perf_counter() - tick


def contenders(args, device: torch.device) -> dict[str, ImageModel]:
    config = ImageFlowConfig(n_disentanglers=args.n_disentanglers, n_layers=args.n_layers,
                             hidden_s=args.hidden, hidden_t=args.hidden,
                             mlp_depth=args.mlp_depth)
    torch.manual_seed(args.seed)
    models = {"neuralrg": ImageModel(build_image_flow(config, 32), (28, 28), config.alpha)}
    for width in args.rnvp_channels:
        if width == "auto":
            width = matching_channels(n_parameters(models["neuralrg"]), 32, args.rnvp_couplings)
        flow = build_realnvp(32, args.rnvp_couplings, int(width))
        models[f"realnvp-c{width}"] = ImageModel(flow, (28, 28), config.alpha)
    return {name: model.to(device) for name, model in models.items()}


def run(args) -> dict:
    device = setup(args.threads, args.seed, args.device)
    train, held = load_split(args.data_dir, args.n_heldout, args.seed)
    models = contenders(args, device)
    config = TrainConfig(steps=10**9, batch_size=args.batch_size, lr=args.lr,
                         minutes=args.minutes, seed=args.seed)
    trainers, data = {}, {}
    for name, model in models.items():
        data[name] = (model.prepare(train), model.prepare(held))
        objective = MaximumLikelihood(model, data[name][0], args.batch_size)
        trainers[name] = Trainer(model, None, config, objective=objective,
                                 max_grad_norm=args.max_grad_norm)
    while any(t.progress < 1 for t in trainers.values()):
        for trainer in trainers.values():
            train_chunk(trainer, args.chunk_seconds)
        print("  ".join(f"{n}: {t.step} steps, {t.seconds:.0f} s" for n, t in trainers.items()),
              flush=True)
    results = {}
    for name, model in models.items():
        model.eval()
        held_bpd, held_err = evaluate_bits_per_dim(model, data[name][1], seed=args.seed)
        train_px = data[name][0][: args.n_train_eval]
        train_bpd, train_err = evaluate_bits_per_dim(model, train_px, seed=args.seed)
        t = trainers[name]
        results[name] = {
            "bits_per_dim_heldout": held_bpd, "bits_per_dim_heldout_err": held_err,
            "bits_per_dim_train": train_bpd, "bits_per_dim_train_err": train_err,
            "n_parameters": n_parameters(model), "steps": t.step,
            "train_seconds": t.seconds, "skipped_steps": t.skipped_steps,
        }
    return {"results": results, "settings": {k: _plain(v) for k, v in vars(args).items()},
            "n_train": len(train), "n_heldout": len(held),
            "environment": environment(device, args.threads)}


def _plain(value):
    return str(value) if isinstance(value, Path) else value


def print_results(payload: dict) -> None:
    rows = []
    for name, r in payload["results"].items():
        rows.append([name, r["n_parameters"], r["steps"], r["train_seconds"],
                     f"{r['bits_per_dim_heldout']:.4f}", r["bits_per_dim_heldout_err"],
                     f"{r['bits_per_dim_train']:.4f}"])
    print(f"\nMNIST {payload['n_train']}/{payload['n_heldout']} split, "
          f"{payload['settings']['minutes']} min of training each; bits per 28x28 pixel")
    print_table(["model", "parameters", "steps", "train s", "bits/dim held-out", "± err",
                 f"bits/dim train (first {payload['settings']['n_train_eval']})"], rows)
    r = payload["results"]
    for name in r:
        if name != "neuralrg":
            gap = r[name]["bits_per_dim_heldout"] - r["neuralrg"]["bits_per_dim_heldout"]
            print(f"held-out bits/dim, {name} - neuralrg: {gap:+.4f}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser, "mnist_vs_realnvp.json")
    add = parser.add_argument
    add("--minutes", type=float, default=30.0, help="training wall time per contender")
    add("--data-dir", type=Path, default=SHARED_MNIST, help="folder with t10k-* IDX files")
    add("--n-heldout", type=int, default=1000)
    add("--batch-size", type=int, default=32)
    add("--lr", type=float, default=3e-3)
    add("--max-grad-norm", type=float, default=50.0)
    add("--chunk-seconds", type=float, default=10.0)
    add("--n-disentanglers", type=int, default=1)
    add("--n-layers", type=int, default=4)
    add("--hidden", type=int, default=32, help="NeuralRG s and t widths")
    add("--mlp-depth", type=int, default=2, help="NeuralRG hidden layers per s/t network")
    add("--rnvp-couplings", type=int, default=8)
    add("--rnvp-channels", nargs="+", default=["auto"],
        help="conv widths, or auto (match NeuralRG's parameters); one contender each")
    add("--n-train-eval", type=int, default=2000, help="training images scored at the end")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.minutes) and args.minutes > 0):
        parser.error(f"--minutes={args.minutes} must be > 0")
    if any(w != "auto" and not (w.isdigit() and int(w) > 0) for w in args.rnvp_channels):
        parser.error(f"--rnvp-channels takes positive integers or auto, got {args.rnvp_channels}")
    if args.n_train_eval < 1:
        parser.error(f"--n-train-eval={args.n_train_eval} must be >= 1")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    payload = run(args)
    print_results(payload)
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
