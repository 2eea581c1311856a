"""common.optim.full_gradient under torch.distributed (2 CPU processes, gloo): each rank passes half the data and
both get the single-process full gradient."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from common.optim.full_gradient import all_reduce_mean_, full_gradient

pytestmark = pytest.mark.distributed


def _setup() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    g = torch.Generator().manual_seed(1)
    return model, torch.randn(26, 3, generator=g, dtype=torch.float64), torch.randn(26, 2, generator=g,
                                                                                     dtype=torch.float64)


def _loss(model: torch.nn.Module, b) -> torch.Tensor:
    return torch.nn.functional.mse_loss(model(b[0]), b[1])


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        model, x, y = _setup()
        shard = slice(0, 10) if rank == 0 else slice(10, 26)  # unequal shards: the weights must be counts
        xs, ys = x[shard], y[shard]
        mean, _ = full_gradient(list(model.parameters()), lambda b: _loss(model, b),
                                [(xs[i:i + 4], ys[i:i + 4]) for i in range(0, len(xs), 4)])
        t = [torch.full((2,), float(rank))]
        all_reduce_mean_(t)
        torch.save({"mean": mean, "avg": t[0]}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_ranks_get_the_single_process_full_gradient(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tmp_path / "g")), nprocs=2, join=True)
    model, x, y = _setup()
    exact = torch.autograd.grad(_loss(model, (x, y)), list(model.parameters()))
    for rank in range(2):
        got = torch.load(tmp_path / f"g.{rank}", weights_only=False)
        for a, b in zip(got["mean"], exact, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(got["avg"], torch.full((2,), 0.5))
