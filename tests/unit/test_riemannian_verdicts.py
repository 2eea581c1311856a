"""R1 and R2 verdict rules on synthetic summaries: every status, the significance requirement and the caps."""

from __future__ import annotations

import copy

import pytest

from papers.riemannian_adam.verdicts import (
    EmbeddingArm,
    EmbeddingSummary,
    LossSweep,
    MapArm,
    MapSweep,
    judge_loss,
    judge_map,
    loss_test_record,
    map_test_record,
)

NOISE = [0.004, -0.003, 0.001]


def _arm(losses, maps, quarter, lr=0.01, bracketed=True) -> EmbeddingArm:
    return EmbeddingArm(lr=lr, bracketed=bracketed, unbracketed_edge=None if bracketed else "high",
                        extensions={"low": 0, "high": 0}, grid={}, finals=list(losses), mean=None, sd=None, se=None,
                        diverged=0, n=len(losses), quarter=quarter, losses=losses, maps=maps, map_child=[None] * 3)


def _summary(radam=0.50, ramsgrad=0.50, rsgd=0.55, map_radam=0.90, map_rsgd=0.88, quarter=(0.60, 0.65),
             setting="retraction"):
    def arm(loss, mp, q, **kw):
        return _arm([loss + e for e in NOISE], [mp + e for e in NOISE], [q] * 3, **kw)

    section = LossSweep(tuning_seeds=[1000, 1001], eval_seeds=[0, 1, 2],
                        arms={"rsgd": arm(rsgd, map_rsgd, quarter[1], lr=3.0),
                              "radam": arm(radam, map_radam, quarter[0]), "ramsgrad": arm(ramsgrad, 0.89, 0.62)})
    section.arms["ramsgrad"].losses = [ramsgrad + e for e in reversed(NOISE)]
    section.arms["rsgd"].maps = [map_rsgd + e for e in reversed(NOISE)]  # paired differences with SE 0.0017
    by_map = MapSweep(tuning_seeds=list(section.tuning_seeds), eval_seeds=list(section.eval_seeds),
                      arms={k: MapArm.extending(copy.deepcopy(a), grid_map={}) for k, a in section.arms.items()})
    return EmbeddingSummary(setting=setting, hierarchy="mammals", nodes=1180, edges=6540, epochs=40,
                            judged=["rsgd", "radam", "ramsgrad"], r1=section, r2=by_map)


def test_r1_reproduced_when_both_are_lower_significantly_and_radam_sooner():
    v = judge_loss(_summary())
    assert v.status == "reproduced" and v.cap is None, v.reasons
    assert loss_test_record(_summary())["per_method"]["radam"]["p"] < 0.05


def test_r1_partially_without_the_speed_condition_or_with_one_arm():
    assert judge_loss(_summary(quarter=(0.70, 0.65))).status == "partially reproduced"
    assert judge_loss(_summary(ramsgrad=0.55)).status == "partially reproduced"


def test_r1_a_gap_below_one_percent_does_not_qualify():
    v = judge_loss(_summary(radam=0.548, ramsgrad=0.548))  # 0.4% of RSGD's loss, however significant
    assert v.status == "not reproduced", v.reasons


def test_r1_contradicted_when_both_are_higher():
    assert judge_loss(_summary(radam=0.60, ramsgrad=0.61)).status == "contradicted"


def test_r1_caps_an_unbracketed_baseline_win_and_an_unbracketed_method_loss():
    s = _summary()
    s.r1.arms["rsgd"].bracketed = False
    v = judge_loss(s)
    assert v.status == "inconclusive" and "baseline not bracketed" in v.cap
    s = _summary(radam=0.60, ramsgrad=0.61)
    s.r1.arms["ramsgrad"].bracketed = False
    v = judge_loss(s)
    assert v.status == "inconclusive" and "method not bracketed (ramsgrad)" in v.cap


def test_r1_too_few_seeds_is_inconclusive():
    s = _summary()
    s.r1.tuning_seeds = [1000]
    assert judge_loss(s).cap.startswith("too few seeds")


@pytest.mark.parametrize("map_radam,status", [(0.875, "reproduced"), (0.86, "not reproduced"),
                                              (0.84, "contradicted")])
def test_r2_retraction_is_a_non_inferiority_rule(map_radam, status):
    assert judge_map(_summary(map_radam=map_radam)).status == status


@pytest.mark.parametrize("map_radam,status", [(0.90, "reproduced"), (0.882, "partially reproduced"),
                                              (0.86, "contradicted"), (0.878, "not reproduced")])
def test_r2_exp_map_needs_radam_higher(map_radam, status):
    v = judge_map(_summary(map_radam=map_radam, setting="expmap"))
    assert v.status == status, v.reasons
    assert map_test_record(_summary(map_radam=map_radam, setting="expmap"))["n"] == 3


def test_an_arm_that_diverged_everywhere_is_inconclusive():
    s = _summary()
    s.r1.arms["radam"].lr = None
    s.r2.arms["rsgd"].lr = None
    assert judge_loss(s).status == judge_map(s).status == "inconclusive"
