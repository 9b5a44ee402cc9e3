"""Quality benchmark: MERA-like NeuralRG on the 2D Ising model at T_c, trained for a CPU
budget; the relative gap to the exact ln Z at evenly spaced points (default: midpoint and end).

    python benchmarks/ising_training.py --L 16 --minutes 20 --threads 1

The budget is CPU time of this process (with --threads 1, one core's time), so other
load on a shared machine does not eat into it; evaluations are excluded. The final
model is written as an ordinary run directory (``neuralrg sample``/``analyze`` work on
it) and the figures as JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from neuralrg.config import RunConfig
from neuralrg.exact import T_CRITICAL_2D
from neuralrg.flows.flow import Z2_MODES, FlowConfig
from neuralrg.jobs import Model, evaluate
from neuralrg.runs import RunDirectory, atomic_write_json
from neuralrg.targets import TargetConfig
from neuralrg.training import TrainConfig, Trainer

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--L", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=20.0, help="CPU-time budget")
    parser.add_argument("--evaluations", type=int, default=2,
                        help="evenly spaced evaluations over the budget (default 2: half, end)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--mlp-depth", type=int, default=FlowConfig.mlp_depth,
                        help="hidden layers per s/t network (default: the product's)")
    parser.add_argument("--n-disentanglers", type=int, default=FlowConfig.n_disentanglers)
    parser.add_argument("--z2", choices=Z2_MODES[1:], default="eval",
                        help="Z2 symmetrisation: 'eval' (the product's default) or 'train'")
    parser.add_argument("--results", default=None,
                        help="JSON file name under benchmarks/results (default: by L)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--run-dir", default=None, help="default: runs/bench-ising-L<L>")
    args = parser.parse_args()
    if args.evaluations < 1:
        parser.error(f"--evaluations={args.evaluations} must be >= 1")
    return args


def gap_now(model: Model, trainer: Trainer, exact: float, samples: int) -> dict:
    config = replace(model.config, eval=replace(model.config.eval, samples=samples))
    summary = evaluate(replace(model, config=config), trainer.generator, exact)
    keys = ("ln_z_bound", "ln_z_bound_err", "relative_gap", "gap_per_site", "ln_z_is",
            "ln_z_is_err", "ess_per_sample", "acceptance")
    return {"cpu_minutes": trainer.seconds / 60, "steps": trainer.step,
            **{k: summary[k] for k in keys}}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    config = RunConfig(
        target=TargetConfig(L=args.L, T=T_CRITICAL_2D),
        flow=FlowConfig(L=args.L, n_layers=args.n_layers, hidden_s=args.hidden,
                        hidden_t=args.hidden, mlp_depth=args.mlp_depth,
                        n_disentanglers=args.n_disentanglers, z2_symmetric=args.z2),
        train=TrainConfig(steps=10**9, minutes=args.minutes, batch_size=args.batch_size,
                          lr=args.lr, seed=args.seed),
        device=args.device,
    )
    model = Model.build(config)
    exact = model.exact_ln_z()
    trainer = Trainer(model.trained, model.target.log_prob, config.train, config.loss,
                      flip_symmetric=True, config_json=json.dumps(config.to_dict()))
    marks = [args.minutes * (k + 1) / args.evaluations for k in range(args.evaluations)]
    checkpoints, spent_elsewhere = [], 0.0
    start = time.process_time()
    while trainer.progress < 1:
        trainer.train_step()
        trainer.seconds = time.process_time() - start - spent_elsewhere
        if trainer.seconds >= 60 * marks[0] * (1 - 1e-9) or trainer.progress >= 1:
            before = time.process_time()
            checkpoints.append(gap_now(model, trainer, exact, samples=4096))
            print(json.dumps(checkpoints[-1]), flush=True)
            spent_elsewhere += time.process_time() - before
            marks = marks[1:] or [float("inf")]
    run = RunDirectory(args.run_dir or f"runs/bench-ising-L{args.L}")
    run.start(config.to_dict(), resume=False, force=True)
    run.save_checkpoint(trainer.state_dict())
    summary = evaluate(model, trainer.generator, exact)
    summary.update(steps=trainer.step, wall_seconds=trainer.seconds, stopped_reason="completed")
    run.write_summary(summary)
    result = {"L": args.L, "T": T_CRITICAL_2D, "threads": args.threads, "args": vars(args),
              "ln_z_exact": exact, "checkpoints": checkpoints, "final": summary,
              "run_dir": str(run.path)}
    RESULTS.mkdir(exist_ok=True)
    atomic_write_json(RESULTS / (args.results or f"ising_training_L{args.L}.json"), result)
    print("relative gap after " + ", ".join(
        f"{c['cpu_minutes']:.3g} CPU min: {c['relative_gap']:.3e}" for c in checkpoints))
    headline = {k: summary[k] for k in ("relative_gap", "acceptance", "ess_per_sample")}
    print(f"final: {json.dumps(headline)}")


if __name__ == "__main__":
    main()
