"""Exact sampling from a trained flow and what it measures, with a verdict per number.

Samplers (``method``): ``exact`` (chains of the target's exact equilibrium moves, e.g. the
relaxed Ising model's cluster moves; the flow scores a thinned subset of the recorded states
for ln Z, :mod:`neuralrg.mcmc.exact`), ``mh`` (independent Metropolis with flow proposals),
``hybrid`` (flow proposals interleaved with local moves in x, :mod:`neuralrg.mcmc.hybrid`),
``hmc-latent`` (HMC on the flow's latent space), ``hmc-physical`` (HMC in x); ``auto`` (the
default) is ``exact`` for a target with exact moves and ``hybrid`` otherwise. Chains
start from overdispersed flow samples: latents drawn ``spread`` times wider than the prior
and, for a Z2-symmetric target, a random global sign, so that non-convergence shows up as
disagreement between chains (split R-hat).

The hybrid kernel's local move is ``local``: ``"exact"`` (the target's exact equilibrium
move, e.g. the relaxed Ising model's cluster moves), ``"hmc"`` (short HMC trajectories in x),
or ``"auto"`` (exact where the target has such a move).

Next to the chains, ``importance_samples`` fresh flow samples give self-normalised
importance-sampling estimates of every observable; ln Z comes from the flow samples, from
the chains (reverse importance sampling), from both (Bennett's acceptance ratio) and, with
``ti_nodes`` > 0 for a target with a thermodynamic path, by thermodynamic integration (see
:mod:`neuralrg.measure.free_energy`). Every number gets its verdict
(:mod:`neuralrg.estimators.verdicts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from neuralrg.mcmc import (
    LocalMoves,
    hmc_latent,
    hmc_physical,
    hybrid_metropolis,
    independent_metropolis,
)
from neuralrg.mcmc.chains import StepCounter
from neuralrg.mcmc.exact import ExactChainResult, exact_chains
from neuralrg.mcmc.smc import SMCConfig, SMCRepeats, smc_repeats
from neuralrg.measure.observables import (
    has_observables,
)
from neuralrg.progress import Progress
from neuralrg.targets import capability, random_signs
from neuralrg.validation import check_choice, check_int, check_real

METHODS = ("auto", "exact", "hybrid", "mh", "hmc-latent", "hmc-physical", "smc")
SMC_DEFAULT_PARTICLES = 256
SCORED_STATES = 16384  # at most this many chain states are scored by the flow (method exact)
LOCAL_MOVES = ("auto", "exact", "hmc")
FLAG_NAMES = {"importance_samples": "is-samples"}


@dataclass(frozen=True)
class SampleConfig:
    """Sampler settings. ``step_size``/``n_leapfrog``: the HMC methods' trajectories;
    ``local``: the hybrid kernel's local move (``"auto"``, ``"exact"``, ``"hmc"``);
    ``local_moves``/``local_step_size``/``local_leapfrog``: its local HMC moves per flow step;
    ``spread``: width of the starting latents relative to the prior;
    ``importance_samples``: fresh flow samples for the importance-sampling estimates;
    ``ti_nodes``/``ti_steps``: thermodynamic integration of ln Z (0 nodes: off), 8 chains of
    ``ti_steps`` exact moves at each Gauss-Legendre node; ``smc_*``: annealed SMC from the
    flow beside the chains (0 particles: off; ``method="smc"`` runs it instead of chains, with
    256 particles unless set), ``smc_repeats`` runs on each of two ladders, ``smc_hmc_moves``
    HMC trajectories of step ``smc_step_size`` per rung."""

    method: str = "auto"
    chains: int = 64
    therm: int = 200
    steps: int = 1000
    skip: int = 0
    step_size: float = 0.1
    n_leapfrog: int = 10
    local: str = "auto"
    local_moves: int = 5
    local_step_size: float = 0.4
    local_leapfrog: int = 10
    spread: float = 1.5
    importance_samples: int = 8192
    ti_nodes: int = 0
    ti_steps: int = 1000
    smc_particles: int = 0
    smc_repeats: int = 4
    smc_hmc_moves: int = 1
    smc_step_size: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        validate_sample_config(self)

    @property
    def smc_config(self) -> SMCConfig:
        particles = self.smc_particles or SMC_DEFAULT_PARTICLES
        return SMCConfig(particles=particles, hmc_moves=self.smc_hmc_moves,
                         step_size=self.smc_step_size)

    @property
    def local_moves_config(self) -> LocalMoves:
        return LocalMoves(self.local_moves, self.local_step_size, self.local_leapfrog)


def validate_sample_config(config: SampleConfig) -> None:
    """Raise ``ValueError`` naming the first bad field (with its flag's spelling)."""
    check_choice("method", config.method, METHODS)
    check_choice("local", config.local, LOCAL_MOVES)
    for name, low in (("chains", 1), ("therm", 0), ("steps", 1), ("skip", 0), ("n_leapfrog", 1),
                      ("local_moves", 1), ("local_leapfrog", 1), ("importance_samples", 0),
                      ("ti_nodes", 0), ("ti_steps", 4), ("smc_particles", 0),
                      ("smc_repeats", 2), ("smc_hmc_moves", 0), ("seed", 0)):
        check_int(FLAG_NAMES.get(name, name.replace("_", "-")), getattr(config, name), low)
    for name in ("step_size", "local_step_size", "smc_step_size"):
        check_real(name.replace("_", "-"), getattr(config, name), 0)
    if config.method == "smc" or config.smc_particles:
        try:
            _ = config.smc_config  # SMCConfig checks its own fields
        except ValueError as error:
            raise ValueError(str(error).replace("_", "-")) from None
    check_real("spread", config.spread, 0)


@torch.no_grad()
def overdispersed_start(model, n: int, spread: float,
                        generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """``(z, x, ln q(x))`` of ``n`` starting states: latents ``spread`` times wider than the
    prior, mapped by the flow, with a random global sign for a Z2-symmetric target."""
    z = spread * model.flow.sample_latent(n, generator)
    x = model.flow.generate(z)[0]
    if model.z2_symmetric:
        signs = random_signs(n, generator, x.device, x.dtype)
        x = x * signs.reshape(-1, *[1] * (x.dim() - 1))
    return z, x, model.sampler.log_prob(x)


def resolve_method(model, method: str) -> str:
    """``method``, with ``auto`` resolved: ``exact`` where the target has exact moves."""
    if method != "auto":
        if method == "exact" and capability(model.target, "exact_move") is None:
            raise ValueError(f"method='exact': the target {capability(model.target, 'describe')()}"
                             " has no exact equilibrium move; use hybrid, mh or an HMC method")
        return method
    return "hybrid" if capability(model.target, "exact_move") is None else "exact"


def exact_local_move(model, config: SampleConfig):
    """The target's exact move if the hybrid kernel is to use it, else ``None``."""
    move = capability(model.target, "exact_move")
    if config.local == "exact" and move is None:
        raise ValueError(f"local='exact': the target {capability(model.target, 'describe')()} "
                         "has no exact equilibrium move; use local='hmc' or 'auto'")
    return None if config.local == "hmc" else move


def run_sampler(model, config: SampleConfig, generator: torch.Generator,
                progress: StepCounter | None = None):
    """The Markov-chain result of ``config.method`` for ``model`` (a
    :class:`neuralrg.model.Model`); each step is reported to ``progress``."""
    method = resolve_method(model, config.method)
    if method == "smc":
        return run_smc(model, config, generator, progress)
    target = model.target
    common = dict(n_therm=config.therm, n_skip=config.skip, generator=generator,
                  progress=progress)
    gradient = getattr(target, "grad_log_prob", None)
    grad_fn = None if gradient is None else (lambda x: -gradient(x))
    z0, x0, log_q0 = overdispersed_start(model, config.chains, config.spread, generator)

    def propose(n: int):
        with torch.no_grad():
            return model.sampler.sample(n, generator)

    if method == "exact":
        result = exact_chains(target.exact_move, target.log_prob, x0, config.steps, **common)
        return score_states(model, result)
    if method == "mh":
        return independent_metropolis(propose, target.log_prob, config.chains, config.steps,
                                      initial=(x0, log_q0), **common)
    if method == "hybrid":
        return hybrid_metropolis(
            lambda n, x: model.sampler.sample_and_score(n, x, generator), target.log_prob,
            (x0, log_q0), config.steps, local=config.local_moves_config,
            exact_move=exact_local_move(model, config), grad_fn=grad_fn, **common)
    hmc_args = dict(step_size=config.step_size, n_leapfrog=config.n_leapfrog,
                    n_steps=config.steps, **common)
    if method == "hmc-physical":
        return hmc_physical(target.log_prob, x0, grad_fn=grad_fn, **hmc_args)
    result = hmc_latent(model.flow.bijector, target.log_prob, z0, **hmc_args)
    if model.z2_symmetric:  # pi(x) = pi(-x): a random global sign per chain is exact
        signs = random_signs(config.chains, generator, dtype=result.samples.dtype)
        result.samples = result.samples * signs.reshape(1, -1, *[1] * len(model.flow.event_shape))
    return result


@torch.no_grad()
def score_states(model, result: ExactChainResult, max_states: int = SCORED_STATES,
                 batch_size: int = 1024) -> ExactChainResult:
    """``result`` with ln q of the sampling density at evenly thinned recorded steps (at most
    ``max_states`` states in all)."""
    n_steps, n_chains = result.log_pi.shape
    stride = max(1, -(-n_steps * n_chains // max_states))
    steps = torch.arange(0, n_steps, stride)
    states = result.samples[steps].reshape(-1, *result.samples.shape[2:])
    log_q = torch.cat([model.sampler.log_prob(part).double()
                       for part in states.split(batch_size)])
    result.log_q, result.scored_steps = log_q.reshape(len(steps), n_chains).cpu(), steps
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


def run_smc(model, config: SampleConfig, generator: torch.Generator,
            progress: StepCounter | None = None) -> SMCRepeats:
    """The SMC runs of ``config`` (``smc_repeats`` on each of two ladders) from the model's
    sampling density to its target."""
    return smc_repeats(model.sampler, model.target.log_prob, config.smc_config,
                       config.smc_repeats, generator, progress)


def chain_progress(config: SampleConfig, enabled: bool = True) -> Progress:
    """Progress of the chains of ``config`` (every step, burn-in included), or of its SMC
    runs."""
    if config.method == "smc":
        return Progress(2 * config.smc_repeats, enabled=enabled, unit="SMC run")
    return Progress(config.therm + config.steps * (config.skip + 1), enabled=enabled,
                    unit="chain step")
