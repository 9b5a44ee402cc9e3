"""Data-parallel helpers on ``torch.distributed`` (gloo on CPU, nccl on CUDA).

Every rank holds the same flow, draws its own batch with its own seed, and after
``loss.backward()`` the gradients are averaged over the ranks with one ``all_reduce``
of a single flat buffer, so every rank takes the same optimiser step. The buffer
carries one extra entry, a "this rank's loss was not finite" flag, so that the
decision to skip a step is taken collectively and no rank is left waiting.

Why not ``DistributedDataParallel``: DDP synchronises gradients only for a backward
pass that follows a call to the DDP wrapper's ``forward``; the flow's loss comes
from ``flow.sample(...)`` (plus ``log_prob`` for the buffer and acceptance terms),
so DDP would need a wrapper module whose ``forward`` runs the whole objective, would
prefix every ``state_dict`` key with ``module.``, and cannot fold the collective
skip-on-non-finite decision into its reduction. Its overlap of communication with the
backward pass buys little for these small networks (one bucket). The mean over ranks
of per-rank batch means equals the mean over the union of the batches, which is what
DDP computes as well.

Outside ``torchrun`` (no ``RANK``/``WORLD_SIZE`` in the environment) every helper is
a no-op for a single process.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from neuralrg.validation import check_int

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: torch.device = torch.device("cpu")

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the torchrun environment variables are set."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer") from None


def _local_device(device: str | torch.device, local_rank: int) -> torch.device:
    device = torch.device(device)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} requested but CUDA is not available")
    index = local_rank if device.index is None else device.index
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def init_from_env(device: str | torch.device = "cpu") -> DistInfo:
    """Join the process group described by torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``.

    Uses nccl for a CUDA ``device`` (rank ``r`` takes ``cuda:LOCAL_RANK`` unless an index
    is given) and gloo otherwise. Without the torchrun variables it returns the
    single-process :class:`DistInfo` and initialises nothing. Calling it again once the
    group exists returns the current placement.

    >>> init_from_env().world_size if not launched_by_torchrun() else 1
    1
    """
    if not launched_by_torchrun():
        return DistInfo(device=torch.device(device))
    rank, world, local = (_env_int(name) for name in TORCHRUN_VARIABLES)
    local_device = _local_device(device, local)
    backend = "nccl" if local_device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local, dist.get_backend(), local_device)


def shutdown(completed: bool = False) -> None:
    """Leave the process group if one was joined. After a ``completed`` job the ranks first
    meet at a barrier, so that none tears its connections down while another still uses
    them; after a failure there is no barrier, which could wait for a rank that is gone."""
    if dist.is_available() and dist.is_initialized():
        if completed:
            dist.barrier()
        dist.destroy_process_group()


def exit_rank(code: int) -> NoReturn:
    """End a torchrun rank with exit status ``code`` without the interpreter's finalisation.

    After ``destroy_process_group`` has returned, gloo's threads can still abort the process
    while the interpreter and the C++ runtime tear down ("terminate called without an
    active exception", SIGABRT): 6 runs in 70 of a two-rank training on this project's CPU
    machine, every one after both ranks had left the group, so the job's work was done and
    its exit status wrong. The work's files are closed by then; logging and the standard
    streams are flushed here, and the process ends at once with ``code``.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def world_size() -> int:
    """Number of ranks (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0 and in a single process: the one that writes files and prints."""
    return rank() == 0


def rank_seed(seed: int, rank: int) -> int:
    """A per-rank seed: ``seed`` itself on rank 0 (a one-process run is unchanged),
    independent 63-bit seeds from ``numpy.random.SeedSequence([seed, rank])`` otherwise.

    >>> rank_seed(7, 0), rank_seed(7, 1) != rank_seed(7, 2)
    (7, True)
    """
    check_int("seed", seed, 0)
    check_int("rank", rank, 0)
    if rank == 0:
        return seed
    state = np.random.SeedSequence([seed, rank]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def broadcast_parameters(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank (what DDP does at start)."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src)


def average_gradients(module: nn.Module, local_ok: bool = True) -> bool:
    """Average ``module``'s gradients over the ranks; return True if the step may be taken.

    Every rank must call this once per step, also when its own loss was not finite (pass
    ``local_ok=False``; its gradients then count as zero). The return value is the same
    on every rank: False if any rank reported a bad loss or the averaged gradients are not
    finite. A parameter without a gradient contributes zeros and receives the average.
    In a single process it only checks the gradients.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return local_ok
    reference = params[0]
    grads = [p.grad if (p.grad is not None and local_ok) else torch.zeros_like(p) for p in params]
    flag = reference.new_full((1,), 0.0 if local_ok else 1.0)
    flat = torch.cat([g.reshape(-1) for g in grads] + [flag])
    world = world_size()
    if world > 1:
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat[:-1] /= world
    _unflatten_into(params, flat[:-1])
    return bool(flat[-1] == 0) and bool(torch.isfinite(flat[:-1]).all())


def _unflatten_into(params: list[nn.Parameter], flat: Tensor) -> None:
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def max_over_ranks(value: float) -> float:
    """The largest ``value`` over the ranks, on every rank (e.g. the training wall time, so
    that a time budget ends on the same step everywhere). Single process: ``value``."""
    if world_size() == 1:
        return float(value)
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor)


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if world_size() > 1:
        dist.barrier()


def shard_sizes(n: int, world: int) -> list[int]:
    """Split ``n`` items (chains, samples) over ``world`` ranks as evenly as possible.

    >>> shard_sizes(10, 4)
    [3, 3, 2, 2]
    """
    if n < 0 or world < 1:
        raise ValueError(f"need n >= 0 and world >= 1, got n={n!r}, world={world!r}")
    return [n // world + (1 if r < n % world else 0) for r in range(world)]


def local_share(n: int) -> int:
    """This rank's part of ``n`` items under :func:`shard_sizes`."""
    return shard_sizes(n, world_size())[rank()]


def gather_samples(tensor: Tensor, dim: int = 0) -> Tensor:
    """Concatenate every rank's ``tensor`` along ``dim``, in rank order, on every rank.

    The ranks may hold different sizes along ``dim`` (e.g. from :func:`shard_sizes`);
    all other dimensions must agree. With nccl the tensor must be on this rank's GPU.
    Outside a process group the tensor is returned unchanged.
    """
    world = world_size()
    if world == 1:
        return tensor
    moved = tensor.movedim(dim, 0).contiguous()
    sizes = _all_sizes(moved.shape[0], moved.device, world)
    padded = moved.new_zeros((max(sizes), *moved.shape[1:]))
    padded[: moved.shape[0]] = moved
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    gathered = torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])
    return gathered.movedim(0, dim)


def _all_sizes(size: int, device: torch.device, world: int) -> list[int]:
    mine = torch.tensor([size], dtype=torch.int64, device=device)
    sizes = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(sizes, mine)
    return [int(s) for s in sizes]
