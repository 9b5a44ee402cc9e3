"""The sample job: exact sampling from a trained run, written to ``samples-<method>.h5``
(configurations, log-weights, spins drawn given x where the target has spins; settings as
attributes; readable with h5py or any HDF5 tool) and ``samples-<method>.json`` (acceptance,
one verdict entry per observable and for ln Z, autocorrelation times)."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import h5py
import torch

from neuralrg import distributed
from neuralrg.jobs.model import RunModel
from neuralrg.mcmc.smc import SMCRepeats
from neuralrg.progress import Progress
from neuralrg.runs import atomic_write_json
from neuralrg.sampling import SampleConfig, run_sampler, summarise, validate_sample_config


def write_samples(path: Path, model, config: SampleConfig, result, summary: dict,
                  generator: torch.Generator) -> None:
    """The chains' states (or the SMC runs' final particles, ``(1, n, *event)``, with their
    ``log_weights``), log-weights and (for Ising) spins drawn given x, as HDF5."""
    if isinstance(result, SMCRepeats):
        x, log_weights = result.particles
        samples, log_pi = x.detach()[None], model.target.log_prob(x).detach()[None]
    else:
        samples, log_pi = result.samples.detach(), result.log_pi
    with h5py.File(path, "w") as handle:
        handle["configurations"] = samples.cpu().numpy()
        handle["log_pi"] = log_pi.cpu().numpy()
        if isinstance(result, SMCRepeats):
            handle["log_weights"] = log_weights.cpu().numpy()
        elif getattr(result, "log_q", None) is not None:
            handle["log_q"] = result.log_q.cpu().numpy()
        if hasattr(model.target, "sample_spins"):
            flat = samples.reshape(-1, *model.target.event_shape)
            spins = model.target.sample_spins(flat, generator).reshape(samples.shape)
            handle["spins"] = spins.to(torch.int8).cpu().numpy()
        for key, value in summary.items():
            if isinstance(value, (int, float, str)):
                handle.attrs[key] = value


def gathered(result):
    """The result of all ranks' chains (chains along dimension 1 of the series); SMC runs
    stay each rank's own (rank 0's are measured)."""
    if distributed.world_size() == 1 or isinstance(result, SMCRepeats):
        return result
    series = {name: distributed.gather_samples(getattr(result, name), dim=1)
              for name in ("samples", "log_pi", "log_q", "energies")
              if getattr(result, name, None) is not None}
    if not hasattr(result, "acceptance_per_chain"):  # exact moves accept everything
        return replace(result, **series)
    per_chain = distributed.gather_samples(result.acceptance_per_chain)
    return replace(result, **series, acceptance_per_chain=per_chain,
                   acceptance=float(per_chain.mean()))


def sample_job(model: RunModel, run_dir: str | Path, config: SampleConfig,
               progress: bool = True) -> dict:
    """Sample from a trained model and write the samples and their summary into ``run_dir``.

    Under ``torchrun`` the chains are split over the ranks, each with its own seed, and
    gathered on rank 0, which measures and writes the files; other ranks return ``{}``.
    ``progress`` shows the chains' progress on rank 0 (a bar on a terminal).
    """
    validate_sample_config(config)
    rank = distributed.rank()
    local = replace(config, chains=distributed.local_share(config.chains),
                    seed=distributed.rank_seed(config.seed, rank))
    generator = torch.Generator(device=model.flow_device).manual_seed(local.seed)
    bar = chain_progress(config, enabled=progress and rank == 0)
    result = gathered(run_sampler(model, local, generator, bar))
    bar.close()
    if rank > 0:
        return {}
    summary = {**asdict(config), **summarise(model, config, result, generator)}
    run_dir, method = Path(run_dir), summary["method"]
    write_samples(run_dir / f"samples-{method}.h5", model, config, result, summary, generator)
    atomic_write_json(run_dir / f"samples-{method}.json", summary)
    return summary


def chain_progress(config: SampleConfig, enabled: bool = True) -> Progress:
    """Progress of the chains of ``config`` (every step, burn-in included), or of its SMC
    runs."""
    if config.method == "smc":
        return Progress(2 * config.smc_repeats, enabled=enabled, unit="SMC run")
    return Progress(config.therm + config.steps * (config.skip + 1), enabled=enabled,
                    unit="chain step")
