"""Sampling-quality benchmark on a trained run: flow-proposal Metropolis acceptance, ESS per
sample, importance-sampled ln Z against the exact value, and latent- vs physical-space HMC
integrated autocorrelation times at equal numbers of gradient evaluations.

    python benchmarks/sampling_quality.py RUN_DIR --threads 1
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from neuralrg.estimators import ess_per_sample, importance_ln_z, pareto_k
from neuralrg.jobs import load_model
from neuralrg.jobs.runs import atomic_write_json
from neuralrg.mcmc import hmc_latent, hmc_physical, independent_metropolis, integrated_autocorr_time
from neuralrg.measure.observables import chain_moments
from neuralrg.measure.sampling import flow_draws

RESULTS = Path(__file__).resolve().parent / "results"
STEP_SIZES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--is-samples", type=int, default=65536)
    parser.add_argument("--chains", type=int, default=256)
    parser.add_argument("--mh-steps", type=int, default=200)
    parser.add_argument("--hmc-chains", type=int, default=64)
    parser.add_argument("--hmc-trajectories", type=int, default=400)
    parser.add_argument("--n-leapfrog", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def importance(model, n: int, generator) -> dict:
    w = flow_draws(model, n, 2048, generator, with_moments=False)[0]
    est, exact = importance_ln_z(w), model.exact_ln_z()
    return {"ln_z_is": est.value, "ln_z_is_err": est.err, "ln_z_exact": exact,
            "relative_error": abs(est.value - exact) / abs(exact),
            "pull": (est.value - exact) / est.err, "ess_per_sample": ess_per_sample(w),
            "pareto_k": pareto_k(w)}


def metropolis(model, chains: int, steps: int, generator) -> dict:
    result = independent_metropolis(lambda n: model.sampler.sample(n, generator),
                                    model.target.log_prob, chains, steps, n_therm=20,
                                    generator=generator)
    return {"acceptance": result.acceptance, **energy_and_m2_taus(model, result, generator)}


def energy_and_m2_taus(model, result, generator) -> dict:
    """tau_int of the energy and of m^2 of spins drawn given the recorded states."""
    moments = chain_moments(model.target, result.samples.detach(), generator)
    return {"tau_int_m2": integrated_autocorr_time(moments[2]),
            "tau_int_energy": integrated_autocorr_time(moments[0])}


def run_hmc(model, kind: str, step_size: float, args, trajectories: int, generator):
    common = dict(step_size=step_size, n_leapfrog=args.n_leapfrog, n_steps=trajectories,
                  n_therm=20, generator=generator)
    if kind == "latent":
        z0 = model.flow.sample_latent(args.hmc_chains, generator)
        return hmc_latent(model.flow.bijector, model.target.log_prob, z0, **common)
    with torch.no_grad():
        x0, _ = model.sampler.sample(args.hmc_chains, generator)
    return hmc_physical(model.target.log_prob, x0, **common)


def tuned_step_size(model, kind: str, args, generator) -> float:
    """The step size whose short-run acceptance is closest to 0.75."""
    trial = {s: run_hmc(model, kind, s, args, 20, generator).acceptance for s in STEP_SIZES}
    return min(trial, key=lambda s: abs(trial[s] - 0.75))


def hmc(model, kind: str, args, generator) -> dict:
    step = tuned_step_size(model, kind, args, generator)
    result = run_hmc(model, kind, step, args, args.hmc_trajectories, generator)
    return {"step_size": step, "n_leapfrog": args.n_leapfrog, "acceptance": result.acceptance,
            "n_grad_evals": result.n_grad_evals, **energy_and_m2_taus(model, result, generator)}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    model, run = load_model(args.run_dir)
    generator = torch.Generator().manual_seed(args.seed)
    result = {"run_dir": str(run.path), "L": model.config.target.L, "args": vars(args)}
    result["importance"] = importance(model, args.is_samples, generator)
    print("importance sampling:", result["importance"], flush=True)
    result["metropolis"] = metropolis(model, args.chains, args.mh_steps, generator)
    print("metropolis:", result["metropolis"], flush=True)
    for kind in ("latent", "physical"):
        result[f"hmc_{kind}"] = hmc(model, kind, args, generator)
        print(f"hmc {kind}:", result[f"hmc_{kind}"], flush=True)
    ratio = result["hmc_physical"]["tau_int_m2"] / result["hmc_latent"]["tau_int_m2"]
    result["tau_m2_ratio_physical_over_latent"] = ratio if math.isfinite(ratio) else None
    RESULTS.mkdir(exist_ok=True)
    atomic_write_json(RESULTS / f"sampling_quality_L{result['L']}.json", result)
    print(f"tau_int(m^2) physical / latent at equal gradient evaluations: {ratio:.2f}")


if __name__ == "__main__":
    main()
