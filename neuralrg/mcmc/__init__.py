"""Markov-chain samplers and their diagnostics: independent MH, HMC (physical and latent),
the hybrid kernel, autocorrelation times, split R-hat and bulk ESS."""

from neuralrg.mcmc.autocorr import (
    AutocorrTime,
    autocorr_window,
    autocorrelation,
    integrated_autocorr_time,
    mean_with_autocorr_error,
)
from neuralrg.mcmc.diagnostics import (
    ChainEstimate,
    bulk_ess,
    chain_estimate,
    effective_sample_size,
    split_rhat,
)
from neuralrg.mcmc.hmc import HMCResult, hmc, hmc_latent, hmc_physical
from neuralrg.mcmc.hybrid import HybridResult, LocalMoves, hybrid_metropolis
from neuralrg.mcmc.metropolis import MetropolisResult, independent_metropolis

__all__ = [
    "AutocorrTime",
    "ChainEstimate",
    "HMCResult",
    "HybridResult",
    "LocalMoves",
    "MetropolisResult",
    "autocorr_window",
    "autocorrelation",
    "bulk_ess",
    "chain_estimate",
    "effective_sample_size",
    "hmc",
    "hmc_latent",
    "hmc_physical",
    "hybrid_metropolis",
    "independent_metropolis",
    "integrated_autocorr_time",
    "mean_with_autocorr_error",
    "split_rhat",
]
