"""Gradients at a second point kept in optimizer state (SVRG's snapshot, STORM's previous iterate).

Both methods need a forward/backward at parameters other than the current ones and then a per-parameter
record of that gradient. The swap happens in place (no second model object), so Lightning modules, hooks and
DDP wrappers see the same parameters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

__all__ = ["all_params", "params_holding", "record_grads", "swapped_in"]


def all_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Every parameter of ``optimizer`` in param-group order (the order ``grads`` lists use)."""
    return [p for g in optimizer.param_groups for p in g["params"]]


def params_holding(optimizer: torch.optim.Optimizer, key: str) -> list[torch.Tensor]:
    """The parameters whose state holds ``key``."""
    return [p for p in all_params(optimizer) if key in optimizer.state.get(p, {})]


@contextlib.contextmanager
def swapped_in(optimizer: torch.optim.Optimizer, key: str) -> Iterator[None]:
    """Copy ``state[p][key]`` into each parameter that has it for the body, then restore the current values."""
    params = params_holding(optimizer, key)
    with torch.no_grad():
        current = [p.detach().clone() for p in params]
        for p in params:
            p.copy_(optimizer.state[p][key])
    try:
        yield
    finally:
        with torch.no_grad():
            for p, c in zip(params, current, strict=True):
                p.copy_(c)


@torch.no_grad()
def record_grads(optimizer: torch.optim.Optimizer, grads: Sequence[torch.Tensor | None] | None, *, point_key: str,
                 grad_key: str, step_key: str, step_of: str, default_step: int | None = None) -> None:
    """Store ``grads`` (param-group order; None: each ``p.grad``) as ``state[grad_key]`` of the parameters holding
    ``point_key``, stamped with the current ``state[step_of]`` under ``step_key`` so a stale record is detectable."""
    params = all_params(optimizer)
    if grads is not None and len(grads) != len(params):
        raise ValueError(f"grads has {len(grads)} entries for {len(params)} parameters")
    for i, p in enumerate(params):
        g = p.grad if grads is None else grads[i]
        state = optimizer.state.get(p)
        if g is None or not state or point_key not in state:
            continue
        state[grad_key] = g.detach().to(p).clone()
        state[step_key] = int(state[step_of] if default_step is None else state.get(step_of, default_step))
