"""Stable-SPAM verdict rules (spec §6), the failure and spike definitions, and the two-semantics reporting."""

from papers.stable_spam.experiment import failed
from papers.stable_spam.tracing import count_spikes, subsample
from papers.stable_spam.verdicts import judge_s1, rule_s1, rule_s2, rule_s3


def _s1(**kw):
    c = {"delta": 0.1, "se": 0.01, "failures": 0, "failures_baseline": 1, "spikes": 0, "spikes_baseline": 0,
         "baseline": "adam_int4", "arm": "ss"}
    return {**c, **kw}


def test_s1_rule():
    assert rule_s1(_s1()).status == "reproduced"
    assert rule_s1(_s1(failures_baseline=0, spikes_baseline=3)).status == "reproduced"  # equal F, fewer spikes
    assert rule_s1(_s1(failures_baseline=0)).status == "partially reproduced"
    assert rule_s1(_s1(delta=0.01)).status == "partially reproduced"
    assert rule_s1(_s1(delta=0.01, failures_baseline=0)).status == "not reproduced"
    assert rule_s1(_s1(delta=-0.1)).status == "contradicted"


def test_s2_rule():
    c = {"se": 0.01}
    assert rule_s2({**c, "delta": 0.05}).status == "reproduced"
    assert rule_s2({**c, "delta": -0.01}).status == "partially reproduced"
    assert rule_s2({**c, "delta": -0.04}).status == "not reproduced"
    assert rule_s2({**c, "delta": -0.06}).status == "contradicted"


def test_s3_rule():
    c = {"se": 0.01, "delta": 0.05, "target": 2.0, "baseline": "adam_int4", "hit_step": 100}
    assert rule_s3({**c, "ratio": 2.0}).status == "reproduced"
    assert rule_s3({**c, "ratio": 1.5}).status == "partially reproduced"
    assert rule_s3({**c, "ratio": 1.0}).status == "not reproduced"
    assert rule_s3({**c, "ratio": None, "hit_step": None, "delta": 0.0}).status == "not reproduced"
    assert rule_s3({**c, "ratio": None, "hit_step": None, "delta": -0.1}).status == "contradicted"


def test_the_claim_verdict_is_the_official_one_with_the_fixed_one_beside_it():
    v = judge_s1({"s1_official": _s1(), "s1_fixed": _s1(delta=-0.1)})
    assert v.status == "reproduced"
    assert v.checks["fixed: delta>2SE"] is False
    assert any(r.startswith("fixed semantics: contradicted") for r in v.reasons)
    assert judge_s1({"s1_official": None, "s1_fixed": _s1()}).status == "inconclusive"


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
            for arm, spec in claim.arms.items():
                run_cfg = arm_config(claim, spec)
                assert (run_cfg.model.quant is None) == (not spec.quant), (preset, arm)
                for lr in claim.lrs:
                    opt = arm_optimizer(arm, float(lr), spec, METHODS)([torch.nn.Parameter(torch.zeros(2))])
                    assert opt.param_groups[0]["lr"] == float(lr)
