"""AdaBelief's verdict rules on hand-made summaries: every branch reachable."""

import pytest

from papers.adabelief.verdicts import judge_generalization, judge_toy


def _toy(ab, adam, sgd, wins=2):
    return {"best": {"adabelief": {"distance": ab}, "adam": {"distance": adam}, "sgd": {"distance": sgd}},
            "adabelief_closer_at": wins, "shared_lrs": 6, "steps": 1000}


@pytest.mark.parametrize("args,status", [
    ((0.05, 0.2, 4.0), "reproduced"),
    ((0.05, 0.08, 4.0), "partially reproduced"),      # reached but not half of Adam's
    ((0.5, 0.8, 4.0), "partially reproduced"),        # closer, not reached
    ((0.9, 0.8, 4.0, 4), "partially reproduced"),     # wins at 4 of 6 lrs
    ((0.9, 0.8, 4.0), "not reproduced"),
    ((2.0, 0.8, None), "contradicted"),
    ((None, 0.8, 4.0), "contradicted"),               # AdaBelief diverged at every lr
])
def test_toy_rule(args, status):
    assert judge_toy(_toy(*args)).status == status


def _gen(ab_acc, ab_loss, adam_acc, adam_loss, sgd_acc):
    def arm(acc, loss):
        return {"test_acc": acc, "train_loss_at_speed": loss, "test_acc_std": 0.0, "lr": 1e-3}

    return {"best": {"adabelief": arm(ab_acc, ab_loss), "adam": arm(adam_acc, adam_loss), "sgd": arm(sgd_acc, 0.5)},
            "speed_at": 0.5}


@pytest.mark.parametrize("args,status", [
    ((90.0, 0.30, 89.5, 0.30, 90.1), "reproduced"),
    ((89.0, 0.30, 89.5, 0.30, 90.1), "partially reproduced"),   # fast, not general
    ((90.0, 0.40, 89.5, 0.30, 90.1), "partially reproduced"),   # general, not fast
    ((89.2, 0.35, 89.5, 0.30, 90.1), "not reproduced"),
    ((88.0, 0.40, 89.5, 0.30, 90.1), "contradicted"),
])
def test_generalization_rule(args, status):
    assert judge_generalization(_gen(*args)).status == status


def test_generalization_inconclusive_when_an_arm_failed_everywhere():
    s = _gen(90.0, 0.3, 89.5, 0.3, 90.1)
    s["best"]["adam"]["test_acc"] = None
    assert judge_generalization(s).status == "inconclusive"
