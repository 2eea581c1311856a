"""MARS's verdict rule for M1 (vs AdamW) and M2 (vs its own gamma=0 control): the protocol's paired test of
MARS - baseline over eval seeds; a significant gain below 0.01 nats counts as partial (too small to matter)."""

from __future__ import annotations

from typing import Any

from common.results.judges import comparison_headline, loss_claim, loss_test_record
from common.results.lm_summary import LMSummary
from common.results.verdict import Verdict

MIN_GAP = 0.01  # nats
RULE = (f"paired one-sided t-test of MARS - baseline over eval seeds at each arm's tuned lr: reproduced if "
        f"p < 0.05 and the gain exceeds {MIN_GAP} nats; partially if p < 0.05 with a smaller gain; contradicted if "
        "the baseline is lower at p < 0.05; otherwise not reproduced. A win over an unbracketed baseline, or a loss "
        "of an unbracketed MARS, is inconclusive")


def judge_m1(s: LMSummary) -> Verdict:
    return loss_claim(s, "mars", "adamw", min_gap=MIN_GAP)


def judge_m2(s: LMSummary) -> Verdict:
    return loss_claim(s, "mars", "mars_gamma0", min_gap=MIN_GAP)


def test_m1(s: LMSummary) -> dict[str, Any] | None:
    return loss_test_record(s, "mars", "adamw")


def test_m2(s: LMSummary) -> dict[str, Any] | None:
    return loss_test_record(s, "mars", "mars_gamma0")


def headline_m1(s: LMSummary) -> str:
    return comparison_headline(s, "mars", ["adamw"])


def headline_m2(s: LMSummary) -> str:
    return comparison_headline(s, "mars", ["mars_gamma0"])
