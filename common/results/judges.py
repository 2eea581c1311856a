"""Verdict rules shared by every paper, on a :class:`~common.results.sweep.TunedSummary` (step claims: a
:class:`~common.results.sweep.StepSummary`).

A loss claim is the protocol's paired test of method - baseline over eval seeds; a step claim is judged from the
method's runs whose schedules end at f*T. Both apply the protocol's caps, so a paper's judge is one call."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from common.results.protocol import (
    ArmEval,
    ArmTuning,
    cap_verdict,
    loss_verdict,
    paired_test,
    step_verdict,
)
from common.results.sweep import ShortRuns, StepSummary, TunedSummary
from common.results.verdict import INCONCLUSIVE, PARTIAL, REPRODUCED, Verdict

MIN_TUNING_SEEDS, MIN_EVAL_SEEDS = 2, 3


def _metric(x: Any) -> float:
    return math.inf if x is None or not math.isfinite(float(x)) else float(x)


def arm_eval(summary: TunedSummary, arm: str, section: str = "arms") -> ArmEval:
    """An arm's eval-seed metrics (``section="short"``: a step claim's f*T runs), diverged seeds as +inf."""
    a = summary.short[arm] if section == "short" else summary.arms[arm]  # type: ignore[attr-defined]
    finals = [_metric(x) for x in a.finals]
    return ArmEval(arm, a.lr, list(range(len(finals))), finals)


def arm_tuning(summary: TunedSummary, arm: str) -> ArmTuning:
    a = summary.arms[arm]
    return ArmTuning(arm, "lr", 0.0, bracketed=bool(a.bracketed), chosen=a.lr)


def seed_cap(summary: TunedSummary) -> str | None:
    """Too few seeds for the protocol (the smoke preset): the verdict says so instead of pretending."""
    n_tune, n_eval = len(summary.tuning_seeds), len(summary.eval_seeds)
    if n_tune < MIN_TUNING_SEEDS or n_eval < MIN_EVAL_SEEDS:
        return f"too few seeds ({n_tune} tuning, {n_eval} eval; the protocol needs {MIN_TUNING_SEEDS} and " \
               f"{MIN_EVAL_SEEDS})"
    return None


def with_seed_cap(status: str, cap: str | None, summary: TunedSummary) -> tuple[str, str | None]:
    """The "too few seeds" cap, when no other cap already applies."""
    few = seed_cap(summary)
    return (INCONCLUSIVE, few) if few and cap is None else (status, cap)


def short_ratio(short: ShortRuns) -> dict[str, Any]:
    """A step claim's ratio estimate, marked ``upper_bound`` when every seed already reaches the target at the
    shortest schedule that was run (the interpolation cannot see below it)."""
    r = dict(short.ratio or {})
    fractions = short.fractions or {}
    if r.get("per_seed") and fractions:
        shortest = min(float(k) for k in fractions)
        r["upper_bound"] = all(x is not None and abs(float(x) - shortest) < 1e-12 for x in r["per_seed"])
    return r


def ratio_text(ratio: Mapping[str, Any] | None, target: str = "target") -> str:
    """"; steps to <target> ≈ 0.62T (never reached on 1 seed(s))" from a ratio estimate, "" when none was run."""
    r = ratio or {}
    if r.get("upper_bound"):
        return f"; steps to {target} ≤ {r['geo_mean']:.2f}T (the shortest runs already reach it)"
    if r.get("geo_mean") is not None:
        text = f"; steps to {target} ≈ {r['geo_mean']:.2f}T"
        return text + (f" (never reached on {r['never_reached']} seed(s))" if r.get("never_reached") else "")
    return f"; {target} not reached within T" if r else ""


def finish(status: str, checks: dict[str, Any], reasons: list[str], summary: TunedSummary, method: str,
           baselines: Sequence[str], *, winner: str | None = None) -> Verdict:
    """Apply the protocol's caps (bracketing, an unstable winner, too few seeds) to a rule's raw status."""
    won = status in (REPRODUCED, PARTIAL)
    winner = winner or (method if won else None)
    diverged = bool(winner and summary.arms[winner].diverged)
    status, cap = cap_verdict(status, method=arm_tuning(summary, method),
                              baselines=[arm_tuning(summary, b) for b in baselines], winner_diverged=diverged)
    status, cap = with_seed_cap(status, cap, summary)
    return Verdict(status, checks, reasons, cap)


def _untuned(summary: TunedSummary, *arms: str) -> bool:
    """Some arm diverged at every grid point, so it has no chosen lr."""
    return any(summary.arms[a].lr is None for a in arms)


def loss_claim(summary: TunedSummary, method: str, baseline: str, *, min_gap: float = 0.0) -> Verdict:
    """"method reaches a lower final metric than baseline": P7's paired test; a significant difference smaller
    than ``min_gap`` (the paper's own threshold for a difference that matters) is at most partial."""
    if _untuned(summary, method, baseline):
        return Verdict(INCONCLUSIVE, {}, [f"{method} or {baseline} diverged at every grid point"])
    test = paired_test(arm_eval(summary, method).metrics, arm_eval(summary, baseline).metrics)
    status, reasons = loss_verdict(test)
    checks: dict[str, Any] = {"p<0.05": test.significant}
    if min_gap:
        big = test.diff is not None and -test.diff > min_gap
        checks[f"gap>{min_gap:g}"] = big
        if status == REPRODUCED and not big:
            status = PARTIAL
            reasons.append(f"significant, but smaller than {min_gap:g}")
    return finish(status, checks, reasons, summary, method, [baseline])


def step_claim(summary: StepSummary, method: str, baseline: str) -> Verdict:
    """"method reaches baseline's final loss in f*T steps", from the method's f*T runs (``summary.short``)."""
    short = summary.short.get(method)
    if short is None or _untuned(summary, method, baseline):
        return Verdict(INCONCLUSIVE, {}, [f"{method} or {baseline} diverged at every grid point"])
    f = float(short.f)
    status, reasons, _ = step_verdict(arm_eval(summary, method), arm_eval(summary, baseline),
                                      arm_eval(summary, method, "short"), f, short_ratio(short))
    checks = {f"mean at {f:g}T <= target": status == REPRODUCED}
    return finish(status, checks, reasons, summary, method, [baseline])


def step_test_record(summary: StepSummary, method: str, baseline: str) -> dict[str, Any] | None:
    """The record's ``test`` object of a step claim (kind ``steps-at-fT``)."""
    short = summary.short.get(method)
    if short is None or _untuned(summary, method, baseline):
        return None
    return step_verdict(arm_eval(summary, method), arm_eval(summary, baseline), arm_eval(summary, method, "short"),
                        float(short.f), short_ratio(short))[2]


def loss_test_record(summary: TunedSummary, method: str, baseline: str) -> dict[str, Any] | None:
    """The record's ``test`` object of a loss claim: the paired test of method - baseline."""
    if _untuned(summary, method, baseline):
        return None
    return paired_test(arm_eval(summary, method).metrics, arm_eval(summary, baseline).metrics).to_record()


def _arm_text(summary: TunedSummary, arm: str) -> str:
    a = summary.arms[arm]
    if a.mean is None:
        return f"{arm} diverged"
    edge = "" if a.bracketed else f", lr not bracketed ({a.unbracketed_edge})"
    div = f", diverged {a.diverged}/{a.n}" if a.diverged else ""
    return f"{arm} {a.mean:.4f}±{a.sd:.4f}@{a.lr:g}{edge}{div}"


def comparison_headline(summary: TunedSummary, method: str, baselines: Sequence[str]) -> str:
    """Method vs baselines: eval-seed means ± sd at the chosen lr, bracketing, the paired difference and p."""
    parts = []
    for b in baselines:
        t = loss_test_record(summary, method, b)
        if t and t["diff"] is not None:
            ci = "" if t["ci95"] is None else f" [{t['ci95'][0]:+.4f}, {t['ci95'][1]:+.4f}]"
            p = "" if t["p"] is None else f", p={t['p']:.3g}"
            parts.append(f"{method} - {b} = {t['diff']:+.4f}{ci}{p}")
    arms = "; ".join(_arm_text(summary, a) for a in [method, *baselines])
    return "; ".join(parts + [arms])


def step_headline(summary: StepSummary, method: str, baseline: str) -> str:
    """A step claim: the method's mean final loss at f*T against the baseline's at T, and the ratio estimate."""
    sh = summary.short.get(method)
    target = summary.arms[baseline].mean
    if not sh or sh.mean is None or target is None:
        return comparison_headline(summary, method, [baseline])
    ratio = ratio_text(short_ratio(sh))
    return (f"{method} at {sh.f:g}T {sh.mean:.4f} (lr {sh.lr:g}) vs {baseline}'s final {target:.4f} at T"
            f"{ratio}; " + comparison_headline(summary, method, [baseline]))
