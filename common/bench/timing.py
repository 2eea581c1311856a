"""Step times of one optimizer: warm-up steps (compilation, lazy state), then timed steps, each synchronised."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from common.bench.hardware import synchronize

__all__ = ["StepTimes", "state_bytes", "time_steps"]


@dataclass(frozen=True)
class StepTimes:
    median_ms: float
    min_ms: float
    max_ms: float
    mean_ms: float
    steps: int


def time_steps(step: Callable[[], object], device: torch.device, *, warmup: int, steps: int) -> StepTimes:
    """Run ``warmup`` untimed steps, then time ``steps`` steps one by one (ms)."""
    for _ in range(warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return StepTimes(statistics.median(times), min(times), max(times), statistics.fmean(times), steps)


def state_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer keeps in ``state`` (nested lists included, e.g. SOAP's factors)."""
    seen: set[int] = set()

    def size(x: object) -> int:
        if isinstance(x, torch.Tensor):
            if x.data_ptr() in seen or x.numel() == 0:
                return 0
            seen.add(x.data_ptr())
            return x.numel() * x.element_size()
        if isinstance(x, (list, tuple)):
            return sum(size(y) for y in x)
        if isinstance(x, dict):
            return sum(size(y) for y in x.values())
        return 0

    return sum(size(s) for s in opt.state.values())
