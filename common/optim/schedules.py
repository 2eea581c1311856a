"""LR schedules as factories (optimizer -> scheduler), stepped once per optimizer step."""

from __future__ import annotations

import math
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


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float = 0.1) -> SchedulerFactory:
    """nanoGPT's schedule: linear warmup to the peak lr, cosine decay to ``min_ratio`` x peak at the end."""
    if total_steps < 1 or warmup_steps < 0 or warmup_steps > total_steps:
        raise ValueError(f"need 0 <= warmup_steps <= total_steps, got {warmup_steps}, {total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, factor)
