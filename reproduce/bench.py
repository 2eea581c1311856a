"""``reproduce bench``: time every optimizer step and write results/bench/<device>-<shapes>.{json,md}."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from common.bench.hardware import copy_bandwidth, describe
from common.bench.report import Row, write
from common.bench.shapes import shape_set
from common.bench.timing import failure_line, state_bytes, synchronize, time_interleaved
from common.errors import ConfigError
from common.kernels import CHOICES, IMPLS, NATIVE, available_impls
from reproduce.bench_candidates import (
    ADAMW_BYTES,
    BYTES_PER_PARAM,
    OPTIMIZERS,
    RIEMANNIAN,
    SOAP_IMPLS,
    STEP_COMPILED,
    Candidate,
    alternatives,
    ours,
    yardstick,
)

__all__ = ["DEFAULT_OUT", "run_bench"]

DEFAULT_OUT = Path("results/bench")


def params_with_grads(shapes: list[tuple[int, ...]], device: torch.device) -> list[torch.Tensor]:
    """fp32 parameters with fixed random gradients: every optimizer steps the same tensors."""
    gen = torch.Generator().manual_seed(0)
    params = []
    for s in shapes:
        p = (torch.randn(s, generator=gen) * 0.02).to(device).requires_grad_()
        p.grad = (torch.randn(s, generator=gen) * 1e-3).to(device)
        params.append(p)
    return params


def _time_family(cands: list[Candidate], params: list[torch.Tensor], device: torch.device, steps: int,
                 warmup: int, n_params: int, rounds: int) -> list[tuple[object, float | None, str]]:
    """(times, state bytes per parameter, note) of each candidate, timed in interleaved rounds (see
    :func:`common.bench.timing.time_interleaved`); a candidate that fails is reported with the reason."""
    opts: list[torch.optim.Optimizer | str] = []
    for cand in cands:
        try:
            opts.append(cand.make(params))
        except Exception as err:  # a package that cannot run here is reported, not fatal
            opts.append(failure_line(err))
    live = [o for o in opts if not isinstance(o, str)]
    firsts = [_FirstTimed(o.step, device) for o in live]
    timed = iter(time_interleaved(firsts, device, warmup=warmup, steps=steps, rounds=rounds))
    first_s = iter(f.seconds for f in firsts)
    out: list[tuple[object, float | None, str]] = []
    for cand, opt in zip(cands, opts, strict=True):
        if isinstance(opt, str):
            out.append((None, None, opt))
            continue
        times, first = next(timed), next(first_s)
        if isinstance(times, str):
            out.append((None, None, times))
        else:
            note = "; ".join(x for x in (cand.note, f"first step {first:.1f} s" if first is not None else "") if x)
            out.append((times, state_bytes(opt) / n_params, note))
    opts.clear()
    live.clear()
    gc.collect()
    return out


class _FirstTimed:
    """``step`` whose first call (a compiled step's compilation) is timed into ``seconds``."""

    def __init__(self, step: Callable[[], object], device: torch.device) -> None:
        self.step, self.device = step, device
        self.seconds: float | None = None

    def __call__(self) -> object:
        if self.seconds is not None:
            return self.step()
        t0 = time.perf_counter()
        out = self.step()
        synchronize(self.device)
        self.seconds = time.perf_counter() - t0
        return out


def _impls(requested: list[str], device: torch.device) -> tuple[tuple[str, ...], list[str]]:
    """The requested implementations that can run on ``device``, and notes for those that cannot."""
    here = available_impls(device)
    every = [*IMPLS, NATIVE, STEP_COMPILED] if device.type == "cpu" else list(IMPLS)
    wanted = every if not requested or "all" in requested else requested
    runnable = tuple(i for i in wanted if i in here or i in ("batched", "auto", NATIVE, STEP_COMPILED))
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
    rounds: int = 5,
) -> tuple[Path, Path, list[Row]]:
    """Time every (optimizer, implementation) on the ``shapes`` parameter set; write and return JSON, markdown, rows."""
    # the Riemannian rules need ball parameters (rows inside the unit ball): by default only the embedding tables
    names = optimizers or [n for n in OPTIMIZERS if n not in RIEMANNIAN or shapes.startswith("wordnet")]
    for n in names:
        if n not in OPTIMIZERS:
            raise ConfigError(f"bench: unknown optimizer {n!r}; choose from {', '.join(OPTIMIZERS)}")
    for i in impls or []:
        if i not in (*CHOICES, "all", *SOAP_IMPLS, STEP_COMPILED):
            raise ConfigError(f"bench: unknown impl {i!r}; choose from "
                              f"{', '.join((*IMPLS, NATIVE, STEP_COMPILED, 'all'))}")
    if steps < 1 or warmup < 0 or rounds < 1:
        raise ConfigError("bench: --steps and --rounds must be >= 1 and --warmup >= 0")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("bench: --device cuda but CUDA is not available")
    try:
        shape_list = shape_set(shapes)
    except ValueError as err:
        raise ConfigError(f"bench: {err}") from None
    runnable, skipped = _impls(impls or [], dev)

    hardware = describe(dev)
    params = params_with_grads(shape_list, dev)
    n_params = sum(p.numel() for p in params)
    # Copy a buffer as large as AdamW's working set (p, g, m, v: 16 bytes a parameter, source + destination), so the
    # bound sees the same cache levels as the optimizers (tiny's 53 MB partly fits a server CPU's L3).
    bandwidth = copy_bandwidth(dev, bandwidth_bytes or max(8 * n_params, 2**20))
    label, make_yardstick = yardstick(dev)
    base = Candidate("adamw", label, "torch.optim", make_yardstick, "yardstick")

    def row(cand: Candidate, times: object, state: float | None, note: str, base_ms: float) -> Row:
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

    # Each optimizer's candidates are timed in rounds interleaved with the yardstick, and their ratios are to the
    # yardstick of those same rounds: a shared machine's drift between families does not enter the ratios.
    family_rows: list[Row] = []
    paired: dict[str, float] = {}
    base_times_all: list[object] = []
    for name in names:
        cands = ours(name, runnable) + (alternatives(name) if with_alternatives else [])
        (base_times, base_state, _), *timed = _time_family([base, *cands], params, dev, steps, warmup, n_params,
                                                           rounds)
        if base_times is None:
            raise RuntimeError(f"bench: the yardstick {label} failed")
        base_ms = paired[name] = base_times.median_ms  # type: ignore[attr-defined]
        base_times_all.append((base_times, base_state))
        print(f"  {name:11s} yardstick {base_ms:8.2f} ms (this optimizer's rounds)", flush=True)
        for cand, (times, state, note) in zip(cands, timed, strict=True):
            if cand.impl == "triton" and dev.type == "cpu":
                note = "Triton interpreter (TRITON_INTERPRET=1): a correctness mode, not a speed"
            family_rows.append(row(cand, times, state, note, base_ms))
            print(f"  {cand.optimizer:11s} {cand.impl:18s} {cand.source:18s} "
                  f"{'-' if times is None else f'{times.median_ms:8.2f} ms'}  {note}", flush=True)  # type: ignore
        for impl in ([] if name in RIEMANNIAN else skipped):  # the Riemannian rules have one implementation
            note = f"{impl} unavailable on {dev.type}" + (" (Triton runs on CUDA)" if impl == "triton" else "")
            family_rows.append(Row(name, impl, "optrepro", None, BYTES_PER_PARAM[name], None, None, None, None, None,
                                   note))
    # The yardstick row: the run of median yardstick (the middle optimizer family's).
    base_times, base_state = sorted(base_times_all, key=lambda bt: bt[0].median_ms)[len(base_times_all) // 2]  # type: ignore
    base_ms = base_times.median_ms  # type: ignore[attr-defined]
    rows = [row(base, base_times, base_state, "yardstick (median over the optimizers' rounds)", base_ms),
            *family_rows]
    meta = {
        "shapes": shapes, "n_params": n_params, "n_tensors": len(params), "steps": steps, "warmup": warmup,
        "hardware": hardware, "copy_bandwidth_gbs": bandwidth / 1e9,
        "yardstick": {"label": label, "median_ms": base_ms, "paired_median_ms": paired},
        "rounds": rounds,
        "load_average_after": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else [],
    }
    json_path, md_path = write(out_dir, f"{dev.type}-{shapes}", meta, rows)
    return json_path, md_path, rows
