"""SOAP's verdict for P1: the protocol's step claim against AdamW (SOAP's runs ending at 0.6 T against AdamW's
mean final loss at T), plus SOAP's final loss against Shampoo's (paired test at T)."""

from __future__ import annotations

from typing import Any

from common.results.judges import finish, loss_test_record, step_claim, step_headline, step_test_record
from common.results.lm_summary import LMSummary
from common.results.protocol import loss_verdict, paired_test
from common.results.verdict import PARTIAL, REPRODUCED, Verdict

RULE = ("step claim at f = 0.6 (40% fewer iterations): SOAP runs whose schedules end at 0.6 T, at its T-tuned lr or "
        "twice it (chosen on the tuning seeds), against AdamW's mean final loss at T. Reproduced if SOAP's mean "
        "at 0.6 T is at or below it and SOAP's final loss at T is below Shampoo's (paired t-test, p < 0.05); "
        "partially if only one of the two holds, or SOAP at 0.6 T is within 2 SE of the target, or it needs "
        "clearly fewer than T steps; contradicted if AdamW at T is lower than SOAP at T (p < 0.05); otherwise not "
        "reproduced. Caps: an unbracketed baseline caps a win, an unbracketed SOAP caps a loss (inconclusive)")


def _beats_shampoo(s: LMSummary) -> tuple[bool, str]:
    from common.results.judges import arm_eval

    if s.arms["shampoo"].lr is None:
        return True, "Shampoo diverged at every grid point"
    test = paired_test(arm_eval(s, "soap").metrics, arm_eval(s, "shampoo").metrics)
    status, reasons = loss_verdict(test)
    return status == REPRODUCED, "vs Shampoo: " + reasons[0]


def judge_iterations(s: LMSummary) -> Verdict:
    base = step_claim(s, "soap", "adamw")
    beats, why = _beats_shampoo(s)
    status = base.status
    if status == REPRODUCED and not beats:
        status = PARTIAL
    if base.cap:  # the step claim's own cap stands
        return Verdict(base.status, {**base.checks, "beats_shampoo": beats}, [*base.reasons, why], base.cap)
    return finish(status, {**base.checks, "beats_shampoo": beats}, [*base.reasons, why], s, "soap",
                  ["adamw", "shampoo"] if status in (REPRODUCED, PARTIAL) and beats else ["adamw"])


def test_iterations(s: LMSummary) -> dict[str, Any] | None:
    t = step_test_record(s, "soap", "adamw")
    if t is not None:
        t["vs_shampoo"] = loss_test_record(s, "soap", "shampoo")
    return t


def headline_iterations(s: LMSummary) -> str:
    return step_headline(s, "soap", "adamw") + "; " + _beats_shampoo(s)[1]
