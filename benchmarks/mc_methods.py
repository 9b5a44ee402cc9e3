"""Which Markov chain gives reliable numbers, and how fast: flow-proposal Metropolis, the
hybrid kernel and latent-space HMC on one trained run, side by side in one process.

For every method and chain length the product's own measurement runs (overdispersed
starts, burn-in, Gamma-method error bars, split R-hat, bulk ESS, verdicts), timed; the
table shows per observable the value against the exact one (pull), tau_int, R-hat and
whether the product calls it reliable.

    python -m benchmarks.mc_methods RUN_DIR --methods mh,hybrid,hmc-latent --steps 250,1000
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from benchmarks.common import RESULTS, environment, print_table, setup, write_json
from neuralrg.jobs import load_model
from neuralrg.measure.sampling import METHODS, SampleConfig, flow_draws, run_sampler
from neuralrg.measure.summary import summarise

SHOWN = ("energy_per_site", "heat_capacity_per_site", "m2")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--methods", default="mh,hybrid,hmc-latent")
    parser.add_argument("--steps", default="250,1000", help="recorded steps, comma-separated")
    parser.add_argument("--chains", type=int, default=SampleConfig.chains)
    parser.add_argument("--therm", type=int, default=SampleConfig.therm)
    parser.add_argument("--hmc-step-size", type=float, default=0.1)
    parser.add_argument("--is-samples", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON name under benchmarks/results")
    args = parser.parse_args()
    for method in args.methods.split(","):
        if method not in METHODS:
            parser.error(f"--methods: {method!r} is unknown; allowed: {', '.join(METHODS)}")
    return args


def row(method: str, steps: int, seconds: float, summary: dict) -> list:
    cells = [method, steps, seconds, summary["acceptance"]]
    for name in SHOWN:
        entry = summary["observables"][name]
        chain = entry["estimates"]["markov_chain"]
        cells += [entry["pull"], chain["tau_int"], chain["rhat"],
                  "yes" if entry["reliable"] else "no"]
    return cells


def main() -> None:
    args = parse_args()
    setup(args.threads, args.seed, "cpu")
    model, run = load_model(args.run_dir)
    generator = torch.Generator().manual_seed(args.seed)
    draws = flow_draws(model, args.is_samples, 1024, generator)
    results, rows = [], []
    for method in args.methods.split(","):
        for steps in (int(s) for s in args.steps.split(",")):
            config = replace(SampleConfig(), method=method, chains=args.chains,
                             therm=args.therm, steps=steps, step_size=args.hmc_step_size,
                             seed=args.seed)
            start = time.perf_counter()
            result = run_sampler(model, config, generator)
            seconds = time.perf_counter() - start
            summary = summarise(model, config, result, generator, draws).to_dict()
            results.append({"method": method, "steps": steps, "chains": args.chains,
                            "therm": args.therm, "seconds": seconds, "summary": summary})
            rows.append(row(method, steps, seconds, summary))
            print(rows[-1], flush=True)
    headers = ["method", "steps", "seconds", "acceptance"]
    for name in SHOWN:
        short = {"energy_per_site": "E", "heat_capacity_per_site": "C", "m2": "m2"}[name]
        headers += [f"{short} pull", f"{short} tau", f"{short} R-hat", f"{short} ok"]
    print_table(headers, rows)
    name = args.out or f"mc_methods_L{model.config.target.L}.json"
    write_json(RESULTS / name, {"run_dir": str(run.path), "L": model.config.target.L,
                                "environment": environment(torch.device("cpu"), args.threads),
                                "results": results})


if __name__ == "__main__":
    main()
