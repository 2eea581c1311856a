"""``reproduce bench``: time every optimizer step and write results/bench/<device>-<shapes>.{json,md}."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import torch

from common.bench.hardware import copy_bandwidth, describe
from common.bench.report import Row, write
from common.bench.shapes import shape_set
from common.bench.timing import state_bytes, time_steps
from common.errors import ConfigError
from common.kernels import CHOICES, IMPLS, available_impls
from reproduce.bench_candidates import (
    ADAMW_BYTES,
    BYTES_PER_PARAM,
    OPTIMIZERS,
    SOAP_IMPLS,
    Candidate,
    alternatives,
    ours,
    yardstick,
)

__all__ = ["DEFAULT_OUT", "run_bench"]

DEFAULT_OUT = Path("results/bench")


def _params(shapes: list[tuple[int, ...]], device: torch.device) -> list[torch.Tensor]:
    """fp32 parameters with fixed random gradients: every optimizer steps the same tensors."""
    gen = torch.Generator().manual_seed(0)
    params = []
    for s in shapes:
        p = (torch.randn(s, generator=gen) * 0.02).to(device).requires_grad_()
        p.grad = (torch.randn(s, generator=gen) * 1e-3).to(device)
        params.append(p)
    return params


def _time(cand: Candidate, params: list[torch.Tensor], device: torch.device, steps: int, warmup: int,
          n_params: int) -> tuple[object, float | None, str]:
    try:
        opt = cand.make(params)
        times = time_steps(opt.step, device, warmup=warmup, steps=steps)
        per_param = state_bytes(opt) / n_params
    except Exception as err:  # a package that cannot run here is reported, not fatal
        return None, None, f"failed: {type(err).__name__}: {str(err).splitlines()[0][:80]}"
    finally:
        opt = None
        gc.collect()
    return times, per_param, cand.note


def _impls(requested: list[str], device: torch.device) -> tuple[tuple[str, ...], list[str]]:
    """The requested implementations that can run on ``device``, and notes for those that cannot."""
    here = available_impls(device)
    wanted = list(IMPLS) if not requested or "all" in requested else requested
    runnable = tuple(i for i in wanted if i in here or i == "batched" or i == "auto")
    skipped = [i for i in wanted if i not in runnable]
    return runnable, skipped


def run_bench(
    optimizers: list[str] | None = None,
    shapes: str = "tiny",
    impls: list[str] | None = None,
    steps: int = 30,
    warmup: int = 10,
    device: str | None = None,
    out_dir: Path = DEFAULT_OUT,
    with_alternatives: bool = True,
    bandwidth_bytes: int | None = None,
) -> tuple[Path, Path, list[Row]]:
    """Time every (optimizer, implementation) on the ``shapes`` parameter set; write and return JSON, markdown, rows."""
    names = optimizers or list(OPTIMIZERS)
    for n in names:
        if n not in OPTIMIZERS:
            raise ConfigError(f"bench: unknown optimizer {n!r}; choose from {', '.join(OPTIMIZERS)}")
    for i in impls or []:
        if i not in (*CHOICES, "all", *SOAP_IMPLS):
            raise ConfigError(f"bench: unknown impl {i!r}; choose from {', '.join((*IMPLS, 'all'))}")
    if steps < 1 or warmup < 0:
        raise ConfigError("bench: --steps must be >= 1 and --warmup >= 0")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("bench: --device cuda but CUDA is not available")
    try:
        shape_list = shape_set(shapes)
    except ValueError as err:
        raise ConfigError(f"bench: {err}") from None
    runnable, skipped = _impls(impls or [], dev)

    hardware = describe(dev)
    params = _params(shape_list, dev)
    n_params = sum(p.numel() for p in params)
    # Copy a buffer as large as AdamW's working set (p, g, m, v: 16 bytes a parameter, source + destination), so the
    # bound sees the same cache levels as the optimizers (tiny's 53 MB partly fits a server CPU's L3).
    bandwidth = copy_bandwidth(dev, bandwidth_bytes or max(8 * n_params, 2**20))
    label, make_yardstick = yardstick(dev)
    base_times, base_state, _ = _time(Candidate("adamw", label, "torch.optim", make_yardstick), params, dev, steps,
                                      warmup, n_params)
    if base_times is None:
        raise RuntimeError(f"bench: the yardstick {label} failed")
    base_ms = base_times.median_ms  # type: ignore[attr-defined]

    def row(cand: Candidate, times: object, state: float | None, note: str) -> Row:
        nbytes = BYTES_PER_PARAM[cand.optimizer]
        median = times.median_ms if times is not None else None  # type: ignore[attr-defined]
        bound = nbytes * n_params / bandwidth * 1e3 if nbytes else None
        return Row(
            optimizer=cand.optimizer, impl=cand.impl, source=cand.source, times=times,  # type: ignore[arg-type]
            bytes_per_param=nbytes, state_bytes_per_param=state,
            vs_fused_adamw=median / base_ms if median else None,
            vs_fused_adamw_scaled=median / (base_ms * nbytes / ADAMW_BYTES) if median and nbytes else None,
            bound_ms=bound, vs_bound=median / bound if median and bound else None, note=note,
        )

    rows = [row(Candidate("adamw", label, "torch.optim", make_yardstick), base_times, base_state, "yardstick")]
    for name in names:
        for cand in ours(name, runnable) + (alternatives(name) if with_alternatives else []):
            times, state, note = _time(cand, params, dev, steps, warmup, n_params)
            if cand.impl == "triton" and dev.type == "cpu":
                note = "Triton interpreter (TRITON_INTERPRET=1): a correctness mode, not a speed"
            rows.append(row(cand, times, state, note))
            print(f"  {cand.optimizer:11s} {cand.impl:18s} {cand.source:18s} "
                  f"{'-' if times is None else f'{times.median_ms:8.2f} ms'}  {note}", flush=True)  # type: ignore
        for impl in skipped:
            note = f"{impl} unavailable on {dev.type}" + (" (Triton runs on CUDA)" if impl == "triton" else "")
            rows.append(Row(name, impl, "optrepro", None, BYTES_PER_PARAM[name], None, None, None, None, None, note))
    meta = {
        "shapes": shapes, "n_params": n_params, "n_tensors": len(params), "steps": steps, "warmup": warmup,
        "hardware": hardware, "copy_bandwidth_gbs": bandwidth / 1e9,
        "yardstick": {"label": label, "median_ms": base_ms},
        "load_average_after": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else [],
    }
    json_path, md_path = write(out_dir, f"{dev.type}-{shapes}", meta, rows)
    return json_path, md_path, rows
