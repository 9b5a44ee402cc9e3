"""What a measurement reports: the samplers' results summarised into a typed
:class:`~neuralrg.measure.results.Measurement`, every number with its verdict.

Next to the chains, fresh flow samples give self-normalised importance-sampling estimates of
every observable; ln Z comes from the flow samples, the chains, both, SMC runs and
thermodynamic integration where asked for (:mod:`neuralrg.measure.free_energy`); the rules
behind each verdict are in :mod:`neuralrg.estimators.verdicts`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from neuralrg.estimators import expected_acceptance
from neuralrg.mcmc import integrated_autocorr_time
from neuralrg.mcmc.chains import StepCounter
from neuralrg.mcmc.result import SamplerResult
from neuralrg.measure.free_energy import ln_z_entries
from neuralrg.measure.observables import (
    chain_observables,
    has_observables,
    importance_observables,
    observables_table,
)
from neuralrg.measure.results import Measurement, Quantity
from neuralrg.measure.sampling import (
    SampleConfig,
    exact_local_move,
    flow_draws,
    resolve_method,
    run_sampler,
    run_smc,
)
from neuralrg.targets import capability


def measure(model, config: SampleConfig, generator: torch.Generator,
            draws: tuple[Tensor, np.ndarray | None] | None = None,
            progress: StepCounter | None = None) -> Measurement:
    """Run the sampler of ``config`` (each step reported to ``progress``) and
    :func:`summarise` its result; ``draws`` as there."""
    result = run_sampler(model, config, generator, progress)
    return summarise(model, config, result, generator, draws)


def summarise(model, config: SampleConfig, result: SamplerResult, generator: torch.Generator,
              draws: tuple[Tensor, np.ndarray | None] | None = None) -> Measurement:
    """The :class:`Measurement` of a sampler's ``result``: acceptance, autocorrelation time,
    one verdict per observable (Markov chain, SMC and importance sampling) and for ln Z.

    ``draws`` (optional): flow samples' log-weights and moments already drawn (see
    :func:`~neuralrg.measure.sampling.flow_draws`); otherwise ``config.importance_samples``
    are drawn here.
    """
    if draws is None:
        draws = flow_draws(model, config.importance_samples, 1024, generator)
    chains = result if result.is_chain else None
    smc_runs = result if chains is None else (
        run_smc(model, config, generator) if config.smc_particles > 0 else None)
    scored = None if chains is None else chains.scored_log_w
    chain_log_w = None if scored is None else scored.cpu().numpy()
    method = resolve_method(model, config.method)
    quantities = ln_z_entries(model, draws[0], chain_log_w, smc_runs,
                              (config.ti_nodes, config.ti_steps), generator)
    observables = _observables(model, chains, smc_runs, draws, generator) \
        if has_observables(model.target) else {}
    return Measurement(
        capability(model.target, "describe")(), method,
        _acceptance(method, chains, smc_runs, draws[0], chain_log_w),
        {k: Quantity.from_dict(v) for k, v in quantities.items()},
        {k: Quantity.from_dict(v) for k, v in observables.items()},
        _details(model, config, chains, smc_runs))


def _acceptance(method: str, chains, smc_runs, log_w: Tensor,
                chain_log_w: np.ndarray | None) -> float | None:
    """The flow-proposal acceptance: of the chains' flow moves, its long-run value over exact
    samples (method exact), or of the SMC runs' flow moves."""
    if chains is None:
        return float(np.mean([run.flow_acceptance for run in smc_runs.runs]))
    if method == "exact":
        return expected_acceptance(log_w[torch.isfinite(log_w)], chain_log_w)
    return chains.acceptance


def _details(model, config: SampleConfig, chains, smc_runs) -> dict[str, Any]:
    """What was run: the chains' shape and autocorrelation, the local moves, the SMC size."""
    details = {"local_move": _local_label(model, config), "mc_therm": config.therm,
               "mc_steps": config.steps}
    if chains is None:
        return {**details, "smc_particles": len(smc_runs.particles[0])}
    details.update(mc_chains=chains.samples.shape[1], nonfinite_rejections=chains.n_nonfinite,
                   tau_int_log_pi=_tau(chains.log_pi.cpu().numpy()))
    for key in ("local_acceptance", "n_grad_evals"):
        if hasattr(chains, key):
            details[key] = getattr(chains, key)
    return details


def _observables(model, chains, smc_runs, draws, generator) -> dict[str, dict]:
    """Every observable from the chains, the SMC particles and the flow samples."""
    target, (log_w, moments) = model.target, draws
    estimates = {}
    if chains is not None:
        estimates["markov_chain"] = chain_observables(target, chains.samples, generator)
    if smc_runs is not None:
        x, weights = smc_runs.particles
        estimates["smc"] = importance_observables(
            target, target.observable_moments(x, generator).cpu().numpy(), weights)
    if moments is not None:
        estimates["importance_sampling"] = importance_observables(target, moments, log_w)
    return observables_table(target.exact_observables(),
                             **{name: found for name, found in estimates.items() if found})


def _local_label(model, config: SampleConfig) -> str | None:
    if resolve_method(model, config.method) != "hybrid":
        return None
    return "hmc" if exact_local_move(model, config) is None else "exact"


def _tau(series: np.ndarray) -> float | None:
    if series.shape[0] < 2 or not np.isfinite(series).all():
        return None
    value = integrated_autocorr_time(series)
    return None if not math.isfinite(value) else float(value)
