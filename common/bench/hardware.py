"""What the benchmark ran on: device, threads, library versions, load, and the measured copy bandwidth."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any

import torch

__all__ = ["copy_bandwidth", "describe", "synchronize"]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device: torch.device, n_bytes: int = 256 * 2**20, repeats: int = 10) -> float:
    """Bytes per second of ``dst.copy_(src)`` on a buffer far larger than the caches, read + write counted; the
    median of ``repeats`` copies after one warm-up. The roofline the optimizers' bytes per parameter are held to."""
    n = n_bytes // 4
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return 2 * n * 4 / statistics.median(times)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:
        return None


def describe(device: torch.device) -> dict[str, Any]:
    """Device name, core and thread counts, load average, torch/triton versions."""
    info: dict[str, Any] = {
        "device": str(device),
        "name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info
