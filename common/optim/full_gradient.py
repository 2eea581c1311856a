"""The full (whole-training-set) gradient, the one global quantity variance-reduced methods need.

SVRG's snapshot mean gradient and the estimator-error diagnostics both want mean_i grad f_i(theta) over the
whole training set. Under ``torch.distributed`` each rank passes its own shard: the weighted sums and example
counts are all-reduced, so every rank gets the same global mean (the DDP test holds it to one process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist


def distributed() -> bool:
    """True when a process group is up with more than one rank (the only case that needs communication)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_mean_(tensors: Sequence[torch.Tensor]) -> None:
    """Average tensors across ranks in place (no-op in a single process)."""
    if not distributed():
        return
    world = dist.get_world_size()
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t.div_(world)


def full_gradient(params: Sequence[torch.Tensor], loss_fn: Callable[[Any], torch.Tensor], batches: Iterable[Any],
                  *, batch_size: Callable[[Any], int] = lambda b: len(b[0]),
                  keep_batches: bool = False) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """Mean gradient of ``loss_fn`` (a batch-mean loss) over ``batches``, weighted by batch size.

    Returns ``(mean, per_batch)``: ``mean[i]`` is the full gradient of ``params[i]`` (zeros where the loss does
    not depend on it); ``per_batch`` holds every batch's gradient when ``keep_batches`` (SVRG's cache mode),
    else it is empty. Parameter ``.grad`` fields are not touched. Under ``torch.distributed`` the sums and
    counts are all-reduced across ranks (each rank iterates over its own shard).
    """
    params = list(params)
    sums = [torch.zeros_like(p, dtype=torch.float64 if p.dtype == torch.float64 else torch.float32) for p in params]
    count = 0
    kept: list[list[torch.Tensor]] = []
    for batch in batches:
        n = int(batch_size(batch))
        with torch.enable_grad():
            grads = torch.autograd.grad(loss_fn(batch), params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads, strict=True)]
        for s, g in zip(sums, grads, strict=True):
            s.add_(g.to(s.dtype), alpha=n)
        count += n
        if keep_batches:
            kept.append(grads)
    if distributed():
        total = torch.tensor([float(count)], dtype=torch.float64, device=sums[0].device if sums else "cpu")
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        for s in sums:
            dist.all_reduce(s, op=dist.ReduceOp.SUM)
        count = int(total.item())
    if count == 0:
        raise ValueError("batches must hold at least one example")
    return [s.div_(count).to(p.dtype) for s, p in zip(sums, params, strict=True)], kept
