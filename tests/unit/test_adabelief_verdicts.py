"""AdaBelief's verdict rules on hand-made protocol summaries: paired tests over eval seeds, caps for unbracketed
tuning and too few seeds, every branch reachable."""

import pytest

from common.results.sweep import ArmSummary
from papers.adabelief.verdicts import (
    GeneralizationArm,
    GeneralizationSummary,
    ToySummary,
    judge_generalization,
    judge_toy,
)
from papers.adabelief.verdicts import test_generalization as generalization_test_record
from papers.adabelief.verdicts import test_toy as toy_test_record

TUNE, EVAL = [1000, 1001], [0, 1, 2, 3, 4]
JITTER = (0.0, 0.01, -0.01, 0.02, -0.02)


def _arm(finals, lr=1e-3, bracketed=True) -> ArmSummary:
    finite = [x for x in finals if x is not None]
    mean = sum(finite) / len(finite) if finite else None
    return ArmSummary(lr=lr if finite else None, bracketed=bracketed,
                      unbracketed_edge=None if bracketed else "high", extensions={"low": 0, "high": 0}, grid={},
                      finals=list(finals), mean=mean, sd=0.01, se=0.005, diverged=0, n=len(finals))


def _toy(ab, adam, sgd, wins=2, *, adam_bracketed=True, ab_bracketed=True, tune=TUNE):
    def finals(d, sign):
        return [None] * 5 if d is None else [d * (1 + sign * j) for j in JITTER]
    return ToySummary(arms={"adabelief": _arm(finals(ab, 1), bracketed=ab_bracketed),
                            "adam": _arm(finals(adam, -1), bracketed=adam_bracketed),
                            "sgd": _arm(finals(sgd, 1), lr=1e-4)},
                      adabelief_closer_at=wins, shared_lrs=6, steps=1000, tuning_seeds=tune, eval_seeds=EVAL,
                      optimum=[3.0, 0.5], equal_lr={})


@pytest.mark.parametrize("args,status", [
    ((0.05, 0.2, 4.0), "reproduced"),
    ((0.05, 0.08, 4.0), "partially reproduced"),      # closer at p < 0.05, not half of Adam's
    ((0.5, 0.8, 4.0), "partially reproduced"),        # closer, not reached
    ((0.9, 0.8, 4.0, 4), "contradicted"),             # Adam closer at p < 0.05 beats the equal-lr wins
    ((0.8, 0.8, 4.0), "not reproduced"),              # no detectable difference
    ((0.8, 0.8, 4.0, 4), "partially reproduced"),     # ... but closer than Adam at 4 of 6 equal lrs
])
def test_toy_rule(args, status):
    assert judge_toy(_toy(*args)).status == status


def test_toy_rival_is_the_closer_baseline_and_the_test_record_says_so():
    t = toy_test_record(_toy(0.05, 0.2, 0.1))
    assert t["rival"] == "sgd" and t["kind"] == "paired-t" and t["n"] == 5 and t["p"] < 0.05


def test_toy_caps():
    v = judge_toy(_toy(0.05, 0.2, 4.0, adam_bracketed=False))
    assert v.status == "inconclusive" and v.cap == "baseline not bracketed (adam)"
    v = judge_toy(_toy(0.9, 0.5, 4.0, ab_bracketed=False))
    assert v.status == "inconclusive" and v.cap == "method not bracketed (adabelief)"
    v = judge_toy(_toy(None, 0.8, 4.0, ab_bracketed=False))  # AdaBelief diverged at every lr
    assert v.status == "inconclusive" and v.cap.startswith("method not bracketed")
    v = judge_toy(_toy(0.05, 0.2, 4.0, tune=[1000]))
    assert v.status == "inconclusive" and v.cap.startswith("too few seeds")


def _gen(ab_acc, ab_loss, adam_acc, adam_loss, sgd_acc, *, bracketed=True, tune=TUNE):
    def arm(acc, loss, k):
        accs = [acc + 0.05 * j * k for j in range(-2, 3)]
        losses = [loss * (1 + 0.01 * j * k) for j in range(-2, 3)]
        return GeneralizationArm.extending(_arm([100 - x for x in accs], bracketed=bracketed), test_acc=accs,
                                           train_loss_at_speed=losses, test_acc_mean=acc, test_acc_sd=0.08,
                                           train_loss_at_speed_mean=loss)
    return GeneralizationSummary(arms={"adabelief": arm(ab_acc, ab_loss, 1), "adam": arm(adam_acc, adam_loss, -1),
                                       "sgd": arm(sgd_acc, 0.5, 1)},
                                 speed_at=0.5, tuning_seeds=tune, eval_seeds=EVAL)


@pytest.mark.parametrize("args,status", [
    ((90.0, 0.30, 89.5, 0.30, 90.1), "reproduced"),
    ((89.0, 0.30, 89.5, 0.30, 90.1), "partially reproduced"),   # fast, not general
    ((90.0, 0.40, 89.5, 0.30, 90.1), "partially reproduced"),   # general, not fast
    ((89.2, 0.35, 89.5, 0.30, 90.1), "not reproduced"),
    ((88.0, 0.40, 89.5, 0.30, 90.1), "contradicted"),
])
def test_generalization_rule(args, status):
    v = judge_generalization(_gen(*args))
    assert v.status == status
    assert v.checks["eval_runs_diverged"] == "not exercised"  # no arm diverged: the check cannot fire


def test_generalization_caps_and_test_record():
    v = judge_generalization(_gen(90.0, 0.30, 89.5, 0.30, 90.1, bracketed=False))
    assert v.status == "inconclusive" and v.cap.startswith("baseline not bracketed")
    v = judge_generalization(_gen(90.0, 0.30, 89.5, 0.30, 90.1, tune=[1000]))
    assert v.status == "inconclusive" and v.cap.startswith("too few seeds")
    t = generalization_test_record(_gen(90.0, 0.30, 89.5, 0.30, 90.1))
    assert set(t["tests"]) == {"a_loss_vs_1.1x_adam", "b_acc_vs_adam", "b_acc_vs_sgd_minus_0.2pp",
                               "contra_acc_below_adam_minus_0.5pp", "contra_loss_above_1.25x_adam"}
    assert t["tests"]["b_acc_vs_adam"]["p"] < 0.05 and t["tests"]["b_acc_vs_adam"]["n"] == 5


def test_generalization_diverged_eval_run_is_a_check_and_inconclusive_when_an_arm_failed_everywhere():
    s = _gen(90.0, 0.3, 89.5, 0.3, 90.1)
    s.arms["adam"].diverged = 1
    assert judge_generalization(s).checks["eval_runs_diverged"] == 1
    s.arms["adam"].lr = None
    assert judge_generalization(s).status == "inconclusive"
