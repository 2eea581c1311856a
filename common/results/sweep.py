"""LR-grid sweeps shared by every paper: each arm gets the same grid (spec "Tuning" convention)."""

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
        result = run(arm, lr, seed, ctx.label(i, len(jobs), f"{arm} lr={lr:g} seed {seed}"))
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
            r = {"arm": arm, "lr": float(lr), "seed": first,
                 **run(arm, float(lr), first, ctx.label(i, total, f"{arm} lr={lr:g} seed {first} (sweep)"))}
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
            out.append({"arm": arm, "lr": lr, "seed": seed,
                        **run(arm, lr, seed, ctx.label(i, total, f"{arm} lr={lr:g} seed {seed} (best lr)"))})
    return out, best
