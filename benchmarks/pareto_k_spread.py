"""How far the Pareto k of a trained flow moves between fresh draws of its samples.

The training benchmarks judge a flow by the Pareto k of one draw of 65536 samples. This
draws ``--draws`` independent sets of ``--samples`` flow samples from each run directory
given, and reports the k of each draw and of all of them together, so that a difference
between two flows can be told from the estimator's own scatter:

    python -m benchmarks.pareto_k_spread RUN_DIR [RUN_DIR ...] --out pareto_k_spread.json
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import RESULTS, environment, print_table, write_json
from neuralrg.estimators import pareto_k
from neuralrg.jobs.model import load_model
from neuralrg.measure.sampling import flow_draws


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="trained run directories")
    parser.add_argument("--draws", type=int, default=6)
    parser.add_argument("--samples", type=int, default=65536, help="flow samples per draw")
    parser.add_argument("--seed", type=int, default=1000, help="draw i uses seed + i")
    parser.add_argument("--out", default="pareto_k_spread.json", help="JSON under results/")
    args = parser.parse_args()
    if args.draws < 1 or args.samples < 1000:
        parser.error(f"--draws {args.draws} must be >= 1 and --samples {args.samples} >= 1000")
    return args


def spread(run: str, draws: int, samples: int, seed: int) -> dict:
    """The k of each draw of ``samples`` flow samples of ``run`` and of all draws pooled."""
    model = load_model(run)[0]
    start, log_w = time.process_time(), []
    for i in range(draws):
        generator = torch.Generator().manual_seed(seed + i)
        log_w.append(flow_draws(model, samples, 2048, generator, with_moments=False)[0])
    return {"run": run, "k_per_draw": [pareto_k(w) for w in log_w],
            "k_pooled": pareto_k(torch.cat(log_w)), "cpu_seconds": time.process_time() - start}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    results = [spread(run, args.draws, args.samples, args.seed) for run in args.runs]
    print_table(["run", "k per draw (min - max)", f"k of {args.draws * args.samples}"],
                [[r["run"], f"{min(r['k_per_draw']):.3f} - {max(r['k_per_draw']):.3f}",
                  f"{r['k_pooled']:.3f}"] for r in results])
    write_json(RESULTS / args.out, {"args": vars(args),
                                    "environment": environment(torch.device("cpu"), 1),
                                    "runs": results})


if __name__ == "__main__":
    main()
