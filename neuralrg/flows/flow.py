"""Flow = standard-normal prior + bijector, and the NeuralRG architectures."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from neuralrg.flows.bijector import Bijector
from neuralrg.flows.context import PatchContext
from neuralrg.flows.coupling import PatchCoupling
from neuralrg.flows.hierarchy import BlockFactory, HierarchicalBijector
from neuralrg.flows.layouts import LAYOUTS, PatchLayer, layout_layers
from neuralrg.flows.spline import SplinePatchCoupling
from neuralrg.validation import check_choice, check_int, check_real

NO_GRAD_SITES_PER_CHUNK = 2**16
SYMMETRISE_MODES = ("none", "eval", "train")
MAX_CONTEXT = 3  # reach in patches; 1 already sees 3^d patches
MAX_SPLINE_BOUND = 1e6  # far beyond any field's range; near float32's limit the knots overflow
SYMMETRISE_AUTO = "auto"  # "eval" for a Z2-symmetric target, else "none" (see neuralrg.model)


@dataclass(frozen=True)
class FlowConfig:
    """Architecture of a NeuralRG network on an ``L^d`` periodic lattice.

    ``symmetrise`` (what the flow does about a target with pi(x) = pi(-x), i.e. a
    ``z2_symmetric`` one): ``"none"``; ``"eval"`` trains the plain flow and samples and
    estimates with its Z2-symmetrised mixture (q(x) + q(-x)) / 2, which recovers the
    sector that reverse-KL training leaves out at no training cost; ``"train"`` also
    trains through the mixture (twice the cost per step; useful where the sectors overlap);
    ``"auto"`` (the default, as on the command line): ``"eval"`` for a Z2-symmetric target,
    else ``"none"``, decided when the flow meets its target (:class:`neuralrg.Model`).

    ``coupling``: ``"spline"`` (the default) or ``"affine"`` (the paper's RealNVP blocks; a
    configuration written before splines existed has no ``coupling`` and means this); ``"spline"``
    (:class:`~neuralrg.flows.spline.SplinePatchCoupling`: a rational-quadratic spline with
    ``bins`` bins on ``[-spline_bound, spline_bound]``, then a bounded affine map; its one
    network per coupling has width ``hidden_s``, and ``hidden_t`` is unused).

    ``context`` (default 1): how many patches away a coupling's conditioner looks on its
    layer's grid of patches (:mod:`neuralrg.flows.context`); 0 is the paper's isolated
    patches (a configuration written before context existed has no ``context`` and means
    this). Reach 1 costs a wider first layer (1.1x a step) and, at L = 16, cut the gap of a
    20 CPU-minute training from 1.86 to 0.57 nats (see ``benchmarks/README.md``).

    ``L`` and ``d`` left out (``None``) are the target's: :meth:`neuralrg.Model.of` and a
    run's configuration fill them in (:meth:`on_lattice`); ``L`` alone means ``d = 2``. A
    configuration checks itself when it is made (``ValueError`` naming the bad field).

    >>> FlowConfig(hidden_s=8).on_lattice((16, 16)).L
    16
    >>> FlowConfig(bins=1)
    Traceback (most recent call last):
    ...
    ValueError: bins=1 must be an integer >= 2
    """

    L: int | None = None
    d: int | None = None
    layout: str = "mera"
    depth: int = 8
    n_disentanglers: int = 1
    n_layers: int = 4
    hidden_s: int = 64
    hidden_t: int = 64
    mlp_depth: int = 2
    symmetrise: str = SYMMETRISE_AUTO
    coupling: str = "spline"
    bins: int = 8
    spline_bound: float = 8.0
    context: int = 1

    def __post_init__(self) -> None:
        if self.L is not None and self.d is None:
            object.__setattr__(self, "d", 2)
        validate_flow_config(self)

    @property
    def lattice_shape(self) -> tuple[int, ...]:
        if self.L is None:
            raise ValueError("FlowConfig(L=None) has no lattice yet: Model.of(target, config) "
                             "takes the target's")
        return (self.L,) * self.d

    def on_lattice(self, shape: tuple[int, ...]) -> FlowConfig:
        """This configuration on the lattice ``shape`` (a square one) where ``L`` was left
        out; ``ValueError`` if ``d`` was given and differs, or the lattice is not square."""
        if self.L is not None:
            return self
        if len(set(shape)) != 1 or (self.d is not None and self.d != len(shape)):
            raise ValueError(f"a FlowConfig with d={self.d} cannot take the lattice "
                             f"{tuple(shape)}; the layouts need an L^d lattice")
        return replace(self, L=shape[0], d=len(shape))


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """ln N(z; 0, I), summed over all but the batch dimension."""
    flat = z.reshape(z.shape[0], -1)
    return -0.5 * flat.pow(2).sum(1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)


class Flow(nn.Module):
    """A normalizing flow x = g(z) with z ~ N(0, I).

    >>> flow = build_flow(FlowConfig(L=4, d=2, hidden_s=8, hidden_t=8))
    >>> x, log_q = flow.sample(3)
    >>> torch.allclose(flow.log_prob(x), log_q, atol=1e-4)
    True
    """

    def __init__(self, bijector: Bijector, event_shape: tuple[int, ...]):
        super().__init__()
        self.bijector = bijector
        self.event_shape = tuple(event_shape)

    def _reference(self) -> Tensor:
        return next(self.parameters())

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        ref = self._reference()
        return torch.randn(
            (n, *self.event_shape), generator=generator, dtype=ref.dtype, device=ref.device
        )

    def generate(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """x = g(z) and ln q(x), in one pass."""
        x, log_det = self.bijector(z)
        return x, standard_normal_log_prob(z) - log_det

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` configurations and their log-density ln q(x).

        Without gradients the batch is generated in chunks of about
        ``NO_GRAD_SITES_PER_CHUNK`` lattice sites, so that the cost per sample stays flat
        for large lattices instead of growing with the working set.
        """
        z = self.sample_latent(n, generator)
        if torch.is_grad_enabled():
            return self.generate(z)
        chunk = max(1, NO_GRAD_SITES_PER_CHUNK // math.prod(self.event_shape))
        parts = [self.generate(part) for part in z.split(chunk)]
        return torch.cat([x for x, _ in parts]), torch.cat([log_q for _, log_q in parts])

    def sample_and_score(self, n: int, x: Tensor, generator: torch.Generator | None = None
                         ) -> tuple[Tensor, Tensor, Tensor]:
        """``n`` samples with their ln q, and ln q of given states ``x`` (what one step of
        a hybrid Markov chain needs; see :mod:`neuralrg.mcmc.hybrid`)."""
        return (*self.sample(n, generator), self.log_prob(x))

    def log_prob(self, x: Tensor) -> Tensor:
        """ln q(x) through the inverse (RG) direction."""
        z, log_det = self.bijector.inverse(x)
        return standard_normal_log_prob(z) + log_det

    def encode(self, x: Tensor) -> list[Tensor]:
        """Latent variables of ``x`` grouped by scale, finest first, each ``(batch, n_k)``."""
        z = self.bijector.inverse(x)[0].reshape(x.shape[0], -1)
        return [z[:, group] for group in self.latent_groups()]

    def decode(self, latents: list[Tensor]) -> Tensor:
        """Inverse of :meth:`encode`: the configuration with these latents."""
        batch = latents[0].shape[0]
        n_sites = math.prod(self.event_shape)
        z = latents[0].new_zeros(batch, n_sites)
        for group, values in zip(self.latent_groups(), latents, strict=True):
            z[:, group] = values
        return self.bijector(z.reshape(batch, *self.event_shape))[0]

    def latent_groups(self) -> list[Tensor]:
        groups = getattr(self.bijector, "latent_groups", None)
        if groups is None:
            return [torch.arange(math.prod(self.event_shape))]
        return groups()


def patch_context(config: FlowConfig, layer: PatchLayer) -> PatchContext | None:
    """The neighbourhood a block of ``layer`` conditions on, ``None`` for ``context=0``."""
    return PatchContext(layer.grid, config.context) if config.context else None


def affine_block(config: FlowConfig, layer: PatchLayer) -> Bijector:
    """The paper's RealNVP block for one layer."""
    return PatchCoupling(layer.patch_size, config.n_layers, config.hidden_s, config.hidden_t,
                         config.mlp_depth, patch_context(config, layer))


def spline_block(config: FlowConfig, layer: PatchLayer) -> Bijector:
    """The rational-quadratic spline block for one layer."""
    return SplinePatchCoupling(layer.patch_size, config.n_layers, config.hidden_s,
                               mlp_depth=config.mlp_depth, bins=config.bins,
                               bound=config.spline_bound, context=patch_context(config, layer))


def context_activations(config: FlowConfig) -> int:
    """Floats a coupling keeps per patch for the neighbours' halves it conditions on."""
    return ((2 * config.context + 1) ** config.d - 1) * 2 ** (config.d - 1)


def affine_activations(config: FlowConfig) -> int:
    """Floats one affine coupling keeps per patch for the backward pass: the input, two
    hidden layers per s and t network layer, the outputs, the context."""
    return (2 * config.mlp_depth * (config.hidden_s + config.hidden_t) + 4 * 2**config.d
            + context_activations(config))


def spline_activations(config: FlowConfig) -> int:
    """The same for a spline coupling: one network, and the spline's tables per variable."""
    return (2 * config.mlp_depth * config.hidden_s + (6 * config.bins + 6) * 2**config.d
            + context_activations(config))


Activations = Callable[[FlowConfig], int]
COUPLINGS: dict[str, Callable[[FlowConfig, PatchLayer], Bijector]] = {
    "affine": affine_block, "spline": spline_block}
ACTIVATIONS: dict[str, Activations] = {"affine": affine_activations,
                                       "spline": spline_activations}


def register_coupling(name: str, make: Callable[[FlowConfig, PatchLayer], Bijector],
                      activations: Activations = affine_activations) -> None:
    """Make ``name`` a block: ``make(config, layer)`` builds the block of one layer (it may
    depend on the layer: its kind, scale and grid of patches); ``activations(config)``: the
    floats one coupling keeps per patch for the backward pass, for the memory check before
    training (default: the affine block's figure)."""
    if name in COUPLINGS:
        raise ValueError(f"coupling {name!r} is already registered")
    COUPLINGS[name], ACTIVATIONS[name] = make, activations


def validate_flow_config(config: FlowConfig) -> None:
    """Raise ``ValueError`` naming the first bad field of ``config`` (the layout's fit to the
    lattice is :func:`check_layout`'s, when the flow is built)."""
    check_choice("layout", config.layout, tuple(LAYOUTS))
    check_choice("symmetrise", config.symmetrise, (SYMMETRISE_AUTO, *SYMMETRISE_MODES))
    check_choice("coupling", config.coupling, tuple(COUPLINGS))
    for name in ("depth", "n_layers", "hidden_s", "hidden_t", "mlp_depth"):
        check_int(name, getattr(config, name), 1)
    check_int("bins", config.bins, 2)
    check_int("context", config.context, 0, MAX_CONTEXT)
    check_real("spline_bound", config.spline_bound, 0)
    check_real("spline_bound", config.spline_bound, high=MAX_SPLINE_BOUND)
    if config.L is not None:
        check_int("L", config.L, 1)
        check_int("d", config.d, 1)


def check_layout(config: FlowConfig) -> None:
    """``ValueError`` unless ``config``'s layout fits its lattice (e.g. MERA needs L a power
    of two)."""
    layout_layers(config)


def build_flow(config: FlowConfig, make_block: BlockFactory | None = None) -> Flow:
    """The NeuralRG network described by ``config`` (float32; use ``.double()`` for float64);
    ``make_block(layer)`` replaces the configured coupling's blocks."""
    make_block = make_block or (lambda layer: COUPLINGS[config.coupling](config, layer))
    bijector = HierarchicalBijector(config.lattice_shape, layout_layers(config), make_block)
    return Flow(bijector, config.lattice_shape)

