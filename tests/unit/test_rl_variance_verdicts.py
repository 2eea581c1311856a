"""B1-B4 verdict rules on hand-made summaries: B1/B3 thresholds; B2/B4 on the protocol (paired tests over eval
seeds, caps for unbracketed tuning and too few seeds)."""

import pytest

from common.results.sweep import ArmSummary
from papers.rl_variance import PAPER
from papers.rl_variance.verdicts import (
    AggregationSummary,
    AnchorOld,
    DeepSeaSize,
    DeepSeaSummary,
    EstimatorStats,
    GVPOSummary,
    NChainArm,
    NChainSummary,
    SmallChain,
    Solved,
    TemperatureSweep,
    judge_aggregation,
    judge_deepsea,
    judge_gvpo,
    judge_nchain,
)
from papers.rl_variance.verdicts import (
    test_gvpo as gvpo_test_record,
)
from papers.rl_variance.verdicts import (
    test_nchain as nchain_test_record,
)

TUNE, EVAL = [1000, 1001], [0, 1, 2, 3, 4]


def _arm(finals, lr=1e-3, bracketed=True):
    finite = [x for x in finals if x is not None]
    mean = sum(finite) / len(finite) if finite else None
    return ArmSummary(lr=lr, bracketed=bracketed, unbracketed_edge=None if bracketed else "high",
                      extensions={"low": 0, "high": 0}, grid={}, finals=list(finals), mean=mean, sd=0.1, se=0.05,
                      diverged=0, n=len(finals))


def _b1(lmc, eg, n=5):
    size = DeepSeaSize(n=20, episodes=100, J=5,
                       lmc=Solved(seeds_solved=lmc, first_success=[1] * lmc + [None] * (n - lmc),
                                  fraction_solved_mean=0.5),
                       egreedy=Solved(seeds_solved=eg, first_success=[None] * n, fraction_solved_mean=0.0))
    return DeepSeaSummary(sizes={"N20": size}, verdict_size=20, seeds=n,
                          temperature=TemperatureSweep(n=10, seed=0, episodes=10, by_inv_beta={}))


def test_b1():
    assert judge_deepsea(_b1(5, 0)).status == "reproduced"
    assert judge_deepsea(_b1(4, 1)).status == "reproduced"
    assert judge_deepsea(_b1(3, 0)).status == "partially reproduced"
    assert judge_deepsea(_b1(1, 0)).status == "not reproduced"
    assert judge_deepsea(_b1(1, 2)).status == "contradicted"


def _b2(lmc_regret, dqn_regret, *, lmc_bracketed=True, dqn_bracketed=True, tune=TUNE):
    def arm(finals, knob, value, bracketed):
        a = _arm(finals, bracketed=bracketed)
        return NChainArm.extending(a, knob=knob, knob_value=value, knob_tied=[value],
                                   returns=[10 - x for x in finals], return_mean=10 - a.mean)
    return NChainSummary(tuning_seeds=tune, eval_seeds=EVAL, n=50, env_steps=1000, optimal_return=10.0,
                         arms={"lmc": arm(lmc_regret, "noise_scale", 3e-3, lmc_bracketed),
                               "dqn": arm(dqn_regret, "eps_final", 0.03, dqn_bracketed)},
                         small=SmallChain(n=25, env_steps=500, arms={}))


GOOD = [0.0, 0.1, 0.0, 0.2, 0.1]
BAD = [9.9, 5.0, 9.9, 2.0, 9.9]


def test_b2_paired_test_decides():
    assert judge_nchain(_b2(GOOD, BAD)).status == "reproduced"
    assert judge_nchain(_b2(BAD, GOOD)).status == "contradicted"
    v = judge_nchain(_b2([0.0, 9.9, 0.0, 9.9, 0.1], [9.9, 0.0, 0.1, 9.9, 0.0]))
    assert v.status == "not reproduced" and v.cap is None


def test_b2_caps_unbracketed_arms_and_too_few_seeds():
    v = judge_nchain(_b2(GOOD, BAD, dqn_bracketed=False))
    assert v.status == "inconclusive" and v.cap == "baseline not bracketed (dqn)"
    v = judge_nchain(_b2(BAD, GOOD, lmc_bracketed=False))
    assert v.status == "inconclusive" and v.cap == "method not bracketed (lmc)"
    assert judge_nchain(_b2(GOOD, BAD, lmc_bracketed=False)).status == "reproduced"  # a win stands
    v = judge_nchain(_b2(GOOD, BAD, tune=[1000]))
    assert v.status == "inconclusive" and v.cap.startswith("too few seeds")


def test_b2_test_record_is_the_paired_test_of_regret():
    t = nchain_test_record(_b2(GOOD, BAD))
    assert t["kind"] == "paired-t" and t["n"] == 5 and t["p"] < 0.05
    assert t["diff"] == pytest.approx(sum(GOOD) / 5 - sum(BAD) / 5)
    assert t["ci95"][0] < t["diff"] < t["ci95"][1]


def _st(rb, se, var):
    return EstimatorStats(c=1.0, b2=rb * rb, b2_se=se, rb=rb, rb_naive=rb, trvar_norm=var, trvar_rel=var, n=1000)


def _b3(stats):
    return AggregationSummary(stats=stats, policy_J=0.5, mean_length=4.0, grad_norm=0.05, batches=1000,
                              group_size=8, rl={}, seeds=1)


def test_b3():
    ok = {"grpo": _st(0.3, 0.001, 1), "dapo": _st(0.05, 0.0001, 3), "drgrpo": _st(0.0, 0.001, 4),
          "deltal_a1": _st(0.0, 0.001, 1.5)}
    assert judge_aggregation(_b3(ok)).status == "reproduced"
    biased = dict(ok, deltal_a1=_st(0.2, 0.001, 1.5))
    assert judge_aggregation(_b3(biased)).status == "partially reproduced"
    assert judge_aggregation(_b3(dict(ok, deltal_a1=_st(0.0, 0.001, 5)))).status == "not reproduced"
    assert judge_aggregation(_b3(dict(ok, deltal_a1=_st(0.5, 0.001, 5)))).status == "contradicted"


MUS = ("on_policy", "uniform", "stale")


def _b4(g, r, *, g_bracketed=True, r_bracketed=True, tune=TUNE):
    """Per mu, GVPO's and GRPO-style's KL as a mean; eval seeds spread it by +-10%."""
    spread = (0.9, 1.0, 1.1, 0.95, 1.05)
    arms = {}
    for mu, gv, rv in zip(MUS, g, r, strict=True):
        arms[f"gvpo/{mu}"] = _arm([gv * f for f in spread], lr=0.1, bracketed=g_bracketed)
        arms[f"grpo/{mu}"] = _arm([rv * f for f in reversed(spread)], lr=0.1, bracketed=r_bracketed)
    return GVPOSummary(tuning_seeds=tune, eval_seeds=EVAL, arms=arms, beta=0.1, steps=100,
                       anchor_old=AnchorOld(kl_by_iteration=[1.0, 0.5], lr=0.1, every=50), kl_at_ref=1.0)


def test_b4():
    assert judge_gvpo(_b4((1e-4, 1e-5, 1e-5), (1.0, 0.3, 0.3))).status == "reproduced"
    assert judge_gvpo(_b4((1e-4, 0.05, 0.05), (1.0, 0.3, 0.3))).status == "partially reproduced"
    assert judge_gvpo(_b4((0.05, 0.05, 0.05), (1.0, 0.3, 0.3))).status == "not reproduced"
    assert judge_gvpo(_b4((1e-4, 0.5, 1e-5), (1.0, 0.3, 0.3))).status == "contradicted"


def test_b4_contrast_needs_the_paired_test():
    # GRPO-style >= 10x GVPO in the means, but the seeds overlap so much that the test cannot tell them apart
    s = _b4((1e-4, 1e-3, 1e-3), (1.0, 0.3, 0.3))
    s.arms["grpo/uniform"].finals = [0.0, 0.0, 0.0, 0.0, 0.05]
    s.arms["gvpo/uniform"].finals = [0.002, 0.002, 0.002, 0.002, 0.0]
    s.arms["grpo/uniform"].mean = 0.01
    v = judge_gvpo(s)
    assert v.status == "partially reproduced"
    assert v.checks["grpo_kl_>=10x_gvpo_off_policy_p<0.05"] is False


def test_b4_caps():
    v = judge_gvpo(_b4((1e-4, 1e-5, 1e-5), (1.0, 0.3, 0.3), r_bracketed=False))
    assert v.status == "inconclusive" and v.cap.startswith("baseline not bracketed")
    v = judge_gvpo(_b4((0.05, 0.05, 0.05), (1.0, 0.3, 0.3), g_bracketed=False))
    assert v.status == "inconclusive" and v.cap.startswith("method not bracketed")
    assert judge_gvpo(_b4((1e-4, 1e-5, 1e-5), (1.0, 0.3, 0.3), g_bracketed=False)).status == "reproduced"
    v = judge_gvpo(_b4((1e-4, 1e-5, 1e-5), (1.0, 0.3, 0.3), tune=[1000]))
    assert v.status == "inconclusive" and v.cap.startswith("too few seeds")


def test_b4_test_record_has_one_paired_test_per_mu():
    t = gvpo_test_record(_b4((1e-4, 1e-5, 1e-5), (1.0, 0.3, 0.3)))
    assert set(t["per_mu"]) == set(MUS)
    assert all(x["kind"] == "paired-t" and x["p"] < 0.05 and x["n"] == 5 for x in t["per_mu"].values())


@pytest.mark.parametrize("claim,summary", [("b1", _b1(4, 1)), ("b2", _b2(GOOD, BAD)),
                                           ("b3", _b3({k: _st(0.1, 0.001, 1) for k in
                                                       ("grpo", "dapo", "drgrpo", "deltal_a1")})),
                                           ("b4", _b4((1e-4, 1e-5, 1e-5), (1.0, 0.3, 0.3)))])
def test_a_summary_judges_the_same_typed_and_as_its_record(claim, summary):
    c = PAPER.claim(claim)
    record = summary.to_record()
    assert isinstance(summary, c.summary_type) and c.summary_type.from_record(record).to_record() == record
    assert c.judge(record).to_dict() == c.judge(summary).to_dict()
    assert c.headline(record) == c.headline(summary)
    if c.test is not None:
        assert c.test(record) == c.test(summary)
