"""Neural Network Renormalization Group (Li & Wang, arXiv:1802.02840): hierarchical
normalizing flows for lattice models, with exact references and honest error bars.

The public API: flows and their configuration, the target protocol and registry, the model
(a flow with its target), training, sampling and measuring, estimators with their verdicts
and exact results. Runs (configurations saved to a directory, the lifecycle, the jobs behind
the command line) live in :mod:`neuralrg.jobs`.

>>> import neuralrg
>>> model = neuralrg.Model.of(neuralrg.FlowConfig(L=4, hidden_s=8, z2_symmetric="eval"),
...                           neuralrg.RelaxedIsing(L=4))
>>> x, log_q = model.sampler.sample(3)
>>> x.shape
torch.Size([3, 4, 4])
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
from neuralrg.model import Model
from neuralrg.objective import LossConfig
from neuralrg.sampling import SampleConfig, flow_draws, measure, run_sampler
from neuralrg.targets import (
    TARGETS,
    Phi4,
    RelaxedIsing,
    Target,
    TargetBase,
    TargetConfig,
    build_target,
    register_target,
)
from neuralrg.training import TrainConfig, Trainer, fit

__version__ = "0.1.0"

__all__ = [
    "TARGETS", "T_CRITICAL_2D", "Estimate", "Flow", "FlowConfig", "LocalMoves", "LossConfig",
    "Model", "PatchLayer", "Phi4", "RelaxedIsing", "SampleConfig", "Target", "TargetBase",
    "TargetConfig", "TrainConfig", "Trainer", "Verdict", "Z2SymmetricFlow", "build_flow",
    "build_target", "bulk_ess", "chain_estimate", "enumerate_ising", "ess_per_sample",
    "exact_ising", "fit", "flow_draws", "hmc_latent", "hmc_physical", "hybrid_metropolis",
    "importance_ln_z", "independent_metropolis", "judge_chain", "judge_importance",
    "magnetisation_distribution", "magnetisation_moments", "measure", "pareto_k",
    "psis_log_weights", "register_coupling", "register_layout", "register_target",
    "run_sampler", "self_normalised", "split_rhat", "variational_bound", "verdict_entry",
]
