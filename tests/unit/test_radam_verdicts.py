"""The RAdam verdict rules on hand-made summaries: every branch of every rule is reachable."""

import pytest

from papers.radam.verdicts import (
    AccuracySummary,
    BestAccuracy,
    MuRatios,
    RobustnessSummary,
    VarianceSummary,
    judge_accuracy,
    judge_lr_robustness,
    judge_variance,
)
from tests.summaries import arm, summary


def _c1(adam, rect):
    per_mu = {str(i): MuRatios(a, 0.0, r, 0.0, 3) for i, (a, r) in enumerate(zip(adam, rect, strict=True))}
    return VarianceSummary.of([0.9, 0.99], [20, 100], [5000, 6000], per_mu)


@pytest.mark.parametrize("adam,rect,status", [
    ([40, 45], [0.9, 1.1], "reproduced"),
    ([40, 5], [0.9, 1.1], "partially reproduced"),
    ([40, 45], [0.9, 3.0], "partially reproduced"),
    ([4, 5], [3.0, 3.0], "not reproduced"),
    ([4, 5], [3.0, 6.0], "contradicted"),
])
def test_c1_rule(adam, rect, status):
    v = judge_variance(_c1(adam, rect))
    assert v.status == status
    assert v.cap is None  # a simulation: nothing is tuned, so no protocol cap applies


def test_c1_judges_a_record_as_it_judges_the_run():
    """The claim reads a record's plain summary into the typed one: same verdict, same headline."""
    from papers.radam import PAPER

    typed = _c1([40, 5], [0.9, 1.1])
    plain = typed.to_record()
    assert isinstance(plain["per_mu"]["0"], dict) and VarianceSummary.from_record(plain) == typed
    claim = PAPER.claim("c1")
    assert claim.judge(plain).to_dict() == claim.judge(typed).to_dict()
    assert claim.headline(plain) == claim.headline(typed)


def test_c1_records_that_nothing_is_tuned(tmp_path):
    from pathlib import Path

    from omegaconf import OmegaConf

    from common.results.context import RunContext
    from papers.radam.variance import run_variance

    cfg = OmegaConf.load(Path(__file__).resolve().parents[2] / "papers/radam/configs/smoke.yaml").claims.c1
    m = run_variance(cfg, RunContext(out_dir=tmp_path, preset="smoke", seeds=[0], trainer={}))
    assert m.protocol["kind"] == "no tuning" and "simulation" in m.protocol["reason"]


def _c2(radam_shift, s_radam, s_adam, f_radam, f_warm, f_adam):
    warm = [1.50, 1.52, 1.49, 1.51]
    radam = [x + radam_shift + d for x, d in zip(warm, [0.001, -0.001, 0.0, 0.0005], strict=True)]
    return summary({"radam": arm(radam), "adam_warmup": arm(warm), "adam": arm([2.0, 2.01, 1.99, 2.0])},
                   spread={"radam": s_radam, "adam": s_adam, "adam_warmup": 0.1},
                   failed={"radam": f_radam, "adam_warmup": f_warm, "adam": f_adam}, runs_per_arm=15,
                   mean_final={a: {"0.001": 1.5, "0.01": 1.6} for a in ("radam", "adam_warmup", "adam")},
                   failed_value=None, kind=RobustnessSummary)


@pytest.mark.parametrize("args,status", [
    ((0.0, 0.1, 0.4, 0, 1, 3), "reproduced"),
    ((0.1, 0.1, 0.4, 0, 1, 3), "partially reproduced"),   # (a) fails: RAdam clearly worse than Adam+warmup
    ((0.1, 0.3, 0.4, 0, 1, 3), "not reproduced"),         # (a), (b) fail
    ((0.1, 0.5, 0.4, 4, 0, 3), "contradicted"),
])
def test_c2_rule(args, status):
    v = judge_lr_robustness(_c2(*args))
    assert v.status == status
    assert len(v.reasons) == 3


def test_c2_failure_check_not_exercised_when_no_run_fails():
    v = judge_lr_robustness(_c2(0.1, 0.1, 0.4, 0, 0, 0))
    assert v.checks["c_failures_not_more"] == "not exercised"
    assert v.status == "partially reproduced"  # (a) fails, (b) holds, (c) counts neither way


def test_c2_inconclusive_when_every_lr_failed():
    s = _c2(0.0, 0.1, 0.4, 0, 0, 0)
    s.arms["radam"].lr = None
    assert judge_lr_robustness(s).status == "inconclusive"


def _c3(r, a, sr, sa):
    best = {name: BestAccuracy(lr=0.1, test_acc=acc, test_acc_std=0.1, n=4)
            for name, acc in (("radam", r), ("adam", a))}
    return AccuracySummary(tuning_seeds=[1000, 1001], eval_seeds=[0, 1, 2, 3], grid={},
                           arms={"radam": arm([1.0] * 4), "adam": arm([1.0] * 4)}, best=best,
                           spread={"radam": sr, "adam": sa})


@pytest.mark.parametrize("args,status", [
    ((91.4, 90.5, 0.5, 1.0), "reproduced"),
    ((91.4, 90.5, 1.5, 1.0), "partially reproduced"),
    ((90.6, 90.5, 0.5, 1.0), "partially reproduced"),
    ((90.6, 90.5, 1.5, 1.0), "not reproduced"),
    ((90.0, 90.5, 0.5, 1.0), "contradicted"),
])
def test_c3_rule(args, status):
    assert judge_accuracy(_c3(*args)).status == status
