"""Annealed sequential Monte Carlo from a flow: particles from q carried to pi along
gamma_b = q^(1-b) pi^b, b from 0 to 1, for targets without exact equilibrium moves.

Each rung reweights the particles by exp((b' - b) w), w = ln pi - ln q, with b' chosen by
bisection so that the conditional effective sample size of the increment is
``ess_fraction`` of the particles (Zhou, Johansen and Aston, J. Comput. Graph. Stat. 25, 701
(2016)); when the ESS of the accumulated weights falls below ``resample_fraction``, the
particles are resampled (systematic resampling) and the running ln Z takes the stage's
log mean weight. Then each particle makes gamma_b'-invariant moves: ``flow_moves`` independent
flow proposals (accepted with min(1, exp(b' [w(x') - w(x)]))) and ``hmc_moves`` HMC
trajectories on -ln gamma_b' (the flow's ln q differentiated by autograd), whose step size
starts at ``step_size`` and adapts from rung to rung towards an acceptance of
:data:`HMC_TARGET_ACCEPTANCE` (from the previous rung's particles, so each rung's move keeps
its own gamma_b).

The estimate of Z is unbiased, but with heavy-tailed path weights or moves that do not
equilibrate at each rung every run can be low by the same amount: repeats that agree are no
evidence of correctness. The diagnostics that are (see
:func:`neuralrg.measure.free_energy.smc_entry`) need the path weights of runs without
resampling (:attr:`SMCRun.final_log_weights`) and runs on a finer ladder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralrg.mcmc.hmc import HMCState, hmc_step, make_evaluator
from neuralrg.mcmc.metropolis import select
from neuralrg.mcmc.result import SamplerResult
from neuralrg.validation import check_int, check_real

LogProb = Callable[[Tensor], Tensor]
HMC_TARGET_ACCEPTANCE = 0.75


@dataclass(frozen=True)
class SMCConfig:
    """Particles, the adaptive ladder (``ess_fraction`` kept per rung), resampling, and the
    moves per rung; ``max_rungs`` bounds the ladder."""

    particles: int = 256
    ess_fraction: float = 0.9
    resample_fraction: float = 0.5
    flow_moves: int = 1
    hmc_moves: int = 1
    step_size: float = 0.05
    n_leapfrog: int = 5
    max_rungs: int = 10000

    def __post_init__(self):
        check_int("smc_particles", self.particles, 2)
        check_real("smc_ess_fraction", self.ess_fraction, 0, 1, high_open=True)
        check_real("smc_resample_fraction", self.resample_fraction, 0, 1, low_open=False)
        check_int("smc_flow_moves", self.flow_moves, 0)
        check_int("smc_hmc_moves", self.hmc_moves, 0)
        check_real("smc_step_size", self.step_size, 0)
        check_int("smc_leapfrog", self.n_leapfrog, 1)
        check_int("smc_max_rungs", self.max_rungs, 1)

    def finer(self) -> SMCConfig:
        """The same sampler on a ladder with about twice the rungs (the incremental weights'
        variance, 1 - ESS fraction to leading order, quartered)."""
        return SMCConfig(**{**self.__dict__, "ess_fraction": 1 - (1 - self.ess_fraction) / 4})

    def annealed_importance_sampling(self) -> SMCConfig:
        """The same ladder and moves without resampling (AIS): every particle keeps its own
        path weight, so the weights of independent particles show the estimate's tail."""
        return SMCConfig(**{**self.__dict__, "resample_fraction": 0.0})


@dataclass
class SMCRun:
    """One run: ``ln_z``, the ladder ``betas``, the number of ``resamples``, the final
    particles ``x`` with ``final_log_weights`` (unnormalised, each including the ln Z of the
    stages before: their log mean is ``ln_z``, so the weights of several runs can be pooled)
    and the moves' acceptance."""

    ln_z: float
    betas: list[float]
    resamples: int
    x: Tensor
    final_log_weights: Tensor
    flow_acceptance: float
    hmc_acceptance: float


def _log_ess(log_w: Tensor) -> Tensor:
    return 2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)


def next_beta(beta: float, log_w: Tensor, w: Tensor, fraction: float) -> float:
    """The largest b' <= 1 whose increment exp((b' - b) w) keeps a conditional ESS of at
    least ``fraction`` of the particles, by bisection."""
    normalised = log_w - torch.logsumexp(log_w, 0)

    def conditional_ess(step: float) -> float:
        inc = step * w
        ln_num = 2 * torch.logsumexp(normalised + inc, 0)
        return float(torch.exp(ln_num - torch.logsumexp(normalised + 2 * inc, 0)))

    if conditional_ess(1 - beta) >= fraction:
        return 1.0
    low, high = 0.0, 1 - beta
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if conditional_ess(middle) >= fraction else (low, middle)
    return beta + max(low, 1e-12)


def systematic_resample(log_w: Tensor, generator: torch.Generator | None) -> Tensor:
    """Indices of ``len(log_w)`` particles drawn by systematic resampling."""
    n = len(log_w)
    cumulative = torch.cumsum(torch.softmax(log_w, 0), 0)
    offset = torch.rand((), generator=generator, dtype=cumulative.dtype, device=log_w.device)
    points = (torch.arange(n, dtype=cumulative.dtype, device=log_w.device) + offset) / n
    return torch.searchsorted(cumulative, points).clamp(max=n - 1)


class _Particles:
    """Particles with their ln q and ln pi (float64) and the moves that keep gamma_b."""

    def __init__(self, density, log_prob: LogProb, x: Tensor, log_q: Tensor):
        self.density, self.log_prob, self.x = density, log_prob, x
        self.log_q, self.log_pi = log_q.double(), log_prob(x).double()
        self.flow_accepted = self.flow_tried = self.hmc_accepted = self.hmc_tried = 0
        self.step_size: float | None = None

    @property
    def w(self) -> Tensor:
        return self.log_pi - self.log_q

    def take(self, index: Tensor) -> None:
        self.x, self.log_q, self.log_pi = self.x[index], self.log_q[index], self.log_pi[index]

    def flow_move(self, beta: float, generator) -> None:
        x_new, log_q_new = self.density.sample(len(self.x), generator)
        log_pi_new = self.log_prob(x_new).double()
        log_ratio = beta * ((log_pi_new - log_q_new.double()) - self.w)
        u = torch.rand(len(self.x), generator=generator, dtype=torch.float64,
                       device=self.x.device)
        accept = torch.isfinite(log_ratio) & (u.log() < log_ratio)
        self.x = select(accept, x_new, self.x)
        self.log_q = torch.where(accept, log_q_new.double(), self.log_q)
        self.log_pi = torch.where(accept, log_pi_new, self.log_pi)
        self.flow_accepted += int(accept.sum())
        self.flow_tried += len(accept)

    def hmc_move(self, beta: float, config: SMCConfig, generator) -> None:
        def potential(x: Tensor) -> Tensor:
            return -(1 - beta) * self.density.log_prob(x) - beta * self.log_prob(x)

        evaluate = make_evaluator(potential, None)
        state = HMCState(self.x, *evaluate(self.x))
        step = self.step_size or config.step_size
        state, accept, _ = hmc_step(state, evaluate, step, config.n_leapfrog, generator)
        rate = float(accept.double().mean())
        self.step_size = step * math.exp(min(1.0, max(-1.0, 2 * (rate - HMC_TARGET_ACCEPTANCE))))
        self.x = state.q.detach()
        with torch.no_grad():
            self.log_q, self.log_pi = (self.density.log_prob(self.x).double(),
                                       self.log_prob(self.x).double())
        self.hmc_accepted += int(accept.sum())
        self.hmc_tried += len(accept)


@torch.no_grad()
def smc(density, log_prob: LogProb, config: SMCConfig = SMCConfig(),
        generator: torch.Generator | None = None) -> SMCRun:
    """One annealed SMC run from ``density`` (``sample(n, generator) -> (x, ln q)`` and
    ``log_prob(x)``, e.g. a flow) to the unnormalised ``log_prob``.

    >>> import math
    >>> class Wide:  # q = N(0, 2^2) in 1D
    ...     def sample(self, n, generator=None):
    ...         x = 2 * torch.randn(n, 1, generator=generator)
    ...         return x, self.log_prob(x)
    ...     def log_prob(self, x):
    ...         return -x[:, 0] ** 2 / 8 - math.log(2 * math.sqrt(2 * math.pi))
    >>> run = smc(Wide(), lambda x: -x[:, 0] ** 2 / 2, generator=torch.manual_seed(0))
    >>> abs(run.ln_z - 0.5 * math.log(2 * math.pi)) < 0.1, run.betas[-1]
    (True, 1.0)
    """
    x, log_q = density.sample(config.particles, generator)
    particles = _Particles(density, log_prob, x, log_q)
    log_w = torch.zeros(config.particles, dtype=torch.float64, device=x.device)
    ln_z, beta, betas, resamples = 0.0, 0.0, [0.0], 0
    while beta < 1 and len(betas) <= config.max_rungs:
        new_beta = next_beta(beta, log_w, particles.w, config.ess_fraction)
        log_w = log_w + (new_beta - beta) * particles.w
        beta = new_beta
        betas.append(beta)
        if beta < 1 and float(torch.exp(_log_ess(log_w))) < config.resample_fraction * len(x):
            ln_z += float(torch.logsumexp(log_w, 0)) - math.log(len(log_w))
            particles.take(systematic_resample(log_w, generator))
            log_w, resamples = torch.zeros_like(log_w), resamples + 1
        _move(particles, beta, config, generator)
    if beta < 1:
        raise ValueError(f"SMC reached only b = {beta:.3g} in smc_max_rungs={config.max_rungs} "
                         "rungs; raise it or lower smc_ess_fraction")
    return SMCRun(ln_z + float(torch.logsumexp(log_w, 0)) - math.log(len(log_w)), betas,
                  resamples, particles.x, log_w + ln_z, _rate(particles.flow_accepted,
                                                             particles.flow_tried),
                  _rate(particles.hmc_accepted, particles.hmc_tried))


def _move(particles: _Particles, beta: float, config: SMCConfig, generator) -> None:
    for _ in range(config.flow_moves):
        particles.flow_move(beta, generator)
    for _ in range(config.hmc_moves):
        particles.hmc_move(beta, config, generator)


def _rate(accepted: int, tried: int) -> float:
    return accepted / tried if tried else math.nan


@dataclass
class SMCRepeats(SamplerResult):
    """Independent runs without resampling (``coarse``: annealed importance sampling on the
    configured ladder, whose particles' path weights are independent) and SMC runs with
    resampling on a ladder about twice as fine (``fine``): what the verdict on an SMC estimate
    needs."""

    coarse: list[SMCRun]
    fine: list[SMCRun]
    is_chain = False

    @property
    def runs(self) -> list[SMCRun]:
        return [*self.coarse, *self.fine]

    @property
    def particles(self) -> tuple[Tensor, Tensor]:
        """The fine runs' final particles and their pooled unnormalised log-weights."""
        return (torch.cat([run.x for run in self.fine]),
                torch.cat([run.final_log_weights for run in self.fine]))


def smc_repeats(density, log_prob: LogProb, config: SMCConfig, repeats: int,
                generator: torch.Generator | None = None, progress=None) -> SMCRepeats:
    """``repeats`` AIS runs on ``config``'s ladder (:meth:`SMCConfig.annealed_importance_sampling`)
    and ``repeats`` SMC runs on :meth:`SMCConfig.finer`; each run is reported to
    ``progress``."""
    check_int("smc_repeats", repeats, 2)
    runs = {}
    for name, settings in (("coarse", config.annealed_importance_sampling()),
                           ("fine", config.finer())):
        runs[name] = []
        for _ in range(repeats):
            runs[name].append(smc(density, log_prob, settings, generator))
            if progress is not None:
                progress.update(1)
    return SMCRepeats(**runs)
