"""Markov-chain samplers and their diagnostics: independent MH, HMC, autocorrelation."""

from neuralrg.mcmc.autocorr import (
    autocorrelation,
    integrated_autocorr_time,
    mean_with_autocorr_error,
)
from neuralrg.mcmc.hmc import HMCResult, hmc, hmc_latent, hmc_physical
from neuralrg.mcmc.metropolis import MetropolisResult, independent_metropolis

__all__ = [
    "HMCResult",
    "MetropolisResult",
    "autocorrelation",
    "hmc",
    "hmc_latent",
    "hmc_physical",
    "independent_metropolis",
    "integrated_autocorr_time",
    "mean_with_autocorr_error",
]
