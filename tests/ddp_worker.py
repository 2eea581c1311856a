"""Worker for tests/unit/test_ddp.py: runs in each of 2 spawned gloo processes (and once alone for the reference).

For every optimizer in the zoo: a float64 MLP wrapped in DistributedDataParallel, each rank taking its half of a
fixed global batch, several steps (across SOAP/Shampoo refreshes and Sophia Hessian updates fed from the
all-reduced gradient). Then Sophia's real estimators under DDP, through the wrapper and around it (what a Lightning
manual-optimization step does), with rank-dependent sampling. Every rank saves what it ended with.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from tests.optimizer_zoo import NAMES, ZOO, step_with

GLOBAL_BATCH, STEPS = 8, 6


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()


def _batch(step: int, rank: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    x, y = torch.randn(GLOBAL_BATCH, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (GLOBAL_BATCH,),
                                                                                           generator=g)
    share = GLOBAL_BATCH // world
    return x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]


def train_zoo(rank: int, world: int) -> dict[str, list[torch.Tensor]]:
    out = {}
    for name in NAMES:
        model = _model()
        net = DistributedDataParallel(model) if world > 1 else model
        opt = ZOO[name].make(model.parameters())
        params = list(model.parameters())
        for t in range(STEPS):
            x, y = _batch(t, rank, world)
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()  # DDP averages the grads: the full batch's mean-loss gradient
            step_with(opt, params, [p.grad for p in params], t)  # Hessian entries: fed the averaged grad
        out[name] = [p.detach().clone() for p in params]
    return out


def train_sophia_estimators(rank: int, world: int) -> dict[str, list[torch.Tensor]]:
    from papers.sophia import SophiaG, SophiaH, gnb_hessian_step, hutchinson_hessian_step

    out = {}
    for label, through_ddp in (("gnb_ddp_forward", True), ("gnb_inner_forward", False), ("hutchinson", False)):
        model = _model()
        net = DistributedDataParallel(model) if world > 1 else model
        opt = (SophiaH(model.parameters(), lr=1e-2) if label == "hutchinson"
               else SophiaG(model.parameters(), lr=1e-2, bs=GLOBAL_BATCH))
        for t in range(STEPS):
            x, y = _batch(t, rank, world)
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
            gen = torch.Generator().manual_seed(77 + t + 2**40 * rank)  # independent draws per rank
            if label == "hutchinson":
                hutchinson_hessian_step(opt, F.cross_entropy(model(x), y), generator=gen)
            else:
                logits = net(x) if through_ddp else model(x)
                gnb_hessian_step(opt, logits, grad_clip=1.0, generator=gen)
        out[label] = [p.detach().clone() for p in model.parameters()]
        out[label + "_hessian"] = [opt.state[p]["hessian"].clone() for p in model.parameters()]
    return out


def worker(rank: int, world: int, folder: str, port: int) -> None:
    torch.set_num_threads(1)
    if world > 1:
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = {**train_zoo(rank, world), **train_sophia_estimators(rank, world)}
        torch.save(result, Path(folder) / f"world{world}_rank{rank}.pt")
    finally:
        if world > 1:
            dist.destroy_process_group()
