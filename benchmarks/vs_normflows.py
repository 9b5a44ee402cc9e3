"""NeuralRG (MERA) against a normflows RealNVP on the relaxed 2D Ising model at T_c.

Both contenders minimise the reverse KL, E_q[ln q - ln pi], with Adam at the same batch
size (``--lr`` for NeuralRG, default 3e-3 as in the product; ``--nf-lr`` for normflows,
default 1e-3, which trained the wide RealNVP faster than 3e-3 in short trials), constant
or, with ``--lr-schedule cosine``, decayed over each contender's own budget (``--minutes``
for NeuralRG, ``--nf-minutes`` for normflows, default the same), in one process, in
alternating chunks of a few seconds; only each contender's own training chunks are timed.
Each contender draws from its own random stream (seeded with ``--seed``), so its
trajectory does not depend on which other contenders run.
Every ``--eval-every`` seconds of its own training time a contender is evaluated
(untimed) on ``--eval-samples`` fresh samples: bound = mean(ln pi - ln q), relative
gap = (ln Z_exact - bound) / |ln Z_exact|.
With ``--eval z2`` (the product's default, ``symmetrise="eval"``) both models are
evaluated through the same :class:`~neuralrg.flows.symmetry.Z2SymmetricFlow` mixture.

The normflows model is what a user would build: ``MaskedAffineFlow`` couplings over the
flattened lattice with masks cycling checkerboard, anti-checkerboard, top half, bottom
half, and ``nets.MLP`` s/t networks (s bounded by tanh) of hidden width ``--nf-hidden``;
``auto`` picks the width that matches NeuralRG's parameter count. Several widths may be
given; each becomes its own contender.

With ``--race``, a contender stops training once an evaluation puts its gap at or below
the target by more than one error bar, so a slow contender can be given a long budget
without making the fast one train for as long; the gaps "at equal time" are then read
off every history at the earliest stopping time. Ctrl-C stops the run early and still
reports and writes what was measured (marked ``interrupted``).

    python -m benchmarks.vs_normflows --minutes 10
    python -m benchmarks.vs_normflows --minutes 8 --nf-minutes 24 --lr-schedule cosine --race
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from benchmarks.common import (
    add_common_arguments,
    environment,
    print_table,
    ratio,
    setup,
    synchronize,
    write_json,
)
from neuralrg.estimators import variational_bound
from neuralrg.exact import T_CRITICAL_2D, exact_ising
from neuralrg.flows.flow import FlowConfig, build_flow
from neuralrg.flows.symmetry import Z2SymmetricFlow
from neuralrg.targets.ising import RelaxedIsing
from neuralrg.training import cosine_factor

EVAL_CHUNK = 1024


class NormflowsLattice(nn.Module):
    """A ``normflows.NormalizingFlow`` over the flattened ``L x L`` lattice, exposing the
    neuralrg flow interface (``sample_latent``, ``generate``, ``sample``, ``log_prob``)
    so that it can be wrapped in :class:`Z2SymmetricFlow` exactly like a NeuralRG flow."""

    def __init__(self, model: nn.Module, L: int):
        super().__init__()
        self.model, self.event_shape = model, (L, L)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        loc = self.model.q0.loc
        return torch.randn((n, loc.shape[1]), generator=generator, dtype=loc.dtype,
                           device=loc.device)

    def generate(self, eps: Tensor) -> tuple[Tensor, Tensor]:
        """Base sample ``loc + exp(log_scale) eps`` pushed through every coupling."""
        q0 = self.model.q0
        z = q0.loc + torch.exp(q0.log_scale) * eps
        log_q = q0.log_prob(z)
        for flow in self.model.flows:
            z, log_det = flow(z)
            log_q = log_q - log_det
        return z.reshape(len(z), *self.event_shape), log_q

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Training samples through normflows' own ``NormalizingFlow.sample``."""
        z, log_q = self.model.sample(n)
        return z.reshape(n, *self.event_shape), log_q

    def log_prob(self, x: Tensor) -> Tensor:
        return self.model.log_prob(x.reshape(len(x), -1))


def lattice_masks(L: int) -> list[Tensor]:
    """Checkerboard, its complement, top half, bottom half; flattened row-major."""
    i, j = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
    checker = ((i + j) % 2).flatten().float()
    half = (i < L // 2).flatten().float()
    return [checker, 1 - checker, half, 1 - half]


def normflows_parameters(n_sites: int, hidden: int, n_couplings: int) -> int:
    """Parameter count of :func:`build_normflows` (two [n, hidden, n] MLPs per coupling)."""
    per_mlp = n_sites * hidden + hidden + hidden * n_sites + n_sites
    return n_couplings * 2 * per_mlp + 2 * n_sites


def matched_hidden(n_sites: int, n_couplings: int, n_params: int) -> int:
    """The hidden width whose parameter count is closest to ``n_params``."""
    fixed = 2 * n_sites + 2 * n_couplings * n_sites
    best = (n_params - fixed) / (2 * n_couplings * (2 * n_sites + 1))
    candidates = {max(1, math.floor(best)), max(1, math.ceil(best))}

    def mismatch(hidden: int) -> int:
        return abs(normflows_parameters(n_sites, hidden, n_couplings) - n_params)

    return min(candidates, key=mismatch)


def build_normflows(L: int, hidden: int, n_couplings: int) -> NormflowsLattice:
    """RealNVP over the whole lattice, built from normflows parts."""
    import normflows as nf

    n, masks = L * L, lattice_masks(L)
    flows = []
    for k in range(n_couplings):
        s = nf.nets.MLP([n, hidden, n], init_zeros=True, output_fn="tanh")
        t = nf.nets.MLP([n, hidden, n], init_zeros=True)
        flows.append(nf.flows.MaskedAffineFlow(masks[k % len(masks)], t, s))
    return NormflowsLattice(nf.NormalizingFlow(nf.distributions.DiagGaussian(n), flows), L)


@dataclass
class Contender:
    """One model with its optimiser and its own clock."""

    name: str
    model: nn.Module
    evaluator: nn.Module
    optimizer: torch.optim.Optimizer
    lr: float
    budget: float  # seconds of own training time
    train_seconds: float = 0.0
    steps: int = 0
    skipped_steps: int = 0
    last_train_gap: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    next_eval: float = 0.0
    finished: bool = False
    rng_state: tuple = ()  # its own global random stream: (CPU state, CUDA state or None)

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def make_contender(name: str, model: nn.Module, args, lr: float, minutes: float,
                   device) -> Contender:
    model = model.to(device)
    evaluator = Z2SymmetricFlow(model) if args.eval == "z2" else model
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    torch.manual_seed(args.seed)
    return Contender(name, model, evaluator, optimizer, lr, 60 * minutes,
                     rng_state=random_state(device))


def random_state(device: torch.device) -> tuple:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


@contextmanager
def own_random_stream(c: Contender, device: torch.device) -> Iterator[None]:
    """Run with ``c``'s own global random state (normflows samples from the global
    generator), so a contender's trajectory does not depend on which others run."""
    cpu, cuda = c.rng_state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)
    try:
        yield
    finally:
        c.rng_state = random_state(device)


def build_contenders(args, device: torch.device) -> list[Contender]:
    torch.manual_seed(args.seed)
    flow = build_flow(FlowConfig(L=args.L, d=2, layout="mera", mlp_depth=args.mlp_depth,
                                 hidden_s=args.hidden, hidden_t=args.hidden))
    contenders = [make_contender("neuralrg", flow, args, args.lr, args.minutes, device)]
    n_params, n_sites = contenders[0].n_parameters, args.L**2
    nf_minutes = args.nf_minutes or args.minutes
    for width in args.nf_hidden:
        matched = width == "auto"
        hidden = matched_hidden(n_sites, args.nf_couplings, n_params) if matched else int(width)
        torch.manual_seed(args.seed)
        model = build_normflows(args.L, hidden, args.nf_couplings)
        name = f"normflows(h={hidden}{', matched' if matched else ''})"
        contenders.append(make_contender(name, model, args, args.nf_lr, nf_minutes, device))
    return contenders


def set_lr(c: Contender, schedule: str) -> None:
    factor = 1.0
    if schedule == "cosine":
        factor = cosine_factor(c.train_seconds / c.budget)
    for group in c.optimizer.param_groups:
        group["lr"] = c.lr * factor


def train_step(c: Contender, target: RelaxedIsing, batch: int, ln_z: float) -> None:
    """One Adam step on the reverse KL; a non-finite loss skips the step."""
    c.optimizer.zero_grad(set_to_none=True)
    x, log_q = c.model.sample(batch)
    log_w = target.log_prob(x) - log_q
    loss = -log_w.mean()
    if not torch.isfinite(loss):
        c.skipped_steps += 1
        return
    loss.backward()
    c.optimizer.step()
    c.last_train_gap = (ln_z + float(loss.detach())) / abs(ln_z)


def train_chunk(c: Contender, target: RelaxedIsing, args, ln_z: float, device) -> None:
    """Train for ``chunk_seconds`` of this contender's own time (or to its budget)."""
    limit = min(args.chunk_seconds, c.budget - c.train_seconds)
    synchronize(device)
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        set_lr(c, args.lr_schedule)
        train_step(c, target, args.batch_size, ln_z)
        synchronize(device)
        c.steps += 1
    c.train_seconds += time.perf_counter() - start


@torch.no_grad()
def evaluate(c: Contender, target: RelaxedIsing, n: int, ln_z: float) -> dict[str, Any]:
    """Bound and relative gap from ``n`` fresh samples of the evaluated density (untimed)."""
    chunks = []
    for start in range(0, n, EVAL_CHUNK):
        x, log_q = c.evaluator.sample(min(EVAL_CHUNK, n - start))
        chunks.append((target.log_prob(x) - log_q).double().cpu())
    log_w = torch.cat(chunks)
    finite = log_w[torch.isfinite(log_w)]
    row = {"train_seconds": c.train_seconds, "steps": c.steps, "nonfinite": n - len(finite),
           "last_train_gap": c.last_train_gap}
    if len(finite) < 2:
        nan = math.nan
        return {**row, "bound": nan, "bound_err": nan, "gap": nan, "gap_err": nan}
    bound = variational_bound(finite)
    return {**row, "bound": bound.value, "bound_err": bound.err,
            "gap": (ln_z - bound.value) / abs(ln_z), "gap_err": bound.err / abs(ln_z)}


def maybe_evaluate(c: Contender, target, args, ln_z: float, force: bool = False) -> None:
    if force or c.train_seconds >= c.next_eval:
        row = evaluate(c, target, args.eval_samples, ln_z)
        c.history.append(row)
        c.next_eval = c.train_seconds + args.eval_every
        print(f"  {c.name:28s} t={row['train_seconds']:7.1f}s  steps={row['steps']:6d}  "
              f"gap={row['gap']:.4g} ± {row['gap_err']:.2g}", flush=True)


def reached_target(c: Contender, target_gap: float) -> bool:
    """The last evaluation is below the target by more than its error bar."""
    last = c.history[-1]
    return last["gap"] + last["gap_err"] <= target_gap


def run(contenders: list[Contender], target: RelaxedIsing, args, ln_z: float, device) -> None:
    """Alternate training chunks until every contender has used its budget (or, racing,
    has reached the target gap)."""
    for c in contenders:
        with own_random_stream(c, device):
            maybe_evaluate(c, target, args, ln_z, force=True)
    while not all(c.finished for c in contenders):
        for c in (c for c in contenders if not c.finished):
            with own_random_stream(c, device):
                train_chunk(c, target, args, ln_z, device)
                out_of_time = c.train_seconds >= c.budget
                maybe_evaluate(c, target, args, ln_z, force=out_of_time)
            c.finished = out_of_time or (args.race and reached_target(c, args.target_gap))


def first_below(history: list[dict[str, Any]], target_gap: float) -> int | None:
    """Index of the first evaluation with gap <= ``target_gap`` (None if never)."""
    for k, row in enumerate(history):
        if row["gap"] <= target_gap:
            return k
    return None


def time_to_target(history: list[dict[str, Any]], target_gap: float) -> float | None:
    """Training seconds at which the gap crosses ``target_gap``, interpolated linearly in
    ln(gap) between the two evaluations that bracket it (None if never reached)."""
    k = first_below(history, target_gap)
    if k is None or k == 0:
        return None if k is None else history[0]["train_seconds"]
    (t0, g0), (t1, g1) = ((history[i]["train_seconds"], history[i]["gap"]) for i in (k - 1, k))
    if not (g0 > 0 and g1 > 0):
        return t1
    return t0 + (t1 - t0) * math.log(g0 / target_gap) / math.log(g0 / g1)


def _first_eval_time(history: list[dict[str, Any]], target_gap: float) -> float | None:
    k = first_below(history, target_gap)
    return None if k is None else history[k]["train_seconds"]


def gap_at(history: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The first evaluation taken at or after ``seconds`` of training (the last one if
    none is), so the comparison never gives a contender less training than the other."""
    later = [row for row in history if row["train_seconds"] >= seconds * (1 - 1e-9)]
    return later[0] if later else history[-1]


def summarise(c: Contender, args, equal_time: float) -> dict[str, Any]:
    final = gap_at(c.history, equal_time)
    return {
        "name": c.name, "parameters": c.n_parameters, "steps": c.steps,
        "skipped_steps": c.skipped_steps, "train_seconds": c.train_seconds,
        "seconds_per_step": c.train_seconds / max(c.steps, 1),
        "time_to_target": time_to_target(c.history, args.target_gap),
        "time_to_target_first_eval": _first_eval_time(c.history, args.target_gap),
        "equal_time_seconds": final["train_seconds"],
        "final_gap": final["gap"], "final_gap_err": final["gap_err"],
        "last_gap": c.history[-1]["gap"], "last_gap_err": c.history[-1]["gap_err"],
        "history": c.history,
    }


def comparisons(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ratios of every normflows contender against NeuralRG (> 1: NeuralRG is better)."""
    ours, rows = results[0], []
    for other in results[1:]:
        mine, theirs = ours["time_to_target"], other["time_to_target"]
        row = {"contender": other["name"],
               "time_to_target_ratio": ratio(theirs, mine),
               "gap_ratio_equal_time": ratio(other["final_gap"], ours["final_gap"])}
        if mine is not None and theirs is None:
            row["time_to_target_ratio_lower_bound"] = other["train_seconds"] / mine
        rows.append(row)
    return rows


def report(results: list[dict[str, Any]], comps: list[dict[str, Any]], args) -> None:
    print(f"\nrelaxed Ising L={args.L}, T={args.T:.6g}, batch {args.batch_size}, "
          f"{args.minutes:g} / {args.nf_minutes or args.minutes:g} min (NeuralRG / normflows), "
          f"lr {args.lr_schedule}{', race' if args.race else ''}, eval={args.eval}, "
          f"target gap {args.target_gap:g}")
    print_table(
        ["contender", "params", "steps", "s/step", "t to target [s]", "gap at equal time",
         "last gap"],
        [[r["name"], r["parameters"], r["steps"], r["seconds_per_step"], r["time_to_target"],
          f"{r['final_gap']:.4g} ± {r['final_gap_err']:.2g} ({r['equal_time_seconds']:.0f} s)",
          f"{r['last_gap']:.4g} ± {r['last_gap_err']:.2g}"] for r in results],
    )
    print()
    print_table(
        ["neuralrg vs", "time-to-target ratio", "(lower bound)", "gap ratio at equal time"],
        [[c["contender"], c["time_to_target_ratio"], c.get("time_to_target_ratio_lower_bound"),
          c["gap_ratio_equal_time"]] for c in comps],
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="NeuralRG's training budget")
    p.add_argument("--nf-minutes", type=float, default=None,
                   help="each normflows model's training budget (default: --minutes)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="cosine: decay to 0 over each contender's own budget")
    p.add_argument("--L", type=int, default=16)
    p.add_argument("--T", type=float, default=T_CRITICAL_2D)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3, help="NeuralRG's Adam learning rate")
    p.add_argument("--hidden", type=int, default=FlowConfig.hidden_s,
                   help="NeuralRG's s/t network width (default: the product's)")
    p.add_argument("--mlp-depth", type=int, default=FlowConfig.mlp_depth,
                   help="NeuralRG's hidden layers per s/t network (default: the product's)")
    p.add_argument("--nf-lr", type=float, default=1e-3, help="normflows' Adam learning rate")
    p.add_argument("--chunk-seconds", type=float, default=5.0)
    p.add_argument("--eval-every", type=float, default=10.0, help="seconds of own training time")
    p.add_argument("--eval-samples", type=int, default=4096)
    p.add_argument("--eval", choices=("z2", "plain"), default="z2")
    p.add_argument("--target-gap", type=float, default=1e-2)
    p.add_argument("--race", action="store_true",
                   help="stop each contender once it is below the target gap")
    p.add_argument("--nf-hidden", nargs="+", default=["auto", "256"],
                   help="normflows hidden widths ('auto': match NeuralRG's parameter count)")
    p.add_argument("--nf-couplings", type=int, default=8)
    add_common_arguments(p, "vs_normflows.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for name in ("minutes", "nf_minutes"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise SystemExit(f"--{name.replace('_', '-')}={value!r} must be a number > 0")
    device = setup(args.threads, args.seed, args.device)
    target = RelaxedIsing(args.L, args.T)
    ln_z = exact_ising(args.L, args.T).ln_z - target.ln_z_shift
    contenders = build_contenders(args, device)
    interrupted = False
    try:
        run(contenders, target, args, ln_z, device)
    except KeyboardInterrupt:  # Ctrl-C: keep and report what was measured so far
        interrupted = True
        print("interrupted: reporting the evaluations so far", flush=True)
    equal_time = min(c.train_seconds for c in contenders)
    results = [summarise(c, args, equal_time) for c in contenders]
    comps = comparisons(results)
    report(results, comps, args)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    write_json(args.out, {"benchmark": "vs_normflows", "config": config, "ln_z_exact": ln_z,
                          "interrupted": interrupted,
                          "environment": environment(device, args.threads),
                          "contenders": results, "comparisons": comps})


if __name__ == "__main__":
    main()
