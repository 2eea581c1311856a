"""RAdam's verdict rules, applied to a run's summary. Thresholds live here, once; C2's evidence follows the
protocol (tuned lrs, eval seeds, a paired interval, checks that cannot fire reported as not exercised)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.results.judges import arm_eval, comparison_headline, finish, loss_test_record
from common.results.lm_summary import LMSummary
from common.results.protocol import exercised, paired_test
from common.results.summary import Summary
from common.results.sweep import TunedSummary
from common.results.verdict import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    PARTIAL,
    REPRODUCED,
    Verdict,
    count_rule,
)

NOT_EXERCISED = "not exercised"

C1_ADAM_MIN = 10.0
C1_RECT_BAND = (0.5, 2.0)
C2_BEST_MARGIN = 0.02  # nats
C2_SPREAD_FACTOR = 0.5
C3_MARGIN_PP = 0.3

C1_RULE = (f"reproduced if for every µ Adam's ratio ≥ {C1_ADAM_MIN:g} and the rectified ratio ∈ [{C1_RECT_BAND[0]:g}, "
           f"{C1_RECT_BAND[1]:g}]; partially if only one holds; not reproduced if neither; contradicted if rectified ≥ "
           "Adam for some µ")
C2_RULE = (f"each arm's lr tuned by the protocol, the choice run on the eval seeds, the whole grid also run on the "
           f"eval seeds. Reproduced if all of: (a) the 95% interval of RAdam - Adam+warmup at their tuned lrs lies "
           f"below +{C2_BEST_MARGIN} nats, (b) RAdam's spread S (std over the grid of the eval-seed mean final loss; a "
           f"failed run counts as ln 256) <= {C2_SPREAD_FACTOR}·S(Adam), (c) F(RAdam) <= F(Adam+warmup) (failed "
           "runs; not exercised when both are 0, then it counts neither way); partially if one exercised check "
           "fails; not reproduced if more fail; contradicted if S(RAdam) > S(Adam) and F(RAdam) > F(Adam)")

C3_RULE = (f"reproduced if RAdam best ≥ Adam best + {C3_MARGIN_PP:g} pp and RAdam's spread < Adam's; partially if "
           f"exactly one holds; contradicted if Adam best > RAdam best + {C3_MARGIN_PP:g} pp; SGD reported, not judged")


@dataclass
class MuRatios(Summary):
    """One mu's early/late variance ratios, mean and std over seeds."""

    adam_ratio: float
    adam_ratio_std: float
    rectified_ratio: float
    rectified_ratio_std: float
    n: int


@dataclass
class VarianceSummary(Summary):
    """C1's measurement: per mu (keyed "0.9", ...), the ratios of Var early to Var late, and their extremes."""

    mus: list[float]
    early: list[int]
    late: list[int]
    per_mu: dict[str, MuRatios]
    adam_ratio_min: float
    rectified_ratio_min: float
    rectified_ratio_max: float

    @classmethod
    def of(cls, mus: list[float], early: list[int], late: list[int], per_mu: dict[str, MuRatios]) -> VarianceSummary:
        return cls(mus, early, late, per_mu, adam_ratio_min=min(v.adam_ratio for v in per_mu.values()),
                   rectified_ratio_min=min(v.rectified_ratio for v in per_mu.values()),
                   rectified_ratio_max=max(v.rectified_ratio for v in per_mu.values()))


@dataclass(kw_only=True)
class RobustnessSummary(LMSummary):
    """C2's measurement: the LM sweep with the whole grid on the eval seeds (``grid_eval``), and from it per arm the
    mean final loss at each grid lr (a failed run counts as ``failed_value``), its spread over the grid, the
    failed runs, and the runs per arm."""

    failed_value: float | None
    spread: dict[str, float]
    failed: dict[str, int]
    mean_final: dict[str, dict[str, float | None]]
    runs_per_arm: int


@dataclass
class BestAccuracy(Summary):
    """An arm's test accuracy (%) at its chosen lr, mean and std over the eval seeds that finished."""

    lr: float | None
    test_acc: float | None
    test_acc_std: float
    n: int


@dataclass(kw_only=True)
class AccuracySummary(TunedSummary):
    """C3's measurement: the tuned arms, each arm's best (its choice on the eval seeds), the spread of test
    accuracy over its tuning grid (pp), and the tuning scores (validation error %) by lr."""

    best: dict[str, BestAccuracy]
    spread: dict[str, float]
    grid: dict[str, dict[str, float | None]]


def judge_variance(s: VarianceSummary) -> Verdict:
    per_mu = s.per_mu
    adam_ok = all(v.adam_ratio >= C1_ADAM_MIN for v in per_mu.values())
    lo, hi = C1_RECT_BAND
    rect_ok = all(lo <= v.rectified_ratio <= hi for v in per_mu.values())
    contradicted = any(v.rectified_ratio >= v.adam_ratio for v in per_mu.values())
    reasons = [f"Adam early/late variance ratio >= {C1_ADAM_MIN:g} for every mu: {adam_ok} "
               f"(min {s.adam_ratio_min:.3g})",
               f"rectified ratio within [{lo}, {hi}] for every mu: {rect_ok} "
               f"(range {s.rectified_ratio_min:.3g}..{s.rectified_ratio_max:.3g})"]
    return count_rule({"adam_early_variance_large": adam_ok, "rectified_flat": rect_ok},
                      partial_at_least=1, contradicted=contradicted, reasons=reasons)


def headline_variance(s: VarianceSummary) -> str:
    return (f"early/late variance ratio: Adam {s.adam_ratio_min:.3g} (min over {len(s.per_mu)} mu), "
            f"rectified {s.rectified_ratio_min:.3g}..{s.rectified_ratio_max:.3g}")


def _c2_parts(s: RobustnessSummary) -> tuple[dict[str, Any], list[str], bool] | None:
    """The three checks of C2 (a check whose two sides are both zero is "not exercised"), their reasons and the
    contradiction condition; None when RAdam or Adam+warmup diverged at every grid point."""
    if s.arms["radam"].lr is None or s.arms["adam_warmup"].lr is None:
        return None
    test = paired_test(arm_eval(s, "radam").metrics, arm_eval(s, "adam_warmup").metrics)
    upper = None if test.ci95 is None else test.ci95[1]
    a = upper is not None and upper <= C2_BEST_MARGIN
    spread, failed = s.spread, s.failed
    b = spread["radam"] <= C2_SPREAD_FACTOR * spread["adam"]
    c: bool | str = (failed["radam"] <= failed["adam_warmup"]) if exercised(failed["radam"], failed["adam_warmup"]) \
        else NOT_EXERCISED
    contradicted = spread["radam"] > spread["adam"] and failed["radam"] > failed["adam"]
    ci = "n/a" if test.ci95 is None else f"[{test.ci95[0]:+.4f}, {test.ci95[1]:+.4f}]"
    reasons = [
        f"(a) RAdam - Adam+warmup at each tuned lr = {test.diff:+.4f}, 95% CI {ci}; upper bound <= "
        f"{C2_BEST_MARGIN}: {a}",
        f"(b) spread over the grid S(RAdam) {spread['radam']:.4f} <= {C2_SPREAD_FACTOR} x S(Adam) "
        f"{spread['adam']:.4f}: {b}",
        f"(c) failed runs F(RAdam) {failed['radam']} <= F(Adam+warmup) {failed['adam_warmup']}: {c}",
    ]
    return {"a_best_matches_warmup": a, "b_spread_halved": b, "c_failures_not_more": c}, reasons, contradicted


def judge_lr_robustness(s: RobustnessSummary) -> Verdict:
    parts = _c2_parts(s)
    if parts is None:
        return Verdict(INCONCLUSIVE, {}, ["every learning rate of RAdam or Adam+warmup diverged"])
    checks, reasons, contradicted = parts
    live = [v for v in checks.values() if v != NOT_EXERCISED]
    misses = sum(not v for v in live)
    status = CONTRADICTED if contradicted else REPRODUCED if misses == 0 else PARTIAL if misses == 1 \
        else NOT_REPRODUCED
    return finish(status, checks, reasons, s, "radam", ["adam_warmup", "adam"])


def test_lr_robustness(s: RobustnessSummary) -> dict[str, Any] | None:
    return loss_test_record(s, "radam", "adam_warmup")


def headline_lr_robustness(s: RobustnessSummary) -> str:
    spread, failed, n = s.spread, s.failed, s.runs_per_arm
    top = max(s.mean_final["radam"], key=float)  # the largest lr, where warmup matters most

    def at(arm: str) -> str:
        v = s.mean_final[arm][top]
        return f"{arm} {'n/a' if v is None else format(v, '.3f')}"

    return (comparison_headline(s, "radam", ["adam_warmup", "adam"])
            + f"; spread S {spread['radam']:.3f} vs Adam {spread['adam']:.3f}; failed {failed['radam']}/{n} vs "
            f"{failed['adam']}/{n} (Adam), {failed['adam_warmup']}/{n} (warmup); at lr {top}: "
            + ", ".join(at(a) for a in ("radam", "adam_warmup", "adam")))


def judge_accuracy(s: AccuracySummary) -> Verdict:
    best, spread = s.best, s.spread
    r, a = best["radam"].test_acc, best["adam"].test_acc
    if r is None or a is None:
        return Verdict("inconclusive", {}, ["RAdam or Adam failed at every learning rate"])
    better = r >= a + C3_MARGIN_PP
    robust = spread["radam"] < spread["adam"]
    reasons = [f"RAdam best {r:.2f}% >= Adam best {a:.2f}% + {C3_MARGIN_PP} pp: {better}",
               f"RAdam spread {spread['radam']:.2f} pp < Adam spread {spread['adam']:.2f} pp: {robust}"]
    checks = {"radam_beats_adam": better, "radam_less_lr_sensitive": robust}
    if a > r + C3_MARGIN_PP:
        status = CONTRADICTED
    else:
        status = REPRODUCED if better and robust else PARTIAL if better or robust else NOT_REPRODUCED
    return finish(status, checks, reasons, s, "radam", ["adam"])


def headline_accuracy(s: AccuracySummary) -> str:
    parts = []
    for arm in ("sgd", "adam", "radam"):
        v = s.best.get(arm)
        if v and v.test_acc is not None:
            parts.append(f"{arm} {v.test_acc:.2f}±{v.test_acc_std:.2f}%@{v.lr:g}")
    return "test acc " + ", ".join(parts) + "; spread " + ", ".join(
        f"{k} {v:.2f}" for k, v in s.spread.items()) + " pp"
