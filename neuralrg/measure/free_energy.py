"""ln Z, and the free energy, from every direction the product has, each with its verdict.

- ``importance_sampling``: Z = E_q[pi~/q] on fresh flow samples (heavy-tailed when the flow
  misses part of pi; reliable only with Pareto k <= 0.7 and confirmation);
- ``markov_chain``: reverse importance sampling 1/Z = E_pi[q/pi~] on the chains' states,
  light-tailed for a mode-seeking flow (Pareto k of q/pi~ checked), error bar with the
  chains' autocorrelation;
- ``bennett``: Bennett's acceptance ratio of both sample sets
  (:mod:`neuralrg.estimators.bennett`), reliable when the chains are converged and both
  sides overlap (at least :data:`MIN_OVERLAP` effective contributing samples each);
- ``smc``: annealed SMC from the flow (:mod:`neuralrg.mcmc.smc`), for targets without exact
  moves; reliable when the Pareto k of the path weights of AIS runs (the same moves, no
  resampling, a ladder half as fine), pooled over the runs, is <= 0.7 and their estimate
  agrees within 3 error bars (agreement of repeats alone is no evidence: every run can be
  low by the same amount), and, like every estimate here, when it agrees with the other
  reliable ones;
- ``thermodynamic_integration``: for a target with a thermodynamic path (the relaxed Ising
  model), the classical route, no flow involved (:mod:`neuralrg.mcmc.thermodynamic`); it
  doubles as an independent check of the others.

:func:`verdict_entry` reconciles them (disagreements beyond 3 combined error bars are
flagged) and reports the reliable one with the smallest error bar. A target may state the
physical quantities that are affine in its ln Z (``derived_ln_z()``: the Ising ln Z and the
free energy per site f = -T ln Z / N of the relaxed Ising model); they inherit the entry's
verdict.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from neuralrg.estimators import (
    AGREEMENT_SIGMAS,
    Verdict,
    bennett_ln_z,
    ess_per_sample,
    importance_ln_z,
    judge_chain,
    judge_importance,
    pareto_k,
    verdict_entry,
)
from neuralrg.estimators.importance import PARETO_K_MIN_SAMPLES, PARETO_K_RELIABLE
from neuralrg.mcmc import chain_estimate
from neuralrg.mcmc.smc import SMCRepeats
from neuralrg.mcmc.thermodynamic import ThermodynamicPath, thermodynamic_ln_z
from neuralrg.targets import capability

Judged = tuple[dict[str, Any], Verdict]
MIN_OVERLAP = 100.0  # effective contributing samples on each side of Bennett's equation


def forward_ln_z(log_w: Tensor) -> Judged | None:
    """Importance sampling of ln Z from flow samples' log-weights (``None`` if too few)."""
    if len(log_w) < PARETO_K_MIN_SAMPLES:
        return None
    ln_z = importance_ln_z(log_w)
    k, ess = pareto_k(log_w), ess_per_sample(log_w) * len(log_w)
    return ({"value": ln_z.value, "err": ln_z.err, "pareto_k": k, "ess": ess},
            judge_importance(k, ess, ln_z.err))


def _tail_k(log_ratios: np.ndarray) -> float:
    flat = log_ratios.reshape(-1)
    return pareto_k(flat) if flat.size >= PARETO_K_MIN_SAMPLES else math.nan


def reverse_ln_z(chain_log_w: np.ndarray) -> Judged:
    """Reverse importance sampling 1/Z = E_pi[exp(-w)] from the chains' log-weights
    ``(n_steps, n_chains)``: Gamma-method error, chain diagnostics, Pareto k of q/pi~."""
    shift = float((-chain_log_w).max())
    ratios = np.exp(-chain_log_w - shift)[None]
    estimate = chain_estimate(ratios, lambda mu: -torch.log(mu[0]) - shift)
    verdict = judge_chain(estimate.n_steps, estimate.err, estimate.window_converged,
                          estimate.rhat, estimate.ess_bulk)
    k = _tail_k(-chain_log_w)
    if verdict.reliable and not k <= PARETO_K_RELIABLE:
        verdict = Verdict(False, f"Pareto k {k:.2f} > {PARETO_K_RELIABLE} of the weights q/pi "
                                 "on the chains")
    return {**estimate.to_dict(), "pareto_k": k}, verdict


def bennett_entry(log_w: Tensor, chain_log_w: np.ndarray) -> Judged:
    """Bennett's acceptance ratio of flow samples (``log_w``) and the chains' states
    (``chain_log_w``, ``(n_steps, n_chains)``), the chains' part of the error bar by the
    Gamma method."""
    result = bennett_ln_z(log_w.numpy(), chain_log_w)
    reverse = chain_estimate(result.influence_reverse[None], lambda mu: mu[0])
    err = math.hypot(result.err_forward, reverse.err)
    fields = {"value": result.value, "err": err, "overlap_forward": result.overlap_forward,
              "overlap_reverse": result.overlap_reverse, "tau_int": reverse.tau_int,
              "rhat": reverse.rhat, "ess_bulk": reverse.ess_bulk,
              "pareto_k_forward": pareto_k(log_w) if len(log_w) >= PARETO_K_MIN_SAMPLES
              else math.nan, "pareto_k_reverse": _tail_k(-chain_log_w)}
    verdict = judge_chain(reverse.n_steps, err, reverse.window_converged, reverse.rhat,
                          reverse.ess_bulk)
    overlap = min(result.overlap_forward, result.overlap_reverse)
    if verdict.reliable and not overlap >= MIN_OVERLAP:
        side = "flow" if result.overlap_forward < result.overlap_reverse else "chain"
        verdict = Verdict(False, f"poor overlap: {overlap:.0f} < {MIN_OVERLAP:.0f} effective "
                                 f"{side} samples in Bennett's equation")
    return fields, verdict


def thermodynamic_entry(path: ThermodynamicPath, nodes: int, steps: int,
                        chains: int = 8) -> Judged:
    """Thermodynamic integration along ``path``; reliable when every node's chains are."""
    result = thermodynamic_ln_z(path, nodes, chains, steps, therm=max(steps // 4, 20))
    verdicts = [judge_chain(e.n_steps, e.err, e.window_converged, e.rhat, e.ess_bulk)
                for e in result.energies]
    bad = [(b, v) for b, v in zip(result.nodes, verdicts, strict=True) if not v.reliable]
    verdict = Verdict(True) if not bad else Verdict(
        False, f"the energy at beta = {bad[0][0]:.4g} ({len(bad)} of {nodes} nodes): "
               f"{bad[0][1].reason}")
    fields = {"value": result.value, "err": result.err, "nodes": nodes, "chains": chains,
              "steps": steps,
              "rhat_max": max((e.rhat for e in result.energies), default=math.nan)}
    return fields, verdict


def _repeat_estimate(runs) -> tuple[float, float]:
    """ln of the runs' mean Z (each run's Z is unbiased) and the standard error of their
    ln Z, widened by Student's t so that it covers 68% with few runs."""
    values = np.array([run.ln_z for run in runs])
    combined = float(np.logaddexp.reduce(values) - math.log(len(values)))
    widen = float(stats.t.ppf(stats.norm.cdf(1.0), len(values) - 1))
    return combined, widen * float(values.std(ddof=1) / math.sqrt(len(values)))


def smc_entry(repeats: SMCRepeats) -> Judged:
    """The SMC estimate of ln Z from the runs on the finer ladder (combined in Z, the error
    bar from their spread), judged by the Pareto k of the AIS runs' path weights (independent
    particles, pooled over the runs) and by its agreement with the AIS estimate."""
    value, err = _repeat_estimate(repeats.fine)
    coarse, coarse_err = _repeat_estimate(repeats.coarse)
    paths = torch.cat([run.final_log_weights for run in repeats.coarse]).double()
    k = pareto_k(paths) if len(paths) >= PARETO_K_MIN_SAMPLES else math.nan
    shift = (value - coarse) / math.hypot(err, coarse_err) if err > 0 else math.inf
    fields = {"value": value, "err": err, "ais_value": coarse, "ais_err": coarse_err,
              "pareto_k": k, "runs": len(repeats.runs),
              "rungs": [len(run.betas) - 1 for run in repeats.runs],
              "resamples": [run.resamples for run in repeats.runs],
              "flow_acceptance": float(np.mean([r.flow_acceptance for r in repeats.runs]))}
    if not err > 0:
        return fields, Verdict(False, "no spread between the runs: no error bar")
    if not k <= PARETO_K_RELIABLE:
        return fields, Verdict(False, f"Pareto k {k:.2f} > {PARETO_K_RELIABLE} of the AIS path "
                                      "weights over all runs")
    if abs(shift) > AGREEMENT_SIGMAS:
        return fields, Verdict(False, f"AIS on a ladder half as fine differs by "
                                      f"{coarse - value:+.3g} ({abs(shift):.1f} sigma): not "
                                      "converged in the ladder")
    return fields, Verdict(True)


def ln_z_entry(estimates: dict[str, Judged | None], exact: float | None) -> dict | None:
    """One verdict entry for ln Z from the estimates that exist (``None`` if none does)."""
    present = {name: judged for name, judged in estimates.items() if judged is not None}
    return verdict_entry(present, exact) if present else None


def derived_entries(entry: dict[str, Any], views: dict[str, tuple[float, float]]) -> dict:
    """Entries of quantities ``scale * ln Z + offset`` (``views``: name -> (scale, offset)),
    with the ln Z entry's verdict, pull and estimator.

    >>> entry = {"value": 2.0, "err": 0.1, "exact": 2.1, "pull": -1.0, "reliable": True,
    ...          "reason": None, "estimator": "bennett", "estimates": {}}
    >>> derived_entries(entry, {"f": (-0.5, 1.0)})["f"]["value"]
    0.0
    """
    def transform(scale: float, offset: float) -> dict:
        exact = entry["exact"]
        return {"value": scale * entry["value"] + offset, "err": abs(scale) * entry["err"],
                "exact": None if exact is None else scale * exact + offset,
                "pull": None if entry["pull"] is None else entry["pull"] * math.copysign(1, scale),
                "reliable": entry["reliable"], "reason": entry["reason"],
                "estimator": entry["estimator"]}
    return {name: transform(*view) for name, view in views.items()}


def ln_z_entries(model, log_w: Tensor, chain_log_w: np.ndarray | None,
                 smc_runs: SMCRepeats | None = None, ti: tuple[int, int] = (0, 0),
                 generator: torch.Generator | None = None) -> dict[str, dict[str, Any]]:
    """ln Z of ``model`` (a :class:`neuralrg.model.Model`) from the flow samples' log-weights,
    the chains' (``(n_steps, n_chains)``, if a sampler scored its states with the flow), both,
    SMC runs, and thermodynamic integration over ``ti = (nodes, steps)`` if the target has a
    path; one verdict entry, and the entries the target derives from it (e.g. the Ising free
    energy)."""
    finite = log_w[torch.isfinite(log_w)]
    chains = chain_log_w is not None and bool(np.isfinite(chain_log_w).all())
    path = capability(model.target, "thermodynamic_path")
    estimates = {
        "importance_sampling": forward_ln_z(finite),
        "markov_chain": reverse_ln_z(chain_log_w) if chains else None,
        "bennett": bennett_entry(finite, chain_log_w) if chains and len(finite) >= 2 else None,
        "smc": smc_entry(smc_runs) if smc_runs is not None else None,
        "thermodynamic_integration": thermodynamic_entry(path(generator), *ti)
        if path is not None and ti[0] > 0 else None,
    }
    entry = ln_z_entry(estimates, model.exact_ln_z())
    if entry is None:
        return {}
    return {"ln_z": entry, **derived_entries(entry, capability(model.target, "derived_ln_z")())}
