"""Neural Network Renormalization Group (Li & Wang, arXiv:1802.02840): hierarchical
normalizing flows for lattice models, with exact references and honest error bars.

The public API: flows and their configuration, the target protocol and registry, the model
(a flow with its target: ``fit``, ``sample``, ``measure``, ``free_energy``), training,
sampling and measuring with typed results, estimators with their verdicts and exact
results, and ``save``/``load``. Runs (configurations saved to a directory, the lifecycle,
the jobs behind the command line) live in :mod:`neuralrg.jobs`.

>>> import neuralrg
>>> model = neuralrg.Model.of(neuralrg.RelaxedIsing(L=4), neuralrg.FlowConfig(hidden_s=8))
>>> model.sample(3).shape
torch.Size([3, 4, 4])
>>> round(model.exact()["free_energy_per_site"], 4)
-2.2014
"""

from neuralrg.estimators import (
    Estimate,
    Verdict,
    ess_per_sample,
    importance_ln_z,
    judge_chain,
    judge_importance,
    pareto_k,
    psis_log_weights,
    self_normalised,
    variational_bound,
    verdict_entry,
)
from neuralrg.exact import (
    T_CRITICAL_2D,
    enumerate_ising,
    exact_ising,
    magnetisation_distribution,
    magnetisation_moments,
)
from neuralrg.flows.flow import Flow, FlowConfig, build_flow, register_coupling
from neuralrg.flows.layouts import PatchLayer, register_layout
from neuralrg.flows.symmetry import Z2SymmetricFlow
from neuralrg.jobs.saved import load, save
from neuralrg.mcmc import (
    LocalMoves,
    bulk_ess,
    chain_estimate,
    hmc_latent,
    hmc_physical,
    hybrid_metropolis,
    independent_metropolis,
    split_rhat,
)
from neuralrg.measure.results import Measurement, Quantity
from neuralrg.measure.sampling import SampleConfig, flow_draws, run_sampler
from neuralrg.measure.summary import measure
from neuralrg.model import Model
from neuralrg.targets import (
    TARGETS,
    Phi4,
    RelaxedIsing,
    Target,
    TargetBase,
    TargetConfig,
    build_target,
    exact_values,
    register_target,
)
from neuralrg.training import TrainConfig, Trainer, fit
from neuralrg.training.objective import LossConfig

__version__ = "0.1.0"

__all__ = [
    "Estimate", "Flow", "FlowConfig", "LocalMoves", "LossConfig", "Measurement", "Model",
    "PatchLayer", "Phi4", "Quantity", "RelaxedIsing", "SampleConfig", "TARGETS", "T_CRITICAL_2D",
    "Target", "TargetBase", "TargetConfig", "TrainConfig", "Trainer", "Verdict",
    "Z2SymmetricFlow", "build_flow", "build_target", "bulk_ess", "chain_estimate",
    "enumerate_ising", "ess_per_sample", "exact_ising", "exact_values", "fit", "flow_draws",
    "hmc_latent", "hmc_physical", "hybrid_metropolis", "importance_ln_z",
    "independent_metropolis", "judge_chain", "judge_importance", "load",
    "magnetisation_distribution", "magnetisation_moments", "measure", "pareto_k",
    "psis_log_weights", "register_coupling", "register_layout", "register_target", "run_sampler",
    "save", "self_normalised", "split_rhat", "variational_bound", "verdict_entry",
]
