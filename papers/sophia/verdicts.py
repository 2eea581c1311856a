"""Sophia's verdict for S1, the protocol's step claim: SophiaG's runs whose schedules end at 0.5 T (the paper's
2x) against AdamW's mean final loss at T."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.results.judges import step_claim, step_headline, step_test_record
from common.results.lm_summary import LMSummary
from common.results.verdict import Verdict

RULE = ("step claim at f = 0.5 (2x fewer steps): SophiaG runs whose schedules end at 0.5 T, at its T-tuned lr or "
        "twice it (chosen on the tuning seeds), against AdamW's mean final loss at T over eval seeds. Reproduced if "
        "SophiaG's mean at 0.5 T is at or below it; partially if above it by less than 2 SE (Welch) or SophiaG "
        "clearly needs fewer than T steps; contradicted if AdamW at T is lower than SophiaG at T (paired t-test, "
        "p < 0.05); otherwise not reproduced. Caps: an unbracketed AdamW caps a win, an unbracketed SophiaG caps "
        "a loss (inconclusive)")


@dataclass(kw_only=True)
class SophiaSummary(LMSummary):
    """The LM sweep's summary plus rho, chosen once by the win-rate rule before the sweep (``rho_probes``: each
    candidate's late win rate; empty when rho was fixed), and SophiaG's late win rate at its chosen lr."""

    rho: float
    rho_probes: dict[str, float | None]
    win_rate_after: float | None


def judge_steps(s: SophiaSummary) -> Verdict:
    return step_claim(s, "sophiag", "adamw")


def test_steps(s: SophiaSummary) -> dict[str, Any] | None:
    return step_test_record(s, "sophiag", "adamw")


def headline_steps(s: SophiaSummary) -> str:
    win = s.win_rate_after
    rho = f"; rho {s.rho:g} (late win rate {win:.2f})" if win is not None else ""
    return step_headline(s, "sophiag", "adamw") + rho
