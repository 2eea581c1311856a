"""SOAP's verdict rule (spec §6) for P1, applied to the measured summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.results.stats import grid_edges
from common.results.verdict import CONTRADICTED, NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict

FULL = 0.30
PARTIAL_AT = 0.10


def judge_iterations(s: Mapping[str, Any]) -> Verdict:
    a, sh = s.get("vs_adamw"), s.get("vs_shampoo")
    if a is None:
        return Verdict("inconclusive", {}, ["SOAP or AdamW failed at every learning rate"])
    i = a["iteration_reduction"]
    beats_shampoo = sh is not None and sh["final_gap"] > 0
    reasons = [f"iteration reduction vs AdamW I = 1 - T_hit/T = {'never hit' if i is None else format(i, '.3f')}",
               f"final loss gap AdamW - SOAP {a['final_gap']:+.4f} (2 SE {2 * a['se']:.4f})",
               "SOAP's final loss below Shampoo's: " + ("n/a" if sh is None else
                                                        f"{beats_shampoo} (gap {sh['final_gap']:+.4f})")]
    checks = {f"I>={FULL}": i is not None and i >= FULL, "beats_shampoo": beats_shampoo}
    if -a["final_gap"] > 2 * a["se"]:
        return Verdict(CONTRADICTED, checks, reasons)
    if i is not None and i >= FULL and beats_shampoo:
        return Verdict(REPRODUCED, checks, reasons)
    if i is not None and i >= PARTIAL_AT:
        return Verdict(PARTIAL, checks, reasons)
    return Verdict(NOT_REPRODUCED, checks, reasons)


def headline_iterations(s: Mapping[str, Any]) -> str:
    parts = []
    for base in ("adamw", "shampoo"):
        c = s.get(f"vs_{base}")
        if c is None:
            continue
        i = c["iteration_reduction"]
        w = c.get("wallclock_reduction")
        parts.append(f"vs {base}: {'never reaches its final loss' if i is None else f'{100 * i:.0f}% fewer steps'}"
                     + (f", {100 * w:.0f}% less training time" if w is not None else ""))
    finals = ", ".join(f"{a} {v['final_val_loss']:.4f}±{v['final_val_loss_sd']:.4f}@{v['lr']:g}"
                       for a, v in s["best"].items() if v["final_val_loss"] is not None)
    edges = grid_edges(s)
    edge = f"; best lr at the grid edge for {', '.join(f'{a} ({e})' for a, e in edges.items())}" if edges else ""
    return "; ".join(parts) + f"; final val loss {finals}{edge}"
