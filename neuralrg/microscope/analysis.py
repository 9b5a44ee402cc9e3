"""What a trained NeuralRG learned: RG views per scale, receptive fields, mutual
information, the renormalized energy of the latents, and how the flow covers its target.

Pure tensor science, no files and no plotting. A hierarchical bijector here is
anything with ``forward(z) -> (x, log_det)``, ``generation_states(z)``, ``scales``
and ``kinds`` (see :class:`neuralrg.flows.hierarchy.HierarchicalBijector`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

LogProb = Callable[[Tensor], Tensor]


# --- RG views per scale ---------------------------------------------------------------------

def n_decimations(bijector) -> int:
    """Number of decimator scales of a MERA-like bijector (0 for TEBD)."""
    pairs = zip(bijector.scales, bijector.kinds, strict=True)
    return len({scale for scale, kind in pairs if kind == "decimator"})


def sublattice(x: Tensor, spacing: int) -> Tensor:
    """``x`` of shape ``(batch, *lattice)`` restricted to sites whose coordinates are
    multiples of ``spacing``.

    >>> sublattice(torch.arange(16.).reshape(1, 4, 4), 2).tolist()
    [[[0.0, 2.0], [8.0, 10.0]]]
    """
    index = (slice(None),) + (slice(None, None, spacing),) * (x.dim() - 1)
    return x[index]


@torch.no_grad()
def scale_views(bijector, z: Tensor) -> list[Tensor]:
    """The configuration at every scale while generating x = g(z), coarsest first.

    For a MERA layout with S decimator scales the view of scale ``s`` (spacing
    ``2**s``) is the generation state after the last layer of scale ``s`` has
    been applied, restricted to the spacing-``2**s`` sublattice: exactly the
    variables the RG direction hands to the layers of scale ``s``. Scale ``S``
    is the coarsest latent itself. Without decimators (TEBD) the only view is x.
    """
    n_scales = n_decimations(bijector)
    states = dict(bijector.generation_states(z))
    if n_scales == 0:
        return [states[0]]
    views = [sublattice(z, 2**n_scales)]
    for s in reversed(range(n_scales)):
        last = min(k for k, scale in enumerate(bijector.scales) if scale == s)
        views.append(sublattice(states[last], 2**s))
    return views


@torch.no_grad()
def encode_views(bijector, x: Tensor) -> list[Tensor]:
    """Views per scale of a given configuration in the RG direction, coarsest first.

    ``x`` is mapped to z by the inverse and the intermediate states are replayed
    by :func:`scale_views`; since the flow is a bijection these are the states the
    inverse passes through (up to round-off).
    """
    return scale_views(bijector, bijector.inverse(x)[0])


# --- Receptive fields -----------------------------------------------------------------------

def jacobian(bijector, z: Tensor) -> Tensor:
    """``J[b, i, k] = d x_i / d z_k`` at each ``z[b]`` (flat sites), shape ``(batch, N, N)``.

    Samples are independent, so one backward pass per output site gives that
    row of every sample's Jacobian at once (N passes, vectorised over the batch).
    """
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        x = bijector(z)[0].reshape(z.shape[0], -1)
        rows = [torch.autograd.grad(x[:, i].sum(), z, retain_graph=i < x.shape[1] - 1)[0]
                for i in range(x.shape[1])]
    return torch.stack([r.reshape(z.shape[0], -1) for r in rows], 1).detach()


def periodic_displacements(lattice_shape: tuple[int, ...], step: float = 1.0) -> Tensor:
    """Minimum-image displacements ``r_i - c`` from every centre c of a grid with spacing
    ``step`` to every site i, shape ``(n_centres, N, d)``."""
    def grid(spacing: float) -> Tensor:
        axes = [torch.arange(0, n, spacing, dtype=torch.float64) for n in lattice_shape]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))

    sizes = torch.tensor(lattice_shape, dtype=torch.float64)
    delta = grid(1.0)[None, :, :] - grid(step)[:, None, :]
    return delta - sizes * torch.round(delta / sizes)


def rms_radius(weights: Tensor, lattice_shape: tuple[int, ...]) -> Tensor:
    """RMS radius (lattice spacings) of non-negative site weights on the periodic lattice,
    ``min_c sqrt(sum_i w_i |r_i - c|^2 / sum_i w_i)`` over centres c on the half-integer
    grid; ``weights`` is ``(..., N)``.

    >>> w = torch.zeros(1, 16); w[0, 5] = w[0, 6] = 1.0
    >>> rms_radius(w, (4, 4)).tolist()
    [0.5]
    """
    distance2 = periodic_displacements(lattice_shape, 0.5).pow(2).sum(-1)  # (centre, site)
    w = weights.double() / weights.double().sum(-1, keepdim=True)
    return (w @ distance2.T).min(-1).values.sqrt()


def receptive_field_extent(
    jacobians: Tensor, groups: list[Tensor], lattice_shape: tuple[int, ...]
) -> list[float]:
    """Mean over each latent group of the RMS radius of the mean absolute response
    E_z|dx_i/dz_k| (``jacobians`` is ``(batch, N, N)``, e.g. from :func:`jacobian`)."""
    amplitude = jacobians.double().abs().mean(0)  # (site i, latent k)
    return [float(rms_radius(amplitude[:, group].T, lattice_shape).mean()) for group in groups]


def showcase_latents(bijector, groups: list[Tensor], lattice_shape: tuple[int, ...]) -> list:
    """A few latents per group (finest first), near the lattice centre: the non-corner
    members of one decimator patch (the 2^d - 1 wavelet orientations) or, for the
    last group and for TEBD, the group member nearest the centre."""
    centre = sum(n // 2 * math.prod(lattice_shape[mu + 1:]) for mu, n in enumerate(lattice_shape))
    distance2 = periodic_displacements(lattice_shape).pow(2).sum(-1)[centre]  # from the centre
    decimators = [k for k, kind in enumerate(bijector.kinds) if kind == "decimator"]
    chosen = []
    for k in decimators:
        patches = bijector.patches(k).cpu()
        best = int(distance2[patches[:, 0]].argmin())
        chosen.append(patches[best, 1:].tolist())
    last = groups[len(decimators)]
    chosen.append([int(last[distance2[last].argmin()])])
    return chosen


# --- Mutual information ---------------------------------------------------------------------

def normal_scores(samples: Tensor) -> Tensor:
    """Rank-based normal scores Phi^-1(rank / (n + 1)) of each column of ``(n, V)``."""
    n = samples.shape[0]
    ranks = samples.double().argsort(0).argsort(0).double() + 1
    return math.sqrt(2) * torch.special.erfinv(2 * ranks / (n + 1) - 1)


def gaussian_mutual_information(samples: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise mutual information (nats) of the columns of ``samples`` ``(n, V)`` and its
    standard error, both ``(V, V)``, diagonal NaN.

    Estimator: Gaussian copula. Each column is replaced by its normal scores and
    I = -1/2 ln(1 - rho^2) - 1/(2n), rho their correlation; the 1/(2n) removes the
    leading bias (E[rho_hat^2] = rho^2 + (1 - rho^2)^2 / n). Error by the delta method,
    sqrt(rho^2 / n + 1 / (2 n^2)). Exact for Gaussian pairs, invariant under monotone
    maps of each variable, a lower bound otherwise.
    """
    n = samples.shape[0]
    u = normal_scores(samples)
    u = (u - u.mean(0)) / u.std(0, unbiased=False)
    rho = ((u.T @ u) / n).clamp(-1 + 1e-12, 1 - 1e-12)
    mi = -0.5 * torch.log1p(-rho**2) - 1 / (2 * n)
    err = torch.sqrt(rho**2 / n + 1 / (2 * n**2))
    eye = torch.eye(len(rho), dtype=torch.bool)
    return mi.masked_fill(eye, math.nan), err.masked_fill(eye, math.nan)


def binned_mutual_information(samples: Tensor, bins: int = 8) -> Tensor:
    """Pairwise mutual information (nats) from ``bins`` equal-frequency bins per variable,
    plug-in with the Miller-Madow correction -(bins - 1)^2 / (2n); diagonal NaN.

    Sees any dependence (not only monotone) at the bin resolution, and is biased low
    for smooth dependence: used as a cross-check of :func:`gaussian_mutual_information`.
    """
    n, n_vars = samples.shape
    labels = (samples.double().argsort(0).argsort(0) * bins) // n
    onehot = torch.nn.functional.one_hot(labels, bins).double().reshape(n, n_vars * bins)
    joint = (onehot.T @ onehot / n).reshape(n_vars, bins, n_vars, bins).permute(0, 2, 1, 3)
    px = joint.sum(3, keepdim=True)
    py = joint.sum(2, keepdim=True)
    terms = torch.where(joint > 0, joint * torch.log(joint / (px * py)), joint.new_zeros(()))
    mi = terms.sum((2, 3)) - (bins - 1) ** 2 / (2 * n)
    return mi.masked_fill(torch.eye(n_vars, dtype=torch.bool), math.nan)


def mean_off_diagonal(matrix: Tensor) -> float:
    """Mean over the off-diagonal entries (NaN for a 1 x 1 matrix)."""
    off = ~torch.eye(len(matrix), dtype=torch.bool)
    return float(matrix[off].mean()) if off.any() else math.nan


# --- Renormalized energy --------------------------------------------------------------------

@torch.no_grad()
def effective_energy(bijector, log_prob: LogProb, z: Tensor) -> Tensor:
    """E_eff(z) = -ln pi(g(z)) - ln|det dg/dz| (units of k_B T), per sample."""
    x, log_det = bijector(z)
    return -(log_prob(x) + log_det).double()


def effective_energy_constant(n_sites: int, ln_z: float) -> float:
    """C with E_eff(z) = |z|^2 / 2 + C for a perfect flow, q = pi / Z:
    C = (N/2) ln(2 pi) - ln Z, Z the normalisation of pi."""
    return 0.5 * n_sites * math.log(2 * math.pi) - ln_z


def latent_cut(
    bijector, log_prob: LogProb, base: Tensor, direction: Tensor, t: Tensor
) -> Tensor:
    """E_eff along the line ``base_perp + t * direction`` (``direction`` unit, ``base`` with
    its component along ``direction`` removed); shape ``(len(t), batch)``."""
    flat_dir = direction.reshape(-1)
    base_flat = base.reshape(base.shape[0], -1)
    perp = base_flat - (base_flat @ flat_dir)[:, None] * flat_dir
    points = perp[None] + t.to(perp)[:, None, None] * flat_dir
    energies = effective_energy(bijector, log_prob, points.reshape(-1, *base.shape[1:]))
    return energies.reshape(len(t), base.shape[0])


# --- coverage of the target ------------------------------------------------------------------

def coverage(log_w_flow: Tensor, log_w_target: Tensor, ln_z: float) -> dict[str, float]:
    """Both directions of the flow's fit, from the log-weights w = ln pi~ - ln q of samples
    of the flow and of samples of the target itself (``ln_z``: ln of pi~'s normalisation):
    KL(q || pi) = ln Z - E_q[w], the gap that reverse-KL training minimises, and
    KL(pi || q) = E_pi[w] - ln Z, which it does not see: large where the flow leaves part of
    the target out (and heavy-tailed importance weights with it).

    >>> w = torch.zeros(4, dtype=torch.float64)
    >>> coverage(w, w, 0.0)
    {'kl_flow_target': 0.0, 'kl_target_flow': 0.0}
    """
    return {"kl_flow_target": ln_z - float(log_w_flow.double().mean()),
            "kl_target_flow": float(log_w_target.double().mean()) - ln_z}


def mass_outside(reference: Tensor, values: Tensor, tail: float = 0.01) -> float:
    """Fraction of ``values`` outside the central ``1 - 2 tail`` range of ``reference``
    (``2 tail`` when both come from one distribution): e.g. the share of equilibrium
    magnetisations that the flow almost never draws.

    >>> mass_outside(torch.arange(100.), torch.tensor([-5., 50., 200.]), tail=0.05)
    0.6666666666666666
    """
    low, high = torch.quantile(reference.double(), torch.tensor([tail, 1 - tail]).double())
    values = values.double()
    return float(((values < low) | (values > high)).double().mean())


def bootstrap_error(statistic: Callable[[Tensor], float], samples: Tensor, n_boot: int = 30,
                    generator: torch.Generator | None = None) -> float:
    """Bootstrap standard error of ``statistic(samples)``, resampling rows of ``samples``."""
    n = samples.shape[0]
    values = [statistic(samples[torch.randint(n, (n,), generator=generator)])
              for _ in range(n_boot)]
    return float(torch.tensor(values, dtype=torch.float64).std())
