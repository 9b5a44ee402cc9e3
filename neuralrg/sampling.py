"""Exact sampling from a trained flow and what it measures, with a verdict per number.

Samplers (``method``): ``mh`` (independent Metropolis with flow proposals), ``hybrid``
(flow proposals interleaved with local HMC moves in x, :mod:`neuralrg.mcmc.hybrid`),
``hmc-latent`` (HMC on the flow's latent space), ``hmc-physical`` (HMC in x). Chains
start from overdispersed flow samples: latents drawn ``spread`` times wider than the prior
and, for a Z2-symmetric target, a random global sign, so that non-convergence shows up as
disagreement between chains (split R-hat).

Next to the chains, ``importance_samples`` fresh flow samples give self-normalised
importance-sampling estimates of every observable and of ln Z; the chains give ln Z from
the other direction, 1/Z = E_pi[q/pi] (whose weights are light-tailed for a mode-seeking
flow). Every number gets its verdict (:mod:`neuralrg.estimators.verdicts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from neuralrg.estimators import (
    Verdict,
    ess_per_sample,
    importance_ln_z,
    judge_chain,
    judge_importance,
    pareto_k,
    verdict_entry,
)
from neuralrg.estimators.importance import PARETO_K_MIN_SAMPLES
from neuralrg.mcmc import (
    LocalMoves,
    chain_estimate,
    hmc_latent,
    hmc_physical,
    hybrid_metropolis,
    independent_metropolis,
    integrated_autocorr_time,
)
from neuralrg.observables import (
    chain_observables,
    has_observables,
    importance_observables,
    observables_table,
)
from neuralrg.targets import capability
from neuralrg.validation import check_choice, check_int, check_real

METHODS = ("mh", "hybrid", "hmc-latent", "hmc-physical")
FLAG_NAMES = {"importance_samples": "is-samples"}


@dataclass(frozen=True)
class SampleConfig:
    """Sampler settings. ``step_size``/``n_leapfrog``: the HMC methods' trajectories;
    ``local_moves``/``local_step_size``/``local_leapfrog``: the hybrid kernel's local HMC
    moves per flow step; ``spread``: width of the starting latents relative to the prior;
    ``importance_samples``: fresh flow samples for the importance-sampling estimates."""

    method: str = "hybrid"
    chains: int = 64
    therm: int = 200
    steps: int = 1000
    skip: int = 0
    step_size: float = 0.1
    n_leapfrog: int = 10
    local_moves: int = 5
    local_step_size: float = 0.4
    local_leapfrog: int = 10
    spread: float = 1.5
    importance_samples: int = 8192
    seed: int = 0

    def __post_init__(self) -> None:
        validate_sample_config(self)

    @property
    def local(self) -> LocalMoves:
        return LocalMoves(self.local_moves, self.local_step_size, self.local_leapfrog)


def validate_sample_config(config: SampleConfig) -> None:
    """Raise ``ValueError`` naming the first bad field (with its flag's spelling)."""
    check_choice("method", config.method, METHODS)
    for name, low in (("chains", 1), ("therm", 0), ("steps", 1), ("skip", 0), ("n_leapfrog", 1),
                      ("local_moves", 1), ("local_leapfrog", 1), ("importance_samples", 0),
                      ("seed", 0)):
        check_int(FLAG_NAMES.get(name, name.replace("_", "-")), getattr(config, name), low)
    for name in ("step_size", "local_step_size"):
        check_real(name.replace("_", "-"), getattr(config, name), 0)
    check_real("spread", config.spread, 0)


@torch.no_grad()
def overdispersed_start(model, n: int, spread: float,
                        generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """``(z, x, ln q(x))`` of ``n`` starting states: latents ``spread`` times wider than the
    prior, mapped by the flow, with a random global sign for a Z2-symmetric target."""
    z = spread * model.flow.sample_latent(n, generator)
    x = model.flow.generate(z)[0]
    if model.z2_symmetric:
        signs = 1 - 2 * torch.randint(0, 2, (n,), generator=generator, device=x.device)
        x = x * signs.reshape(-1, *[1] * (x.dim() - 1)).to(x.dtype)
    return z, x, model.sampler.log_prob(x)


def run_sampler(model, config: SampleConfig, generator: torch.Generator):
    """The Markov-chain result of ``config.method`` for ``model`` (a
    :class:`neuralrg.jobs.Model`)."""
    target = model.target
    common = dict(n_therm=config.therm, n_skip=config.skip, generator=generator)
    gradient = getattr(target, "grad_log_prob", None)
    grad_fn = None if gradient is None else (lambda x: -gradient(x))
    z0, x0, log_q0 = overdispersed_start(model, config.chains, config.spread, generator)

    def propose(n: int):
        with torch.no_grad():
            return model.sampler.sample(n, generator)

    if config.method == "mh":
        return independent_metropolis(propose, target.log_prob, config.chains, config.steps,
                                      initial=(x0, log_q0), **common)
    if config.method == "hybrid":
        return hybrid_metropolis(
            lambda n, x: model.sampler.sample_and_score(n, x, generator), target.log_prob,
            (x0, log_q0), config.steps, local=config.local, grad_fn=grad_fn, **common)
    hmc_args = dict(step_size=config.step_size, n_leapfrog=config.n_leapfrog,
                    n_steps=config.steps, **common)
    if config.method == "hmc-physical":
        return hmc_physical(target.log_prob, x0, grad_fn=grad_fn, **hmc_args)
    result = hmc_latent(model.flow.bijector, target.log_prob, z0, **hmc_args)
    if model.z2_symmetric:  # pi(x) = pi(-x): a random global sign per chain is exact
        signs = 1 - 2 * torch.randint(0, 2, (config.chains,), generator=generator)
        result.samples = result.samples * signs.reshape(1, -1, *[1] * len(model.flow.event_shape))
    return result


@torch.no_grad()
def flow_draws(model, n: int, batch_size: int, generator: torch.Generator | None = None,
               with_moments: bool = True) -> tuple[Tensor, np.ndarray | None]:
    """Log-weights ln pi - ln q (float64) of ``n`` fresh samples of the model's sampling
    density, and the target's observable moments of those samples (``None`` without)."""
    weights, moments = [], []
    measure = with_moments and has_observables(model.target)
    for start in range(0, n, batch_size):
        x, log_q = model.sampler.sample(min(batch_size, n - start), generator)
        weights.append((model.target.log_prob(x) - log_q).double().cpu())
        if measure:
            moments.append(model.target.observable_moments(x, generator).cpu())
    if not weights:
        return torch.zeros(0, dtype=torch.float64), None
    return torch.cat(weights), (torch.cat(moments, dim=1).numpy() if measure else None)


def ln_z_entries(log_w: Tensor, chain_log_w: np.ndarray | None,
                 exact: float | None) -> dict[str, Any]:
    """ln Z by importance sampling of flow samples and, from the Markov chains' log-weights
    ``(n_steps, n_chains)``, by reverse importance sampling 1/Z = E_pi[exp(-w)]; one verdict
    entry, and the top-level ``ln_z_is*`` keys."""
    estimates = {}
    finite = log_w[torch.isfinite(log_w)]
    if len(finite) >= PARETO_K_MIN_SAMPLES:
        ln_z = importance_ln_z(finite)
        k, ess = pareto_k(finite), ess_per_sample(finite) * len(finite)
        estimates["importance_sampling"] = (
            {"value": ln_z.value, "err": ln_z.err, "pareto_k": k, "ess": ess},
            judge_importance(k, ess, ln_z.err))
    if chain_log_w is not None and np.isfinite(chain_log_w).all():
        estimates["markov_chain"] = _reverse_ln_z(chain_log_w)
    if not estimates:
        return {}
    entry = verdict_entry(estimates, exact)
    top = {"ln_z": entry}
    if "importance_sampling" in entry["estimates"]:
        forward = entry["estimates"]["importance_sampling"]
        top.update(ln_z_is=forward["value"], ln_z_is_err=forward["err"],
                   ln_z_is_reliable=forward["reliable"], ln_z_is_reason=forward["reason"])
    return top


def _reverse_ln_z(chain_log_w: np.ndarray) -> tuple[dict, Verdict]:
    shift = float((-chain_log_w).max())
    ratios = np.exp(-chain_log_w - shift)[None]
    estimate = chain_estimate(ratios, lambda mu: -torch.log(mu[0]) - shift)
    verdict = judge_chain(estimate.n_steps, estimate.err, estimate.window_converged,
                          estimate.rhat, estimate.ess_bulk)
    k = pareto_k(-chain_log_w.reshape(-1)) if chain_log_w.size >= PARETO_K_MIN_SAMPLES \
        else math.nan
    if verdict.reliable and not k <= 0.7:
        verdict = Verdict(False, f"Pareto k {k:.2f} > 0.7 of the weights q/pi on the chains")
    return {**estimate.to_dict(), "pareto_k": k}, verdict


def measure(model, config: SampleConfig, generator: torch.Generator,
            draws: tuple[Tensor, np.ndarray | None] | None = None) -> dict[str, Any]:
    """Run the chains and :func:`summarise` them; ``draws`` as there."""
    return summarise(model, config, run_sampler(model, config, generator), generator, draws)


def summarise(model, config: SampleConfig, result, generator: torch.Generator,
              draws: tuple[Tensor, np.ndarray | None] | None = None) -> dict[str, Any]:
    """Acceptance, autocorrelation time, one verdict entry per observable (Markov chain and
    importance sampling) and for ln Z, from a sampler's ``result``.

    ``draws`` (optional): flow samples' log-weights and moments already drawn (see
    :func:`flow_draws`); otherwise ``config.importance_samples`` are drawn here.
    """
    if draws is None:
        draws = flow_draws(model, config.importance_samples, 1024, generator)
    log_w, moments = draws
    chain_log_w = None
    if hasattr(result, "log_q"):
        chain_log_w = (result.log_pi - result.log_q).cpu().numpy()
    summary = {"target": capability(model.target, "describe")(), "method": config.method,
               "acceptance": result.acceptance,
               "mc_chains": result.samples.shape[1], "mc_therm": config.therm,
               "mc_steps": config.steps, "nonfinite_rejections": result.n_nonfinite,
               "tau_int_log_pi": _tau(result.log_pi.cpu().numpy())}
    for key in ("local_acceptance", "n_grad_evals"):
        if hasattr(result, key):
            summary[key] = getattr(result, key)
    summary.update(ln_z_entries(log_w, chain_log_w, model.exact_ln_z()))
    if has_observables(model.target):
        chains = chain_observables(model.target, result.samples, generator)
        importance = {} if moments is None else importance_observables(model.target, moments,
                                                                       log_w)
        summary["observables"] = observables_table(
            model.target.exact_observables(), markov_chain=chains,
            **({"importance_sampling": importance} if importance else {}))
    return summary


def _tau(series: np.ndarray) -> float | None:
    if series.shape[0] < 2 or not np.isfinite(series).all():
        return None
    value = integrated_autocorr_time(series)
    return None if not math.isfinite(value) else float(value)
