"""Sophia's verdict rule (spec §6), applied to the measured summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.results.verdict import CONTRADICTED, NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict

R_FULL = 1.8
R_PARTIAL = 1.1


def judge_steps(s: Mapping[str, Any]) -> Verdict:
    if "target" not in s:
        return Verdict("inconclusive", {}, ["AdamW or SophiaG failed at every learning rate"])
    r, gap, se = s["ratio"], s["final_gap"], s["se"]
    sophia, adamw = s["best"]["sophiag"]["final_val_loss"], s["best"]["adamw"]["final_val_loss"]
    reasons = [f"R = T_total / T_hit = {s['steps']} / {s['sophia_hit_step']} = {r:.3g}" if r else
               f"SophiaG's seed-mean val loss never reaches AdamW's final {s['target']:.4f}",
               f"final val loss SophiaG {sophia:.4f} vs AdamW {adamw:.4f} (gap {gap:+.4f}, 2 SE = {2 * se:.4f})"]
    checks = {f"R>={R_FULL}": bool(r and r >= R_FULL), f"R>={R_PARTIAL}": bool(r and r >= R_PARTIAL)}
    if sophia > adamw + 2 * se:
        return Verdict(CONTRADICTED, checks, reasons)
    if r and r >= R_FULL:
        return Verdict(REPRODUCED, checks, reasons)
    if r and r >= R_PARTIAL:
        return Verdict(PARTIAL, checks, reasons)
    return Verdict(NOT_REPRODUCED, checks, reasons)


def headline_steps(s: Mapping[str, Any]) -> str:
    if "target" not in s:
        return "no comparison (an arm failed at every lr)"
    b = s["best"]
    r = f"R = {s['ratio']:.2f}" if s["ratio"] else "SophiaG never reached AdamW's final loss (R < 1)"
    wall = s.get("wallclock_ratio")
    win = s.get("win_rate_after")
    tuned = f"; rho {s['rho']:g} (late win rate {win:.2f})" if "rho" in s and win is not None else ""
    return (f"{r}; wall-clock ratio {wall:.2f}" if wall else r) + tuned + (
        f"; final val loss SophiaG {b['sophiag']['final_val_loss']:.4f}±{b['sophiag']['final_val_loss_sd']:.4f}"
        f"@{b['sophiag']['lr']:g} vs AdamW {b['adamw']['final_val_loss']:.4f}±{b['adamw']['final_val_loss_sd']:.4f}"
        f"@{b['adamw']['lr']:g}; SophiaG step-time overhead {100 * s.get('step_time_overhead', 0):+.0f}%")
