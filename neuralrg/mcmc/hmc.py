"""Hamiltonian Monte Carlo in physical space and in the latent space of a flow.

Batched independent chains, unit mass, leapfrog integration, per-chain Metropolis test
on ``H = U(q) + |p|^2 / 2``. A trajectory ending at a non-finite energy or gradient is
rejected and counted. Gradients come from autograd on ``U`` or from an analytic
``grad_fn(q) = dU/dq`` (the negative force).

Every gradient evaluation is one batched call over all chains: a run costs
``1 + n_leapfrog`` evaluations per trajectory after the first (the gradient at the
current state is reused), i.e. ``n_grad_evals = 1 + n_leapfrog * n_trajectories``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralrg.mcmc.chains import StepCounter, check_run_length, recording_schedule
from neuralrg.mcmc.metropolis import select
from neuralrg.mcmc.result import SamplerResult
from neuralrg.validation import check_int, check_real

Potential = Callable[[Tensor], Tensor]
GradFn = Callable[[Tensor], Tensor]
Evaluator = Callable[[Tensor], tuple[Tensor, Tensor]]


@dataclass
class HMCResult(SamplerResult):
    """Output of :func:`hmc`, :func:`hmc_physical` and :func:`hmc_latent`.

    ``samples``: ``(n_steps, n_chains, *event_shape)`` physical configurations; ``log_pi``
    and ``energies`` (the sampled potential ``U`` at each recorded state): float64
    ``(n_steps, n_chains)``. ``acceptance_per_chain`` / ``acceptance``: over the sampling
    phase (all trajectories after thermalisation, skipped ones included).
    ``n_grad_evals``: batched gradient evaluations over the whole run;
    ``n_trajectories``: trajectories over the whole run; ``n_nonfinite``: trajectories
    rejected for a non-finite energy or gradient. ``latent``: the ``z`` samples of
    :func:`hmc_latent`, else ``None``.
    """

    samples: Tensor
    log_pi: Tensor
    energies: Tensor
    acceptance_per_chain: Tensor
    acceptance: float
    n_grad_evals: int
    n_trajectories: int
    n_nonfinite: int
    latent: Tensor | None = None


@dataclass
class HMCState:
    """Positions ``q`` of the chains, their potential ``u`` (float64) and ``dU/dq``."""

    q: Tensor
    u: Tensor
    grad: Tensor


def _validate_start(q0: Tensor) -> None:
    if not isinstance(q0, Tensor) or not q0.is_floating_point():
        raise ValueError(f"the initial state must be a floating-point tensor, got {q0!r}")
    if q0.ndim < 2 or q0.shape[0] < 1 or q0[0].numel() < 1:
        raise ValueError(
            "the initial state must have shape (n_chains, *event_shape) with n_chains >= 1 "
            f"and a non-empty event, got {tuple(q0.shape)}"
        )


def _checked_energy(potential: Potential, q: Tensor) -> Tensor:
    u = potential(q)
    if tuple(u.shape) != (q.shape[0],):
        raise ValueError(f"the potential must return shape ({q.shape[0]},), got {tuple(u.shape)}")
    return u


def make_evaluator(potential: Potential, grad_fn: GradFn | None) -> Evaluator:
    """``q -> (U(q) as float64, dU/dq)`` by autograd, or with the analytic ``grad_fn``."""

    def analytic(q: Tensor) -> tuple[Tensor, Tensor]:
        grad = grad_fn(q)
        if grad.shape != q.shape:
            raise ValueError(f"grad_fn must return shape {tuple(q.shape)}, got {tuple(grad.shape)}")
        return _checked_energy(potential, q).to(torch.float64), grad.to(q.dtype)

    def autograd(q: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            q_leaf = q.detach().requires_grad_(True)
            u = _checked_energy(potential, q_leaf)
            (grad,) = torch.autograd.grad(u.sum(), q_leaf, allow_unused=True)
        grad = torch.zeros_like(q) if grad is None else grad
        return u.detach().to(torch.float64), grad.detach()

    return autograd if grad_fn is None else analytic


def _kinetic(p: Tensor) -> Tensor:
    return 0.5 * p.to(torch.float64).pow(2).flatten(1).sum(1)


def _all_finite(u: Tensor, grad: Tensor) -> Tensor:
    return torch.isfinite(u) & torch.isfinite(grad).flatten(1).all(1)


def _leapfrog(
    state: HMCState, p: Tensor, evaluate: Evaluator, step_size: float, n_leapfrog: int
) -> tuple[HMCState, Tensor]:
    """Integrate ``n_leapfrog`` leapfrog steps from ``(state, p)``."""
    q, grad, u = state.q, state.grad, state.u
    p = p - 0.5 * step_size * grad
    for i in range(n_leapfrog):
        q = q + step_size * p
        u, grad = evaluate(q)
        p = p - (step_size if i < n_leapfrog - 1 else 0.5 * step_size) * grad
    return HMCState(q, u, grad), p


def hmc_step(
    state: HMCState,
    evaluate: Evaluator,
    step_size: float,
    n_leapfrog: int,
    generator: torch.Generator | None,
) -> tuple[HMCState, Tensor, Tensor]:
    """One HMC trajectory per chain; returns the new state, accepted and non-finite masks."""
    q = state.q
    p = torch.randn(q.shape, generator=generator, dtype=q.dtype, device=q.device)
    h_old = state.u + _kinetic(p)
    proposal, p_new = _leapfrog(state, p, evaluate, step_size, n_leapfrog)
    h_new = proposal.u + _kinetic(p_new)
    finite = _all_finite(proposal.u, proposal.grad) & torch.isfinite(h_new)
    u_rand = torch.rand(q.shape[0], generator=generator, dtype=torch.float64, device=q.device)
    accept = finite & (torch.log(u_rand) < h_old - h_new)
    new_state = HMCState(
        select(accept, proposal.q, state.q),
        torch.where(accept, proposal.u, state.u),
        select(accept, proposal.grad, state.grad),
    )
    return new_state, accept, ~finite


def _initial_state(q0: Tensor, evaluate: Evaluator) -> HMCState:
    _validate_start(q0)
    q = q0.detach().clone()
    u, grad = evaluate(q)
    n_bad = int((~_all_finite(u, grad)).sum())
    if n_bad:
        raise ValueError(f"{n_bad} of {q.shape[0]} initial states have non-finite U or dU/dq")
    return HMCState(q, u, grad)


@torch.no_grad()
def hmc(
    potential: Potential,
    q0: Tensor,
    *,
    step_size: float,
    n_leapfrog: int,
    n_steps: int,
    n_therm: int = 0,
    n_skip: int = 0,
    grad_fn: GradFn | None = None,
    generator: torch.Generator | None = None,
    progress: StepCounter | None = None,
) -> HMCResult:
    """Sample ``exp(-U(q))`` with HMC from ``q0`` of shape ``(n_chains, *event_shape)``.

    ``potential(q)`` returns ``(n_chains,)`` energies; ``grad_fn(q)``, if given, returns
    ``dU/dq`` and replaces autograd. After ``n_therm`` trajectories, ``n_steps`` states are
    recorded, with ``n_skip`` discarded trajectories before each. ``generator`` drives
    the momenta and the accept/reject uniforms; every trajectory is reported to
    ``progress``. ``log_pi`` in the result is ``-U``.

    >>> result = hmc(lambda q: 0.5 * q.pow(2).sum(1), torch.zeros(8, 2),
    ...              step_size=0.3, n_leapfrog=5, n_steps=20)
    >>> result.samples.shape, result.n_grad_evals
    (torch.Size([20, 8, 2]), 101)
    """
    check_real("step_size", step_size, 0)
    check_int("n_leapfrog", n_leapfrog, 1)
    check_run_length(n_steps, n_therm, n_skip)
    evaluate = make_evaluator(potential, grad_fn)
    state = _initial_state(q0, evaluate)
    n_chains, device = state.q.shape[0], state.q.device
    samples = state.q.new_empty((n_steps, *state.q.shape))
    energies = torch.empty(n_steps, n_chains, dtype=torch.float64, device=device)
    n_accepted = torch.zeros(n_chains, dtype=torch.int64, device=device)
    n_nonfinite = torch.zeros((), dtype=torch.int64, device=device)
    n_trajectories = n_therm + n_steps * (n_skip + 1)
    for step, slot in enumerate(recording_schedule(n_therm, n_steps, n_skip, progress)):
        state, accept, nonfinite = hmc_step(state, evaluate, step_size, n_leapfrog, generator)
        n_nonfinite += nonfinite.sum()
        if step >= n_therm:
            n_accepted += accept
        if slot is not None:
            samples[slot], energies[slot] = state.q, state.u
    acceptance_per_chain = n_accepted.to(torch.float64) / (n_steps * (n_skip + 1))
    return HMCResult(
        samples=samples,
        log_pi=-energies,
        energies=energies,
        acceptance_per_chain=acceptance_per_chain,
        acceptance=float(acceptance_per_chain.mean()),
        n_grad_evals=1 + n_leapfrog * n_trajectories,
        n_trajectories=n_trajectories,
        n_nonfinite=int(n_nonfinite),
    )


def hmc_physical(log_prob: Callable[[Tensor], Tensor], x0: Tensor, **options) -> HMCResult:
    """HMC on ``pi(x)`` with ``U(x) = -ln pi(x)``; keyword ``options`` as in :func:`hmc`
    (an analytic ``grad_fn`` must return ``dU/dx = -d ln pi / dx``).

    >>> result = hmc_physical(lambda x: -0.5 * x.pow(2).sum(1), torch.zeros(4, 3),
    ...                       step_size=0.2, n_leapfrog=4, n_steps=10)
    >>> result.samples.shape
    torch.Size([10, 4, 3])
    """
    return hmc(lambda x: -log_prob(x), x0, **options)


def hmc_latent(
    flow_forward: Callable[[Tensor], tuple[Tensor, Tensor]],
    log_prob: Callable[[Tensor], Tensor],
    z0: Tensor,
    **options,
) -> HMCResult:
    """HMC in the latent space of ``x = g(z)``, ``flow_forward(z) -> (x, ln|det dg/dz|)``.

    The potential is ``U(z) = -ln pi(g(z)) - ln|det dg/dz|`` (``|z|^2/2 + const`` when the
    flow is exact); recorded ``z`` are returned in ``latent`` and their images ``g(z)`` in
    ``samples``, with ``log_pi = ln pi(g(z))``. Keyword ``options`` as in :func:`hmc`; an
    analytic ``grad_fn`` must return ``dU/dz``.

    >>> import math
    >>> affine = lambda z: (2.0 * z + 1.0, z.new_full((z.shape[0],), 3 * math.log(2.0)))
    >>> result = hmc_latent(affine, lambda x: -0.5 * (x - 1).pow(2).sum(1) / 4,
    ...                     torch.zeros(4, 3), step_size=0.2, n_leapfrog=4, n_steps=10)
    >>> torch.allclose(result.samples, 2.0 * result.latent + 1.0)
    True
    """

    def potential(z: Tensor) -> Tensor:
        x, log_det = flow_forward(z)
        return -log_prob(x) - log_det

    result = hmc(potential, z0, **options)
    with torch.no_grad():
        images = [flow_forward(z)[0] for z in result.samples]
        log_pi = torch.stack([log_prob(x).to(torch.float64) for x in images])
    return dataclasses.replace(
        result, samples=torch.stack(images), log_pi=log_pi, latent=result.samples
    )
