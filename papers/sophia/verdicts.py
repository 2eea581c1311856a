"""Sophia's verdict for S1, the protocol's step claim: SophiaG's runs whose schedules end at 0.5 T (the paper's
2x) against AdamW's mean final loss at T."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.results.judges import step_claim, step_headline, step_test_record
from common.results.verdict import Verdict

RULE = ("step claim at f = 0.5 (2x fewer steps): SophiaG runs whose schedules end at 0.5 T, at its T-tuned lr or "
        "twice it (chosen on the tuning seeds), against AdamW's mean final loss at T over eval seeds. Reproduced if "
        "SophiaG's mean at 0.5 T is at or below it; partially if above it by less than 2 SE (Welch) or SophiaG "
        "clearly needs fewer than T steps; contradicted if AdamW at T is lower than SophiaG at T (paired t-test, "
        "p < 0.05); otherwise not reproduced. Caps: an unbracketed AdamW caps a win, an unbracketed SophiaG caps "
        "a loss (inconclusive)")


def judge_steps(s: Mapping[str, Any]) -> Verdict:
    return step_claim(s, "sophiag", "adamw")


def test_steps(s: Mapping[str, Any]) -> dict[str, Any] | None:
    return step_test_record(s, "sophiag", "adamw")


def headline_steps(s: Mapping[str, Any]) -> str:
    win = s.get("win_rate_after")
    rho = f"; rho {s['rho']:g} (late win rate {win:.2f})" if s.get("rho") is not None and win is not None else ""
    return step_headline(s, "sophiag", "adamw") + rho
