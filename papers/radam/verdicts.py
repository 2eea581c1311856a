"""RAdam's verdict rules (spec §6), applied to a run's summary. Thresholds live here, once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.results.verdict import NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict, count_rule

C1_ADAM_MIN = 10.0
C1_RECT_BAND = (0.5, 2.0)
C2_BEST_MARGIN = 0.02  # nats
C2_SPREAD_FACTOR = 0.5
C3_MARGIN_PP = 0.3


def judge_variance(s: Mapping[str, Any]) -> Verdict:
    per_mu = s["per_mu"]
    adam_ok = all(v["adam_ratio"] >= C1_ADAM_MIN for v in per_mu.values())
    lo, hi = C1_RECT_BAND
    rect_ok = all(lo <= v["rectified_ratio"] <= hi for v in per_mu.values())
    contradicted = any(v["rectified_ratio"] >= v["adam_ratio"] for v in per_mu.values())
    reasons = [f"Adam early/late variance ratio >= {C1_ADAM_MIN:g} for every mu: {adam_ok} "
               f"(min {s['adam_ratio_min']:.3g})",
               f"rectified ratio within [{lo}, {hi}] for every mu: {rect_ok} "
               f"(range {s['rectified_ratio_min']:.3g}..{s['rectified_ratio_max']:.3g})"]
    return count_rule({"adam_early_variance_large": adam_ok, "rectified_flat": rect_ok},
                      partial_at_least=1, contradicted=contradicted, reasons=reasons)


def headline_variance(s: Mapping[str, Any]) -> str:
    return (f"early/late variance ratio: Adam {s['adam_ratio_min']:.3g} (min over {len(s['per_mu'])} mu), "
            f"rectified {s['rectified_ratio_min']:.3g}..{s['rectified_ratio_max']:.3g}")


def judge_lr_robustness(s: Mapping[str, Any]) -> Verdict:
    best, spread, failed = s["best"], s["spread"], s["failed"]
    if any(best[a]["loss"] is None for a in ("radam", "adam_warmup")):
        return Verdict("inconclusive", {}, ["every learning rate of RAdam or Adam+warmup failed"])
    a = best["radam"]["loss"] <= best["adam_warmup"]["loss"] + C2_BEST_MARGIN
    b = spread["radam"] <= C2_SPREAD_FACTOR * spread["adam"]
    c = failed["radam"] <= failed["adam_warmup"]
    contradicted = spread["radam"] > spread["adam"] and failed["radam"] > failed["adam"]
    reasons = [
        f"(a) RAdam best {best['radam']['loss']:.4f} <= Adam+warmup best {best['adam_warmup']['loss']:.4f} "
        f"+ {C2_BEST_MARGIN}: {a}",
        f"(b) spread S(RAdam) {spread['radam']:.4f} <= {C2_SPREAD_FACTOR} x S(Adam) {spread['adam']:.4f}: {b}",
        f"(c) failed runs F(RAdam) {failed['radam']} <= F(Adam+warmup) {failed['adam_warmup']}: {c}",
    ]
    return count_rule({"a_best_matches_warmup": a, "b_spread_halved": b, "c_failures_not_more": c},
                      partial_at_least=2, contradicted=contradicted, reasons=reasons)


def headline_lr_robustness(s: Mapping[str, Any]) -> str:
    best, spread, failed, n = s["best"], s["spread"], s["failed"], s["runs_per_arm"]

    def b(arm: str) -> str:
        v = best[arm]
        return "all failed" if v["loss"] is None else f"{v['loss']:.3f}@{v['lr']:g}"

    top = max(s["mean_final"]["radam"], key=float)  # the largest lr, where warmup matters most
    at_top = ", ".join(f"{arm} {s['mean_final'][arm][top]:.3f}" for arm in ("radam", "adam_warmup", "adam"))
    return (f"best val loss RAdam {b('radam')}, Adam+warmup {b('adam_warmup')}, Adam {b('adam')}; "
            f"spread S {spread['radam']:.3f} vs Adam {spread['adam']:.3f}; failed "
            f"{failed['radam']}/{n} vs {failed['adam']}/{n} (Adam), {failed['adam_warmup']}/{n} (warmup); "
            f"at lr {top}: {at_top}")


def judge_accuracy(s: Mapping[str, Any]) -> Verdict:
    best, spread = s["best"], s["spread"]
    r, a = best["radam"]["test_acc"], best["adam"]["test_acc"]
    if r is None or a is None:
        return Verdict("inconclusive", {}, ["RAdam or Adam failed at every learning rate"])
    better = r >= a + C3_MARGIN_PP
    robust = spread["radam"] < spread["adam"]
    reasons = [f"RAdam best {r:.2f}% >= Adam best {a:.2f}% + {C3_MARGIN_PP} pp: {better}",
               f"RAdam spread {spread['radam']:.2f} pp < Adam spread {spread['adam']:.2f} pp: {robust}"]
    checks = {"radam_beats_adam": better, "radam_less_lr_sensitive": robust}
    if a > r + C3_MARGIN_PP:
        return Verdict("contradicted", checks, reasons)
    status = REPRODUCED if better and robust else PARTIAL if better or robust else NOT_REPRODUCED
    return Verdict(status, checks, reasons)


def headline_accuracy(s: Mapping[str, Any]) -> str:
    parts = []
    for arm in ("sgd", "adam", "radam"):
        v = s["best"].get(arm)
        if v and v["test_acc"] is not None:
            parts.append(f"{arm} {v['test_acc']:.2f}±{v['test_acc_std']:.2f}%@{v['lr']:g}")
    return "test acc " + ", ".join(parts) + "; spread " + ", ".join(
        f"{k} {v:.2f}" for k, v in s["spread"].items()) + " pp"
