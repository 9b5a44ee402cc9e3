"""The sample job: exact sampling from a trained run by flow-proposal Metropolis or HMC.

Writes ``samples-<method>.h5`` (configurations, log-weights, spins, energies and
magnetisations, with the settings as attributes; readable with h5py or any HDF5
tool) and ``samples-<method>.json`` (acceptance, observables with error bars next to
their exact values, integrated autocorrelation times).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import h5py
import numpy as np
import torch

from neuralrg import distributed
from neuralrg.mcmc import hmc_latent, hmc_physical, independent_metropolis, integrated_autocorr_time
from neuralrg.observables import ising_observables, spin_series
from neuralrg.runs import atomic_write_json

METHODS = ("mh", "hmc-latent", "hmc-physical")


@dataclass(frozen=True)
class SampleConfig:
    """Sampler settings; ``step_size`` and ``n_leapfrog`` are for the HMC methods."""

    method: str = "mh"
    chains: int = 256
    therm: int = 10
    steps: int = 100
    skip: int = 0
    step_size: float = 0.1
    n_leapfrog: int = 10
    seed: int = 0


def validate_sample_config(config: SampleConfig) -> None:
    if config.method not in METHODS:
        raise ValueError(f"method={config.method!r} is unknown; allowed: {', '.join(METHODS)}")
    for name, low in (("chains", 1), ("therm", 0), ("steps", 1), ("skip", 0),
                      ("n_leapfrog", 1), ("seed", 0)):
        value = getattr(config, name)
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name.replace('_', '-')}={value!r} must be an integer >= {low}")
    if not (math.isfinite(config.step_size) and config.step_size > 0):
        raise ValueError(f"step-size={config.step_size!r} must be a finite number > 0")


def run_sampler(model, config: SampleConfig, generator: torch.Generator):
    """Metropolis or HMC result for ``model`` (a :class:`neuralrg.jobs.Model`)."""
    target, common = model.target, dict(n_steps=config.steps, n_therm=config.therm,
                                         n_skip=config.skip, generator=generator)
    if config.method == "mh":
        with torch.no_grad():
            return independent_metropolis(lambda n: model.sampler.sample(n, generator),
                                          target.log_prob, config.chains, **common)
    hmc_args = dict(step_size=config.step_size, n_leapfrog=config.n_leapfrog, **common)
    if config.method == "hmc-physical":
        with torch.no_grad():
            start, _ = model.sampler.sample(config.chains, generator)
        return hmc_physical(target.log_prob, start, **hmc_args)
    z0 = model.flow.sample_latent(config.chains, generator)
    return hmc_latent(model.flow.bijector, target.log_prob, z0, **hmc_args)


def summarise(model, config: SampleConfig, result, generator: torch.Generator) -> dict:
    summary = {**asdict(config), "acceptance": result.acceptance,
               "nonfinite_rejections": result.n_nonfinite,
               "tau_int_log_pi": _tau(result.log_pi.cpu().numpy())}
    if model.is_ising:
        series = spin_series(model.target, result.samples, generator)
        summary.update(tau_int_energy=_tau(series["e"]), tau_int_m2=_tau(series["m"] ** 2),
                       observables=ising_observables(model.target, result.samples, generator))
    if hasattr(result, "n_grad_evals"):
        summary["n_grad_evals"] = result.n_grad_evals
    return summary


def _tau(series: np.ndarray) -> float | None:
    value = integrated_autocorr_time(series)
    return None if not math.isfinite(value) else float(value)


def write_samples(path: Path, model, config: SampleConfig, result, summary: dict,
                  generator: torch.Generator) -> None:
    samples = result.samples.detach()
    with h5py.File(path, "w") as handle:
        handle["configurations"] = samples.cpu().numpy()
        handle["log_pi"] = result.log_pi.cpu().numpy()
        if hasattr(result, "log_q"):
            handle["log_q"] = result.log_q.cpu().numpy()
        if model.is_ising:
            flat = samples.reshape(-1, *model.target.event_shape)
            spins = model.target.sample_spins(flat, generator).reshape(samples.shape)
            handle["spins"] = spins.to(torch.int8).cpu().numpy()
        for key, value in summary.items():
            if isinstance(value, (int, float, str)):
                handle.attrs[key] = value


def gathered(result):
    """The result of all ranks' chains (chains along dimension 1 of the series)."""
    if distributed.world_size() == 1:
        return result
    series = {name: distributed.gather_samples(getattr(result, name), dim=1)
              for name in ("samples", "log_pi", "log_q", "energies") if hasattr(result, name)}
    per_chain = distributed.gather_samples(result.acceptance_per_chain)
    return replace(result, **series, acceptance_per_chain=per_chain,
                   acceptance=float(per_chain.mean()))


def sample_job(model, run_dir: str | Path, config: SampleConfig) -> dict:
    """Sample from a trained model and write the samples and their summary into ``run_dir``.

    Under ``torchrun`` the chains are split over the ranks, each with its own seed, and
    gathered on rank 0, which writes the files; other ranks return an empty dict.
    """
    validate_sample_config(config)
    device = next(model.flow.parameters()).device
    rank = distributed.rank()
    local = replace(config, chains=distributed.local_share(config.chains),
                    seed=distributed.rank_seed(config.seed, rank))
    generator = torch.Generator(device=device).manual_seed(local.seed)
    result = gathered(run_sampler(model, local, generator))
    if rank > 0:
        return {}
    summary = summarise(model, config, result, generator)
    run_dir = Path(run_dir)
    path = run_dir / f"samples-{config.method}.h5"
    write_samples(path, model, config, result, summary, generator)
    atomic_write_json(run_dir / f"samples-{config.method}.json", summary)
    return summary
