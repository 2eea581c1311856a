"""Step times of one optimizer: warm-up steps (compilation, lazy state), then timed steps, each synchronised."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from common.bench.hardware import synchronize

__all__ = ["StepTimes", "failure_line", "state_bytes", "time_interleaved", "time_steps"]


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
    return _summary(times)


def _summary(times: list[float]) -> StepTimes:
    return StepTimes(statistics.median(times), min(times), max(times), statistics.fmean(times), len(times))


def time_interleaved(steps_of: Sequence[Callable[[], object]], device: torch.device, *, warmup: int, steps: int,
                     rounds: int = 5) -> list[StepTimes | str]:
    """Time several optimizers' ``step``s in interleaved rounds: each takes its ``warmup`` steps, then every round
    times ``steps / rounds`` steps of each in turn. A shared machine that slows down or speeds up during the run
    (other jobs, clock changes) then weighs on every optimizer alike, so ratios between them stay honest. Returns
    each one's times, or the one-line reason it failed (it is dropped from later rounds)."""
    results: list[list[float] | str] = []
    for step in steps_of:
        try:
            for _ in range(warmup):
                step()
            synchronize(device)
            results.append([])
        except Exception as err:  # a package that cannot run here is reported, not fatal
            results.append(failure_line(err))
    rounds = max(1, min(rounds, steps))
    for r in range(rounds):
        size = steps // rounds + (1 if r < steps % rounds else 0)
        for i, step in enumerate(steps_of):
            times = results[i]
            if isinstance(times, str):
                continue
            try:
                for _ in range(size):
                    t0 = time.perf_counter()
                    step()
                    synchronize(device)
                    times.append((time.perf_counter() - t0) * 1e3)
            except Exception as err:
                results[i] = failure_line(err)
    return [r if isinstance(r, str) else _summary(r) for r in results]


def failure_line(err: Exception) -> str:
    """``failed: <Type>: <first line of the message>``, the note of a candidate that could not run."""
    return f"failed: {type(err).__name__}: {str(err).splitlines()[0][:80] if str(err) else ''}"


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
