"""Synthetic typed summaries in the shape the shared sweep makes (``common.results.sweep.arm_summary``), for
verdict tests that need no training."""

from __future__ import annotations

import statistics
from typing import Any

from common.results.lm_summary import LMArm, LMSummary
from common.results.sweep import ShortRuns


def arm(finals: list[float | None], *, lr: float | None = 1e-3, bracketed: bool = True,
        edge: str | None = None) -> LMArm:
    ok = [x for x in finals if x is not None]
    return LMArm(lr=lr, bracketed=bracketed, unbracketed_edge=None if bracketed else (edge or "high"),
                 extensions={"low": 0, "high": 0}, grid={}, finals=list(finals),
                 mean=statistics.fmean(ok) if ok else None, sd=statistics.stdev(ok) if len(ok) > 1 else 0.0,
                 se=None, diverged=len(finals) - len(ok), n=len(finals), state_bytes=None)


def summary(arms: dict[str, LMArm], short: dict[str, ShortRuns] | None = None, n_tuning: int = 2,
            kind: type[LMSummary] = LMSummary, **extra: Any) -> LMSummary:
    """An LM sweep summary (``kind``: a paper's subclass, whose own fields come in ``extra``)."""
    n_eval = len(next(iter(arms.values())).finals)
    return kind(steps=100, tokens_per_step=64, tuning_seeds=list(range(1000, 1000 + n_tuning)),
                eval_seeds=list(range(n_eval)), arms=arms, short=short or {}, **extra)


def short(finals: list[float | None], *, f: float, baseline: str, lr: float = 2e-3) -> ShortRuns:
    ok = [x for x in finals if x is not None]
    return ShortRuns(f=f, steps=50, lr=lr, finals=list(finals), mean=statistics.fmean(ok) if ok else None,
                     diverged=len(finals) - len(ok), baseline=baseline)
