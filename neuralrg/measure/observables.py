"""Observables of a target measured two ways, each with its verdict: from Markov chains
(Wolff's Gamma method with the chains' own autocorrelation, split R-hat, bulk ESS) and by
self-normalised importance sampling of flow samples (delta method, Pareto k).

A target with observables provides ``observable_moments(x, generator) -> (n_moments, n)``
(float64) and ``observables``: a dict from name to a function of the moments' means (see
:class:`neuralrg.targets.ising.RelaxedIsing`). Non-linear observables (a heat capacity, a
Binder cumulant) get honest error bars through their influence series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from neuralrg.estimators import (
    Verdict,
    ess_per_sample,
    judge_chain,
    judge_importance,
    pareto_k,
    self_normalised,
    verdict_entry,
)
from neuralrg.estimators.importance import PARETO_K_MIN_SAMPLES
from neuralrg.mcmc import chain_estimate

Judged = dict[str, tuple[dict[str, Any], Verdict]]


def has_observables(target) -> bool:
    return hasattr(target, "observables") and hasattr(target, "observable_moments")


@torch.no_grad()
def chain_moments(target, samples: Tensor, generator: torch.Generator | None = None,
                  chunk: int = 4096) -> np.ndarray:
    """Moments of Markov-chain samples ``(n_steps, n_chains, *event)``, shape
    ``(n_moments, n_steps, n_chains)``."""
    n_steps, n_chains = samples.shape[:2]
    flat = samples.reshape(n_steps * n_chains, *samples.shape[2:])
    parts = [target.observable_moments(part, generator) for part in flat.split(chunk)]
    return torch.cat(parts, dim=1).cpu().numpy().reshape(-1, n_steps, n_chains)


def chain_observables(target, samples: Tensor,
                      generator: torch.Generator | None = None) -> Judged:
    """Every observable of ``target`` from Markov-chain samples, with its verdict."""
    moments = chain_moments(target, samples, generator)
    judged = {}
    for name, combine in target.observables.items():
        estimate = chain_estimate(moments, combine)
        verdict = judge_chain(estimate.n_steps, estimate.err, estimate.window_converged,
                              estimate.rhat, estimate.ess_bulk)
        judged[name] = (estimate.to_dict(), verdict)
    return judged


def importance_observables(target, moments: np.ndarray, log_w: Tensor) -> Judged:
    """Every observable of ``target`` by self-normalised importance sampling: ``moments``
    ``(n_moments, n)`` of flow samples with log-weights ``log_w`` (non-finite weights are
    dropped), with its verdict."""
    log_w = log_w.double().cpu()
    keep = torch.isfinite(log_w).numpy()
    moments, log_w = moments[:, keep], log_w[keep]
    if len(log_w) < PARETO_K_MIN_SAMPLES:
        return {}
    k, ess = pareto_k(log_w), ess_per_sample(log_w) * len(log_w)
    judged = {}
    for name, combine in target.observables.items():
        value, err = self_normalised(moments, log_w, combine)
        fields = {"value": value, "err": err, "pareto_k": k, "ess": ess, "n": len(log_w)}
        judged[name] = (fields, judge_importance(k, ess, err))
    return judged


def observables_table(exact: dict[str, float | None], **estimates: Judged) -> dict[str, dict]:
    """One verdict entry per observable (see :func:`neuralrg.estimators.verdict_entry`) from
    the estimates given by keyword (``markov_chain=...``, ``importance_sampling=...``)."""
    names = [name for judged in estimates.values() for name in judged]
    table = {}
    for name in dict.fromkeys(names):
        parts = {kind: judged[name] for kind, judged in estimates.items() if name in judged}
        table[name] = verdict_entry(parts, exact.get(name))
    return table
