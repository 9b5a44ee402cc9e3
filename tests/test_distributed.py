"""Data-parallel helpers: a 2-process gloo group spawned from the test."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from neuralrg.distributed import (
    TORCHRUN_VARIABLES,
    average_gradients,
    broadcast_parameters,
    gather_samples,
    init_from_env,
    is_main_process,
    max_over_ranks,
    rank_seed,
    shard_sizes,
)
from neuralrg.flows.flow import FlowConfig, build_flow
from neuralrg.targets.ising import RelaxedIsing

WORLD, BATCH, SEED, L = 2, 6, 11, 4


def small_flow() -> torch.nn.Module:
    torch.manual_seed(SEED)
    config = FlowConfig(L=L, d=2, n_layers=2, hidden_s=8, hidden_t=8)
    return build_flow(config).double()


def latent_batch(rank: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(rank_seed(SEED, rank))
    return torch.randn(BATCH, L, L, generator=generator, dtype=torch.float64)


def loss_on(flow: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Reverse-KL loss, mean over the batch."""
    x, log_q = flow.generate(z)
    return (log_q - RelaxedIsing(L, 2.269185314213022).log_prob(x)).mean()


def gradients(flow: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in flow.parameters()]


def _worker(rank: int, store_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store_file}", rank=rank,
                            world_size=WORLD)
    try:
        flow = small_flow()
        if rank == 1:  # a different start that the broadcast must overwrite
            with torch.no_grad():
                next(flow.parameters()).add_(1.0)
        broadcast_parameters(flow)
        loss_on(flow, latent_batch(rank)).backward()
        ok = average_gradients(flow)
        ragged = torch.full((rank + 1, 3), float(rank))
        gathered = gather_samples(ragged)
        latest = max_over_ranks(10.0 + rank)
        torch.save({"ok": ok, "main": is_main_process(), "grads": gradients(flow),
                    "gathered": gathered, "max": latest}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def spawned(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("dist")
    with pytest.MonkeyPatch.context() as patch:
        # spawned children import this module by name; they inherit the parent's sys.path
        patch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
        mp.spawn(_worker, args=(str(tmp / "store"), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_averaged_gradient_equals_gradient_on_the_union(spawned):
    flow = small_flow()
    loss_on(flow, torch.cat([latent_batch(r) for r in range(WORLD)])).backward()
    expected = gradients(flow)
    for result in spawned:
        assert result["ok"]
        for got, want in zip(result["grads"], expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_ranks_agree_and_only_rank_zero_is_main(spawned):
    assert [r["main"] for r in spawned] == [True, False]
    assert [r["max"] for r in spawned] == [11.0, 11.0]
    for a, b in zip(spawned[0]["grads"], spawned[1]["grads"], strict=True):
        assert torch.equal(a, b)


def test_gather_concatenates_ragged_shards_in_rank_order(spawned):
    expected = torch.tensor([[0.0] * 3, [1.0] * 3, [1.0] * 3])
    for result in spawned:
        assert torch.equal(result["gathered"], expected)


def test_single_process_helpers_are_no_ops(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = init_from_env()
    assert (info.rank, info.world_size, info.is_distributed) == (0, 1, False)
    assert is_main_process()
    flow = small_flow()
    loss_on(flow, latent_batch(0)).backward()
    before = gradients(flow)
    assert average_gradients(flow)
    for got, want in zip(gradients(flow), before, strict=True):
        assert torch.equal(got, want)
    tensor = torch.arange(6.0).reshape(2, 3)
    assert gather_samples(tensor) is tensor
    assert max_over_ranks(2.5) == 2.5


def test_nonfinite_local_loss_is_a_collective_skip():
    flow = small_flow()
    loss_on(flow, latent_batch(0)).backward()
    assert not average_gradients(flow, local_ok=False)
    next(flow.parameters()).grad = torch.full_like(next(flow.parameters()), math.nan)
    assert not average_gradients(flow)


def test_rank_seed_and_shards():
    assert rank_seed(5, 0) == 5
    seeds = {rank_seed(5, r) for r in range(64)}
    assert len(seeds) == 64 and all(0 <= s < 2**63 for s in seeds)
    assert rank_seed(5, 3) == rank_seed(5, 3)
    assert shard_sizes(7, 3) == [3, 2, 2] and sum(shard_sizes(1000, 7)) == 1000
    with pytest.raises(ValueError, match="seed"):
        rank_seed(-1, 0)


def test_init_from_env_rejects_a_bad_variable(monkeypatch):
    monkeypatch.setenv("RANK", "zero")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ValueError, match="RANK"):
        init_from_env()
    assert not dist.is_initialized()


def test_exit_rank_flushes_and_ends_with_the_status():
    """A torchrun rank leaves through exit_rank: its printed lines arrive, its status holds."""
    script = ("import sys; from neuralrg import distributed; print('table', end=''); "
              "print('note', file=sys.stderr, end=''); distributed.exit_rank(3)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (3, "table", "note")


def test_the_command_line_leaves_a_torchrun_rank_through_exit_rank(monkeypatch):
    import neuralrg.cli as cli

    calls = []
    monkeypatch.setattr(cli, "main", lambda: 5)
    monkeypatch.setattr(cli.distributed, "exit_rank", lambda code: calls.append(code))
    for name in TORCHRUN_VARIABLES:
        monkeypatch.setenv(name, "1" if name == "WORLD_SIZE" else "0")
    with pytest.raises(SystemExit) as leaving:
        cli.console()
    assert calls == [5] and leaving.value.code == 5
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name)
    calls.clear()
    with pytest.raises(SystemExit):
        cli.console()
    assert calls == []
