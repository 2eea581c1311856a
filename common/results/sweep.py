"""LR-grid sweeps shared by every paper: each arm gets the same grid (spec "Tuning" convention).

Every (arm, lr, seed) result is saved under the claim's runs folder as it finishes (``RunContext.cached``), so
``reproduce --resume`` reruns only what a killed run had not finished."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from common.results.context import RunContext

RunFn = Callable[[str, float, int, str], dict[str, Any]]  # (arm, lr, seed, progress label) -> result
Score = Callable[[dict[str, Any]], float | None]  # lower is better; None = failed run


def full_grid(ctx: RunContext, arms: Sequence[str], lrs: Sequence[float], run: RunFn) -> list[dict[str, Any]]:
    """Every (arm, lr, seed): the design when the claim is about sensitivity across the grid."""
    jobs = [(a, float(lr), s) for a in arms for lr in lrs for s in ctx.seeds]
    out = []
    for i, (arm, lr, seed) in enumerate(jobs, 1):
        label = ctx.label(i, len(jobs), f"{arm} lr={lr:g} seed {seed}")
        result = ctx.cached(f"{arm}-lr{lr:g}-s{seed}", lambda a=arm, r=lr, s=seed, lb=label: run(a, r, s, lb), label)
        out.append({"arm": arm, "lr": lr, "seed": seed, **result})
    return out


def tune_then_seed(ctx: RunContext, arms: Sequence[str], lrs: Sequence[float] | Mapping[str, Sequence[float]],
                   run: RunFn, score: Score) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """Sweep the grid on the first seed, then rerun each arm's best LR on the remaining seeds.
    ``lrs`` is one grid for every arm, or a grid per arm (same x-offsets for another family).
    Returns all runs and the chosen LR per arm (None when every LR failed)."""
    grids = {a: list(lrs[a]) for a in arms} if isinstance(lrs, Mapping) else {a: list(lrs) for a in arms}
    first, rest = ctx.seeds[0], ctx.seeds[1:]
    total = sum(len(g) for g in grids.values()) + len(arms) * len(rest)
    out: list[dict[str, Any]] = []
    best: dict[str, float | None] = {}
    i = 0
    for arm in arms:
        scored = []
        for lr in grids[arm]:
            i += 1
            label = ctx.label(i, total, f"{arm} lr={lr:g} seed {first} (sweep)")
            r = {"arm": arm, "lr": float(lr), "seed": first,
                 **ctx.cached(f"{arm}-lr{float(lr):g}-s{first}",
                              lambda a=arm, x=float(lr), lb=label: run(a, x, first, lb), label)}
            out.append(r)
            s = score(r)
            if s is not None and math.isfinite(s):
                scored.append((s, float(lr)))
        best[arm] = min(scored)[1] if scored else None
    for arm in arms:
        lr = best[arm]
        for seed in rest:
            i += 1
            if lr is None:
                continue
            label = ctx.label(i, total, f"{arm} lr={lr:g} seed {seed} (best lr)")
            out.append({"arm": arm, "lr": lr, "seed": seed,
                        **ctx.cached(f"{arm}-lr{lr:g}-s{seed}",
                                     lambda a=arm, x=lr, s=seed, lb=label: run(a, x, s, lb), label)})
    return out, best
