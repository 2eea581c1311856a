"""The verdict rules for S1 (lr-stability), S2 (beats-fp) and S3 (half-steps), on the protocol's evidence.

Each rule is applied to both Stable-SPAM semantics separately. The claim's verdict is the official semantics'
(the code the paper ran); the fixed semantics' verdict is reported beside it in the checks, reasons and headline.
Adam* is the better of Adam-INT4 and Adam+GradClip-INT4 by the tuning score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.results.judges import (
    arm_eval,
    comparison_headline,
    finish,
    loss_test_record,
    step_claim,
    step_headline,
    step_test_record,
)
from common.results.lm_summary import LMSummary
from common.results.protocol import exercised, paired_test
from common.results.verdict import CONTRADICTED, INCONCLUSIVE, NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict

SEMANTICS_ARMS = {"official": "stablespam_official_int4", "fixed": "stablespam_fixed_int4"}
S2_MARGIN = 0.05  # nats: full-precision Adam lower by more than this (and significant) contradicts S2
NOT_EXERCISED = "not exercised"

RULE_S1 = ("per Stable-SPAM semantics, against Adam*: (i) stability, F(SS) < F(Adam*) failed runs over the tuning "
           "grid, or equal F and fewer loss spikes (not exercised when no run of either arm failed or spiked); "
           "(ii) SS's final loss below Adam*'s at their tuned lrs (paired t-test over eval seeds, p < 0.05). "
           "Reproduced if every exercised check holds; partially if one of two fails; not reproduced if all fail; "
           "contradicted if Adam* is lower at p < 0.05. The claim takes the official semantics' verdict")
RULE_S2 = ("per semantics: paired t-test of SS-INT4 - Adam-fp over eval seeds: reproduced if SS-INT4 is lower at "
           "p < 0.05; partially if no significant difference; not reproduced if Adam-fp is lower at p < 0.05 by "
           f"at most {S2_MARGIN} nats; contradicted if lower by more. The claim takes the official semantics' "
           "verdict")
RULE_S3 = ("per semantics, the protocol's step claim at f = 0.5: SS runs whose schedules end at 0.5 T (its T-tuned lr "
           "or twice it, chosen on the tuning seeds) against Adam*'s mean final loss at T; reproduced if at or "
           "below it; partially if within 2 SE or clearly fewer than T steps; contradicted if Adam* at T is lower "
           "at p < 0.05. The claim takes the official semantics' verdict")


@dataclass(kw_only=True)
class StableSpamSummary(LMSummary):
    """The LM sweep's summary plus S1's stability counts over each arm's tuning grid (failed runs, loss spikes,
    runs) and Adam*, the one baseline every step claim chose (None if they chose differently)."""

    failures: dict[str, int]
    spikes: dict[str, int]
    runs_per_arm: dict[str, int]
    adam_star: str | None


def _star(s: StableSpamSummary, arm: str) -> str | None:
    sh = s.short.get(arm)
    return sh.baseline if sh else s.adam_star


def rule_s1(s: StableSpamSummary, arm: str) -> Verdict:
    star = _star(s, arm)
    if star is None or s.arms[arm].lr is None or s.arms[star].lr is None:
        return Verdict(INCONCLUSIVE, {}, ["an arm diverged at every grid point"])
    f, fb, sp, spb = s.failures[arm], s.failures[star], s.spikes[arm], s.spikes[star]
    stable: bool | str = (f < fb or (f == fb and sp < spb)) if exercised(f + sp, fb + spb) else NOT_EXERCISED
    test = paired_test(arm_eval(s, arm).metrics, arm_eval(s, star).metrics)
    checks = {"fewer failures (or spikes) than Adam*": stable, "lower loss (p<0.05)": test.significant}
    reasons = [f"F(SS) = {f} vs F({star}) = {fb}; spikes {sp} vs {spb}; SS - {star} = {test.diff:+.4f} "
               f"(p = {test.p if test.p is None else format(test.p, '.3g')})"]
    live = [v for v in checks.values() if v != NOT_EXERCISED]
    if test.significant_opposite:
        status = CONTRADICTED
    else:
        misses = sum(not v for v in live)
        status = REPRODUCED if misses == 0 else NOT_REPRODUCED if misses == len(live) else PARTIAL
    return finish(status, checks, reasons, s, arm, [star])


def rule_s2(s: StableSpamSummary, arm: str) -> Verdict:
    if s.arms[arm].lr is None or s.arms["adam_fp"].lr is None:
        return Verdict(INCONCLUSIVE, {}, ["an arm diverged at every grid point"])
    test = paired_test(arm_eval(s, arm).metrics, arm_eval(s, "adam_fp").metrics)
    checks = {"lower than Adam-fp (p<0.05)": test.significant, "Adam-fp lower (p<0.05)": test.significant_opposite}
    ci = "n/a" if test.ci95 is None else f"[{test.ci95[0]:+.4f}, {test.ci95[1]:+.4f}]"
    p = "n/a" if test.p is None else f"{test.p:.3g}"
    reasons = [f"SS-INT4 - Adam-fp = {test.diff:+.4f}, 95% CI {ci}, p = {p}"]
    if test.significant:
        status = REPRODUCED
    elif not test.significant_opposite:
        status = PARTIAL
    else:
        status = CONTRADICTED if test.diff is not None and test.diff > S2_MARGIN else NOT_REPRODUCED
    return finish(status, checks, reasons, s, arm, ["adam_fp"])


def rule_s3(s: StableSpamSummary, arm: str) -> Verdict:
    star = _star(s, arm)
    if star is None:
        return Verdict(INCONCLUSIVE, {}, ["no 0.5 T runs"])
    return step_claim(s, arm, star)


def _both(s: StableSpamSummary, rule: Callable[[StableSpamSummary, str], Verdict]) -> dict[str, Verdict]:
    return {sem: rule(s, arm) for sem, arm in SEMANTICS_ARMS.items()}


def _combine(v: dict[str, Verdict]) -> Verdict:
    checks = {f"{sem}: {k}": ok for sem, verdict in v.items() for k, ok in verdict.checks.items()}
    reasons = [f"{sem} semantics: {verdict.label}; {'; '.join(verdict.reasons)}" for sem, verdict in v.items()]
    return Verdict(v["official"].status, checks, reasons, v["official"].cap)


def judge_s1(s: StableSpamSummary) -> Verdict:
    return _combine(_both(s, rule_s1))


def judge_s2(s: StableSpamSummary) -> Verdict:
    return _combine(_both(s, rule_s2))


def judge_s3(s: StableSpamSummary) -> Verdict:
    return _combine(_both(s, rule_s3))


def test_s1(s: StableSpamSummary) -> dict[str, Any] | None:
    star = _star(s, SEMANTICS_ARMS["official"])
    return None if star is None else loss_test_record(s, SEMANTICS_ARMS["official"], star)


def test_s2(s: StableSpamSummary) -> dict[str, Any] | None:
    return loss_test_record(s, SEMANTICS_ARMS["official"], "adam_fp")


def test_s3(s: StableSpamSummary) -> dict[str, Any] | None:
    star = _star(s, SEMANTICS_ARMS["official"])
    return None if star is None else step_test_record(s, SEMANTICS_ARMS["official"], star)


def _semantics_gap(s: StableSpamSummary) -> str:
    off, fix = SEMANTICS_ARMS["official"], SEMANTICS_ARMS["fixed"]
    t = loss_test_record(s, off, fix)
    return "" if not t or t["diff"] is None else f"; official - fixed = {t['diff']:+.4f} (p {t['p']})"


def headline_s1(s: StableSpamSummary) -> str:
    v = _both(s, rule_s1)
    parts = []
    for sem, arm in SEMANTICS_ARMS.items():
        star = _star(s, arm)
        if star is None:
            parts.append(f"{sem}: {v[sem].label}")
            continue
        parts.append(f"{sem}: {v[sem].label} (F {s.failures[arm]}/{s.runs_per_arm[arm]} vs "
                     f"{s.failures[star]}/{s.runs_per_arm[star]}, spikes {s.spikes[arm]} vs "
                     f"{s.spikes[star]}; {comparison_headline(s, arm, [star])})")
    return f"vs {_star(s, SEMANTICS_ARMS['official'])}: " + "; ".join(parts) + _semantics_gap(s)


def headline_s2(s: StableSpamSummary) -> str:
    v = _both(s, rule_s2)
    return "; ".join(f"{sem}: {v[sem].label} ({comparison_headline(s, arm, ['adam_fp'])})"
                     for sem, arm in SEMANTICS_ARMS.items())


def headline_s3(s: StableSpamSummary) -> str:
    v = _both(s, rule_s3)
    parts = []
    for sem, arm in SEMANTICS_ARMS.items():
        star = _star(s, arm)
        parts.append(f"{sem}: {v[sem].label}" + (f" ({step_headline(s, arm, star)})" if star else ""))
    return "; ".join(parts)
