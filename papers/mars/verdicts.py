"""MARS's verdict rule (spec §6), for M1 (vs AdamW) and M2 (vs its own gamma=0 control)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.results.stats import grid_edges
from common.results.verdict import CONTRADICTED, NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict

MIN_GAP = 0.01  # nats


def _judge(cmp: Mapping[str, Any] | None, label: str) -> Verdict:
    if cmp is None:
        return Verdict("inconclusive", {}, [f"MARS or {label} failed at every learning rate"])
    d, se = cmp["delta"], cmp["se"]
    big, clear = d > MIN_GAP, d > 2 * se
    checks = {"delta>2SE": clear, f"delta>{MIN_GAP}": big}
    reasons = [f"delta = L_{cmp['baseline']} - L_MARS = {d:+.4f} nats, 2 SE = {2 * se:.4f}"]
    if d < -2 * se:
        return Verdict(CONTRADICTED, checks, reasons)
    if clear and big:
        return Verdict(REPRODUCED, checks, reasons)
    return Verdict(PARTIAL if d > 0 else NOT_REPRODUCED, checks, reasons)


def judge_m1(s: Mapping[str, Any]) -> Verdict:
    return _judge(s.get("m1"), "AdamW")


def judge_m2(s: Mapping[str, Any]) -> Verdict:
    return _judge(s.get("m2"), "MARS gamma=0")


def _arms(s: Mapping[str, Any]) -> str:
    return ", ".join(f"{a} {v['final_val_loss']:.4f}±{v['final_val_loss_sd']:.4f}@{v['lr']:g}"
                     for a, v in s["best"].items() if v["final_val_loss"] is not None)


def _headline(s: Mapping[str, Any], name: str) -> str:
    cmp = s.get(name)
    if cmp is None:
        return "no comparison (an arm failed at every lr)"
    tokens = cmp["tokens_to_baseline_final"]
    reach = (f"MARS reaches {cmp['baseline']}'s final loss after {tokens:,} of {cmp['baseline_tokens']:,} tokens"
             if tokens else f"MARS never reaches {cmp['baseline']}'s final loss")
    edges = grid_edges(s)
    edge = f"; best lr at the grid edge for {', '.join(f'{a} ({e})' for a, e in edges.items())}" if edges else ""
    return f"delta {cmp['delta']:+.4f} (SE {cmp['se']:.4f}); {reach}; final val loss {_arms(s)}{edge}"


def headline_m1(s: Mapping[str, Any]) -> str:
    return _headline(s, "m1")


def headline_m2(s: Mapping[str, Any]) -> str:
    return _headline(s, "m2")
