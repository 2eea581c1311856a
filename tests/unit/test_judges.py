"""The shared verdict rules on synthetic summaries: loss claims, step claims and the protocol's caps
(``pytest -k protocol`` selects them)."""

from common.results.judges import loss_claim, step_claim
from common.results.verdict import CONTRADICTED, INCONCLUSIVE, NOT_REPRODUCED, PARTIAL, REPRODUCED
from tests.summaries import arm, short, summary

BASE = [3.00, 3.10, 2.95, 3.05]
BETTER = [2.90, 3.01, 2.84, 2.96]


def test_protocol_loss_claim_reproduced_contradicted_and_too_small():
    assert loss_claim(summary({"m": arm(BETTER), "b": arm(BASE)}), "m", "b").status == REPRODUCED
    assert loss_claim(summary({"m": arm(BASE), "b": arm(BETTER)}), "m", "b").status == CONTRADICTED
    v = loss_claim(summary({"m": arm(BETTER), "b": arm(BASE)}), "m", "b", min_gap=0.5)
    assert v.status == PARTIAL and v.checks["gap>0.5"] is False
    noisy = summary({"m": arm([3.0, 3.2, 2.8, 3.1]), "b": arm([3.1, 2.9, 3.0, 3.05])})
    assert loss_claim(noisy, "m", "b").status == NOT_REPRODUCED


def test_protocol_loss_claim_caps():
    v = loss_claim(summary({"m": arm(BETTER), "b": arm(BASE, bracketed=False)}), "m", "b")
    assert (v.status, v.cap) == (INCONCLUSIVE, "baseline not bracketed (b)")
    v = loss_claim(summary({"m": arm(BASE, bracketed=False), "b": arm(BETTER)}), "m", "b")
    assert (v.status, v.cap) == (INCONCLUSIVE, "method not bracketed (m)")
    v = loss_claim(summary({"m": arm([2.90, 3.01, 2.84, None, 2.95]), "b": arm(BASE + [3.0])}), "m", "b")
    assert (v.status, v.cap) == (PARTIAL, "unstable at its chosen lr")
    v = loss_claim(summary({"m": arm(BETTER), "b": arm(BASE)}, n_tuning=1), "m", "b")
    assert v.status == INCONCLUSIVE and v.cap.startswith("too few seeds")
    assert loss_claim(summary({"m": arm([None] * 4, lr=None), "b": arm(BASE)}), "m", "b").status == INCONCLUSIVE


def test_protocol_step_claim_from_runs_that_end_at_fT():
    target = [2.00, 2.02, 1.98, 2.00]
    at_T = [1.90, 1.92, 1.88, 1.91]
    s = summary({"m": arm(at_T), "b": arm(target)}, short={"m": short([1.99, 2.0, 1.97, 1.99], f=0.5, baseline="b")})
    assert step_claim(s, "m", "b").status == REPRODUCED
    s.short["m"] = short([2.3, 2.32, 2.28, 2.31], f=0.5, baseline="b")
    assert step_claim(s, "m", "b").status == NOT_REPRODUCED
    s = summary({"m": arm([2.1, 2.12, 2.09, 2.11]), "b": arm(target)},
                short={"m": short([2.3, 2.32, 2.28, 2.31], f=0.5, baseline="b")})
    assert step_claim(s, "m", "b").status == CONTRADICTED
    s = summary({"m": arm(at_T), "b": arm(target, bracketed=False)},
                short={"m": short([1.99, 2.0, 1.97, 1.99], f=0.5, baseline="b")})
    assert step_claim(s, "m", "b").cap == "baseline not bracketed (b)"
