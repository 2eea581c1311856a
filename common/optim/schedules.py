"""LR schedules as factories (optimizer -> scheduler), stepped once per optimizer step."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

SchedulerFactory = Callable[[torch.optim.Optimizer], Any]


def linear_warmup(warmup_steps: int) -> SchedulerFactory:
    """Linear warmup from lr/warmup to lr over ``warmup_steps`` steps, then constant."""
    if warmup_steps < 1:
        raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
    return lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup_steps))


def step_decay(total_steps: int, at: Iterable[float], gamma: float = 0.1) -> SchedulerFactory:
    """Multiply the LR by ``gamma`` at the given fractions of training (the CIFAR step schedule)."""
    milestones = sorted(int(f * total_steps) for f in at)
    return lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=gamma)
