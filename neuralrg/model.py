"""A flow together with the target it models: what training, sampling, measuring and the RG
microscope work on, and the notebook's way in (:class:`neuralrg.jobs.RunModel` adds a run's
configuration).

A model checks its parts when it is made, before any training step: the flow's lattice
against the target's ``event_shape``, and the target's ``log_prob`` on a first small batch
of the flow's samples (one finite floating-point value per configuration)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from neuralrg.flows.flow import SYMMETRISE_AUTO, SYMMETRISE_MODES, Flow, FlowConfig, build_flow
from neuralrg.flows.symmetry import Z2SymmetricFlow
from neuralrg.measure.results import Measurement, Quantity
from neuralrg.measure.sampling import SampleConfig, chain_progress
from neuralrg.measure.summary import measure
from neuralrg.targets import Target, capability, exact_values
from neuralrg.training import LossConfig, TrainConfig, Trainer, TrainResult, fit
from neuralrg.validation import check_choice, check_int

PROBE_BATCH = 2  # configurations on which a target's log_prob is tried


def resolve_symmetrise(mode: str, target) -> str:
    """``mode`` with ``"auto"`` decided for ``target`` (an instance or its class): ``"eval"``
    where pi(x) = pi(-x), else ``"none"``.

    >>> from neuralrg.targets import RelaxedIsing, Phi4
    >>> resolve_symmetrise("auto", RelaxedIsing), resolve_symmetrise("train", RelaxedIsing)
    ('eval', 'train')
    """
    check_choice("symmetrise", mode, (SYMMETRISE_AUTO, *SYMMETRISE_MODES))
    if mode != SYMMETRISE_AUTO:
        return mode
    return "eval" if capability(target, "z2_symmetric") else "none"


@dataclass
class Model:
    """``flow`` for ``target``: train it (:meth:`fit`), draw from it (:meth:`sample`) and
    measure with it (:meth:`measure`, :meth:`free_energy`); ``neuralrg.save`` and
    ``neuralrg.load`` keep it.

    ``symmetrise`` is :attr:`FlowConfig.symmetrise <neuralrg.FlowConfig>`: "none"; "eval"
    samples and estimates with the mixture (q(x) + q(-x)) / 2; "train" trains through it as
    well; "auto" means "eval" for a Z2-symmetric target (see :attr:`z2_symmetric`), else
    "none".

    >>> from neuralrg.targets import RelaxedIsing
    >>> model = Model.of(RelaxedIsing(4), FlowConfig(hidden_s=8, n_layers=2))
    >>> model.symmetrise, type(model.sampler).__name__, model.sample(3).shape
    ('eval', 'Z2SymmetricFlow', torch.Size([3, 4, 4]))
    >>> Model.of(RelaxedIsing(4), FlowConfig(L=8, hidden_s=8))
    Traceback (most recent call last):
    ...
    ValueError: FlowConfig(L=8, d=2) makes a flow on the lattice (8, 8), but the target ...
    """

    flow: Flow
    target: Target
    symmetrise: str = SYMMETRISE_AUTO
    flow_config: FlowConfig | None = None  # what the flow was built from, where known

    def __post_init__(self) -> None:
        check_target(self.target)
        check_lattice(self.flow.event_shape, self.target)
        self.symmetrise = resolve_symmetrise(self.symmetrise, self.target)
        check_log_prob(self.flow, self.target)

    @classmethod
    def of(cls, target: Target, config: FlowConfig | None = None) -> Model:
        """The untrained flow of ``config`` (default: :class:`FlowConfig`'s defaults) for
        ``target``, on the target's lattice unless ``config`` names one."""
        check_target(target)
        config = (config or FlowConfig()).on_lattice(tuple(target.event_shape))
        check_lattice(config.lattice_shape, target, config)
        return cls(build_flow(config), target, config.symmetrise, config)

    @property
    def z2_symmetric(self) -> bool:
        """Whether the target has pi(x) = pi(-x) (then chains start in both sectors and
        training may mirror its batch)."""
        return bool(capability(self.target, "z2_symmetric"))

    @property
    def sampler(self) -> Flow | Z2SymmetricFlow:
        """The density used for sampling and estimation."""
        return self.flow if self.symmetrise == "none" else Z2SymmetricFlow(self.flow)

    @property
    def training_density(self) -> Flow | Z2SymmetricFlow:
        """The density the training loss sees."""
        return self.sampler if self.symmetrise == "train" else self.flow

    @property
    def flow_device(self) -> torch.device:
        return next(self.flow.parameters()).device

    def exact_ln_z(self) -> float | None:
        """The target's exact ln Z, when it knows one."""
        return capability(self.target, "exact_ln_z")()

    def exact(self) -> dict[str, float | None]:
        """Every exact reference the target knows (see :func:`neuralrg.targets.exact_values`):
        ln Z, what follows from it (the Ising ln Z and free energy per site) and the
        observables."""
        return exact_values(self.target)

    def trainer(self, config: TrainConfig | None = None, loss: LossConfig | None = None,
                config_json: str = "{}") -> Trainer:
        """A :class:`~neuralrg.training.Trainer` of this model: the training density, the
        target's log_prob, its symmetry and its exact moves (for a forward loss term)."""
        return Trainer(self.training_density, self.target.log_prob, config or TrainConfig(),
                       loss, z2_symmetric=self.z2_symmetric, config_json=config_json,
                       exact_move=capability(self.target, "exact_move"))

    def fit(self, config: TrainConfig | None = None, loss: LossConfig | None = None,
            progress: bool = True) -> TrainResult:
        """Train the flow for ``config``'s budget (a fresh optimiser and schedule each call)
        with a progress bar (in a notebook too); nothing is written."""
        return fit(self.trainer(config, loss), self.exact_ln_z(), progress)

    @torch.no_grad()
    def sample(self, n: int, spins: bool = False,
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` configurations from the flow (the sampler density), without gradients; with
        ``spins``, the Ising spins drawn given them (a target with ``sample_spins``)."""
        check_int("n", n, 1)
        x = self.sampler.sample(n, generator)[0]
        if not spins:
            return x
        draw = getattr(self.target, "sample_spins", None)
        if draw is None:
            raise ValueError(f"spins=True needs a target with spins; "
                             f"{type(self.target).__name__} has no sample_spins")
        return draw(x, generator)

    def measure(self, config: SampleConfig | None = None, progress: bool = True,
                generator: torch.Generator | None = None) -> Measurement:
        """Run the sampler of ``config`` (default: :class:`SampleConfig`'s) and report every
        quantity with its error bar and verdict (a table in a notebook); the random stream is
        ``generator``, by default one seeded with ``config.seed`` (so a call repeats)."""
        config = config or SampleConfig()
        generator = generator or torch.Generator(self.flow_device).manual_seed(config.seed)
        bar = chain_progress(config, enabled=progress)
        try:
            return measure(self, config, generator, progress=bar)
        finally:
            bar.close()

    def free_energy(self, config: SampleConfig | None = None,
                    progress: bool = True) -> Quantity:
        """The free energy per site f = -T ln Z / N with its error bar and verdict (for a
        target without one, ln Z itself), from :meth:`measure`."""
        measured = self.measure(config, progress)
        found = measured.free_energy or measured.ln_z
        if found is None:
            raise ValueError(f"the measurement of {type(self.target).__name__} gave no ln Z")
        return found


def check_target(target: object) -> None:
    """``TypeError`` unless ``target`` has an ``event_shape`` and a ``log_prob`` method."""
    if not isinstance(target, Target) or not callable(getattr(target, "log_prob", None)):
        raise TypeError(f"target {type(target).__name__} is not a Target: it needs an "
                        "event_shape and a log_prob(x) method")


def check_lattice(shape: tuple[int, ...], target: Target,
                  config: FlowConfig | None = None) -> None:
    """``ValueError`` naming both shapes unless a flow on ``shape`` fits ``target``."""
    wanted = tuple(target.event_shape)
    if tuple(shape) == wanted:
        return
    name = type(target).__name__
    if config is None:
        raise ValueError(f"the flow's lattice {tuple(shape)} differs from the event_shape "
                         f"{wanted} of the target {name}")
    fix = f"; use FlowConfig(L={wanted[0]}, d={len(wanted)})" if len(set(wanted)) == 1 else ""
    raise ValueError(f"FlowConfig(L={config.L}, d={config.d}) makes a flow on the lattice "
                     f"{tuple(shape)}, but the target {name} has event_shape {wanted}{fix}")


@torch.no_grad()
def check_log_prob(flow: Flow, target: Target) -> None:
    """Try ``target.log_prob`` on a first small batch of ``flow`` samples (drawn with a
    generator of their own, so no random stream moves): it must give one finite
    floating-point value per configuration. ``TypeError``/``ValueError`` naming the class."""
    device = next(flow.parameters()).device
    x = flow.sample(PROBE_BATCH, torch.Generator(device=device).manual_seed(0))[0]
    value = target.log_prob(x)
    where = f"{type(target).__name__}.log_prob on a batch of shape {tuple(x.shape)}"
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{where} returned a {type(value).__name__}; expected a tensor of "
                        f"shape ({PROBE_BATCH},)")
    if tuple(value.shape) != (PROBE_BATCH,):
        raise ValueError(f"{where} returned shape {tuple(value.shape)}; expected "
                         f"({PROBE_BATCH},), one ln pi per configuration")
    if not value.is_floating_point():
        raise TypeError(f"{where} returned dtype {value.dtype}; expected a floating-point "
                        "dtype")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{where} returned {value.tolist()}; expected finite values")
