"""The verdict rules of spec §6 for S1 (lr-stability), S2 (beats-fp) and S3 (half-steps).

Each rule is applied to both Stable-SPAM semantics separately. The claim's verdict is the official semantics'
(the code the paper ran); the fixed semantics' verdict is reported beside it in the checks, reasons and headline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from common.results.stats import grid_edges
from common.results.verdict import CONTRADICTED, INCONCLUSIVE, NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict

S2_MARGIN = 0.05  # nats: below -0.05 (and -2 SE) full-precision Adam is clearly better: contradicted
R_FULL, R_PARTIAL = 1.8, 1.1


def rule_s1(c: Mapping[str, Any]) -> Verdict:
    d, se = c["delta"], c["se"]
    stable = c["failures"] < c["failures_baseline"] or (
        c["failures"] == c["failures_baseline"] and c["spikes"] < c["spikes_baseline"])
    better = d > 2 * se
    checks = {"fewer failures (or spikes) than Adam*": stable, "delta>2SE": better}
    reasons = [f"F(SS) = {c['failures']} vs F({c['baseline']}) = {c['failures_baseline']}; spikes {c['spikes']} vs "
               f"{c['spikes_baseline']}; delta = L_{c['baseline']} - L_SS = {d:+.4f}, 2 SE = {2 * se:.4f}"]
    if d < -2 * se:
        return Verdict(CONTRADICTED, checks, reasons)
    status = REPRODUCED if stable and better else PARTIAL if stable or better else NOT_REPRODUCED
    return Verdict(status, checks, reasons)


def rule_s2(c: Mapping[str, Any]) -> Verdict:
    d, se = c["delta"], c["se"]
    checks = {"delta2>2SE": d > 2 * se, "|delta2|<=2SE": abs(d) <= 2 * se}
    reasons = [f"delta2 = L_adam_fp - L_SS-INT4 = {d:+.4f}, 2 SE = {2 * se:.4f}"]
    if d > 2 * se:
        return Verdict(REPRODUCED, checks, reasons)
    if abs(d) <= 2 * se:
        return Verdict(PARTIAL, checks, reasons)
    if d < -S2_MARGIN:
        return Verdict(CONTRADICTED, checks, reasons)
    return Verdict(NOT_REPRODUCED, checks, reasons)


def rule_s3(c: Mapping[str, Any]) -> Verdict:
    r, d, se = c["ratio"], c["delta"], c["se"]
    checks = {f"R>={R_FULL}": r is not None and r >= R_FULL, f"R>={R_PARTIAL}": r is not None and r >= R_PARTIAL}
    hit = f"hits {c['baseline']}'s final loss {c['target']:.4f} at step {c['hit_step']}" if c["hit_step"] else \
        f"never reaches {c['baseline']}'s final loss {c['target']:.4f}"
    reasons = [f"R = {'n/a' if r is None else f'{r:.2f}'} (SS {hit}); final delta = {d:+.4f}, 2 SE = {2 * se:.4f}"]
    if d < -2 * se:
        return Verdict(CONTRADICTED, checks, reasons)
    if r is not None and r >= R_FULL:
        return Verdict(REPRODUCED, checks, reasons)
    return Verdict(PARTIAL if r is not None and r >= R_PARTIAL else NOT_REPRODUCED, checks, reasons)


def _both(s: Mapping[str, Any], claim: str, rule: Callable[[Mapping[str, Any]], Verdict]) -> dict[str, Verdict]:
    out = {}
    for sem in ("official", "fixed"):
        c = s.get(f"{claim}_{sem}")
        out[sem] = rule(c) if c else Verdict(INCONCLUSIVE, {}, [f"{sem}: an arm failed at every lr"])
    return out


def _combine(v: dict[str, Verdict]) -> Verdict:
    checks = {f"{sem}: {k}": ok for sem, verdict in v.items() for k, ok in verdict.checks.items()}
    reasons = [f"{sem} semantics: {verdict.status}; {'; '.join(verdict.reasons)}" for sem, verdict in v.items()]
    return Verdict(v["official"].status, checks, reasons)


def judge_s1(s: Mapping[str, Any]) -> Verdict:
    return _combine(_both(s, "s1", rule_s1))


def judge_s2(s: Mapping[str, Any]) -> Verdict:
    return _combine(_both(s, "s2", rule_s2))


def judge_s3(s: Mapping[str, Any]) -> Verdict:
    return _combine(_both(s, "s3", rule_s3))


def _edges(s: Mapping[str, Any]) -> str:
    edges = grid_edges(s)
    return f"; best lr at the grid edge for {', '.join(f'{a} ({e})' for a, e in edges.items())}" if edges else ""


def _semantics_gap(s: Mapping[str, Any]) -> str:
    c = s.get("official_vs_fixed")
    return "" if not c else f"; official - fixed = {c['delta']:+.4f} (SE {c['se']:.4f})"


def headline_s1(s: Mapping[str, Any]) -> str:
    v = _both(s, "s1", rule_s1)
    parts = []
    for sem in ("official", "fixed"):
        c = s.get(f"s1_{sem}")
        if c:
            parts.append(f"{sem}: {v[sem].status} (F {c['failures']}/{s['runs_per_arm'][c['arm']]} vs "
                         f"{c['failures_baseline']}/{s['runs_per_arm'][c['baseline']]}, spikes {c['spikes']} vs "
                         f"{c['spikes_baseline']}, delta {c['delta']:+.4f} SE {c['se']:.4f})")
        else:
            parts.append(f"{sem}: {v[sem].status}")
    return f"vs {s.get('adam_star')}: " + "; ".join(parts) + _semantics_gap(s) + _edges(s)


def headline_s2(s: Mapping[str, Any]) -> str:
    v = _both(s, "s2", rule_s2)
    fp = s["best"].get("adam_fp", {})
    parts = [f"{sem}: {v[sem].status}" + (f" (delta2 {c['delta']:+.4f}, SE {c['se']:.4f})" if (c := s.get(
        f"s2_{sem}")) else "") for sem in ("official", "fixed")]
    base = f"Adam fp {fp['final_val_loss']:.4f}; " if fp.get("final_val_loss") is not None else ""
    return base + "; ".join(parts)


def headline_s3(s: Mapping[str, Any]) -> str:
    v = _both(s, "s3", rule_s3)
    parts = []
    for sem in ("official", "fixed"):
        c = s.get(f"s3_{sem}")
        r = "n/a" if not c or c["ratio"] is None else f"{c['ratio']:.2f}"
        parts.append(f"{sem}: {v[sem].status} (R {r}" + (f", delta {c['delta']:+.4f} SE {c['se']:.4f})" if c else ")"))
    return f"vs {s.get('adam_star')}: " + "; ".join(parts)
