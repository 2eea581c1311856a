"""Stable-SPAM verdict rules, the failure and spike definitions, and the two-semantics reporting."""

from papers.stable_spam.experiment import failed
from papers.stable_spam.tracing import count_spikes, subsample
from papers.stable_spam.verdicts import StableSpamSummary, judge_s1, rule_s1, rule_s2, rule_s3
from tests.summaries import arm, short, summary

OFF, FIX = "stablespam_official_int4", "stablespam_fixed_int4"
ADAM = [3.00, 3.10, 2.95, 3.05]
SS = [2.90, 3.01, 2.84, 2.96]


def _s(ss=SS, adam=ADAM, fp=ADAM, fixed=None, failures=(0, 1), spikes=(0, 0), short_ss=None):
    arms = {OFF: arm(ss), FIX: arm(fixed or ss), "adam_int4": arm(adam), "adam_clip_int4": arm(adam),
            "adam_fp": arm(fp)}
    sh = {a: short(short_ss or ss, f=0.5, baseline="adam_int4") for a in (OFF, FIX)}
    return summary(arms, short=sh, failures={OFF: failures[0], FIX: failures[0], "adam_int4": failures[1]},
                   spikes={OFF: spikes[0], FIX: spikes[0], "adam_int4": spikes[1]},
                   runs_per_arm={a: 8 for a in arms}, adam_star=None, kind=StableSpamSummary)


def test_s1_rule():
    assert rule_s1(_s(), OFF).status == "reproduced"
    assert rule_s1(_s(failures=(0, 0), spikes=(0, 3)), OFF).status == "reproduced"  # equal F, fewer spikes
    assert rule_s1(_s(failures=(1, 1)), OFF).status == "partially reproduced"
    assert rule_s1(_s(ss=ADAM), OFF).status == "partially reproduced"
    assert rule_s1(_s(ss=ADAM, failures=(1, 1)), OFF).status == "not reproduced"
    assert rule_s1(_s(ss=[x + 0.2 for x in SS]), OFF).status == "contradicted"


def test_s1_stability_not_exercised_when_nothing_failed_or_spiked():
    v = rule_s1(_s(failures=(0, 0), spikes=(0, 0)), OFF)
    assert v.checks["fewer failures (or spikes) than Adam*"] == "not exercised"
    assert v.status == "reproduced"  # decided by the loss check alone
    assert rule_s1(_s(ss=ADAM, failures=(0, 0), spikes=(0, 0)), OFF).status == "not reproduced"


def test_s2_rule():
    assert rule_s2(_s(fp=ADAM), OFF).status == "reproduced"
    assert rule_s2(_s(fp=[3.0, 3.2, 2.8, 3.1], ss=[3.1, 2.9, 3.0, 3.05]), OFF).status == "partially reproduced"
    assert rule_s2(_s(fp=[x - 0.03 for x in SS]), OFF).status == "not reproduced"
    assert rule_s2(_s(fp=[x - 0.2 for x in SS]), OFF).status == "contradicted"


def test_s3_rule_reads_the_half_T_runs():
    assert rule_s3(_s(short_ss=[2.99, 3.05, 2.93, 3.0]), OFF).status == "reproduced"
    assert rule_s3(_s(short_ss=[3.5, 3.6, 3.45, 3.55]), OFF).status == "not reproduced"


def test_the_claim_verdict_is_the_official_one_with_the_fixed_one_beside_it():
    v = judge_s1(_s(fixed=[x + 0.2 for x in SS]))
    assert v.status == "reproduced"
    assert v.checks["fixed: lower loss (p<0.05)"] is False
    assert any(r.startswith("fixed semantics: contradicted") for r in v.reasons)


def test_failure_and_spike_definitions():
    curve = [[0, 5.5], [10, 3.0]]
    assert not failed({"final_val_loss": 3.0, "val_curve": curve, "diverged": False})
    assert failed({"final_val_loss": 5.45, "val_curve": curve, "diverged": False})  # not 0.1 below the start
    assert failed({"final_val_loss": float("nan"), "val_curve": curve, "diverged": True})
    losses = [2.0] * 25 + [3.1] + [2.0] * 5
    assert count_spikes(losses) == 1
    assert count_spikes([2.0] * 25 + [2.9]) == 0
    assert subsample(list(range(10)), 4) == [(0, 0), (4, 4), (8, 8), (9, 9)]
    assert subsample([1.234567891], 1) == [(0, 1.2346)]


def test_every_preset_arm_builds_its_optimizer():
    import torch

    from common.config import load_yaml
    from common.optim.arms import arm_optimizer
    from papers.stable_spam import PAPER
    from papers.stable_spam.experiment import METHODS, arm_config

    for preset in PAPER.presets():
        cfg = load_yaml(PAPER.configs_dir() / f"{preset}.yaml")
        for claim in cfg.claims.values():
            for name, spec in claim.arms.items():
                run_cfg = arm_config(claim, spec)
                assert (run_cfg.model.quant is None) == (not spec.quant), (preset, name)
                for lr in claim.lrs:
                    opt = arm_optimizer(name, float(lr), spec, METHODS)([torch.nn.Parameter(torch.zeros(2))])
                    assert opt.param_groups[0]["lr"] == float(lr)
