"""The vr_methods verdict rules on hand-made summaries shaped like the protocol's: each outcome, the protocol's caps
(an unbracketed arm, too few seeds), A4's equal-lr ratio with its "not exercised" case, and A5's step claim."""

from __future__ import annotations

import dataclasses
import math

import pytest

from common.results.sweep import ArmSummary, ShortRuns
from papers.vr_methods import PAPER
from papers.vr_methods import verdicts as v

SEEDS = {"tuning_seeds": [1000, 1001], "eval_seeds": [0, 1, 2]}
JITTER = (0.0, 0.01, -0.01)


def _arm(finals: list[float], lr: float = 0.1, bracketed: bool = True) -> ArmSummary:
    ok = [x for x in finals if math.isfinite(x)]
    mean = sum(ok) / len(ok) if ok else None
    sd = (sum((x - mean) ** 2 for x in ok) / (len(ok) - 1)) ** 0.5 if len(ok) > 1 else 0.0
    return ArmSummary(lr=lr, bracketed=bracketed, unbracketed_edge=None if bracketed else "high",
                      extensions={"low": 0, "high": 0}, grid={}, finals=list(finals), mean=mean, sd=sd,
                      se=sd / len(ok) ** 0.5 if ok else None, diverged=len(finals) - len(ok), n=len(finals))


def _around(x: float, scale: float = 1.0) -> list[float]:
    return [x + scale * j for j in JITTER]


# ---- A1 ----------------------------------------------------------------------------------------------------------
def _a1(svrg: list[float], sgd: list[float], **kw: bool) -> v.ConvexSummary:
    """Eval finals are log10 suboptimality (the tuned metric); ``subopt`` the suboptimality itself."""
    arms = {"svrg": v.ConvexArm.extending(_arm([math.log10(x) for x in svrg], 1.0, kw.get("svrg_b", True)),
                                          subopt=svrg),
            "sgd": v.ConvexArm.extending(_arm([math.log10(x) for x in sgd], 0.25, kw.get("sgd_b", True)),
                                         subopt=sgd)}
    return v.ConvexSummary(tuning_seeds=SEEDS["tuning_seeds"], eval_seeds=list(range(len(svrg))), arms=arms,
                           f_star=1.1, f_star_grad_norm=1e-9, f_star_used=1.1, f_star_lowered_by=0.0, lam=1e-3,
                           n=1000, passes=12)


@pytest.mark.parametrize("svrg,sgd,status", [
    ([1e-13, 3e-13, 2e-13], [3e-4, 2e-4, 4e-4], "reproduced"),
    ([5e-6, 3e-6, 4e-6], [3e-4, 2e-4, 4e-4], "partially reproduced"),  # 100x better, but above 1e-6
    ([1e-4, 2e-4, 1e-4], [3e-4, 2e-4, 4e-4], "not reproduced"),  # within 10x
    ([1e-3, 2e-3, 3e-3], [3e-4, 2e-4, 4e-4], "contradicted")])
def test_a1(svrg: list[float], sgd: list[float], status: str) -> None:
    s = _a1(svrg, sgd)
    assert v.judge_convex(s).status == status
    assert "decades" in PAPER.claim("a1").headline(s)
    assert PAPER.claim("a1").test(s)["kind"] == "paired-t"


def test_a1_caps_a_win_over_an_unbracketed_sgd_and_a_loss_of_an_unbracketed_svrg() -> None:
    win = v.judge_convex(_a1([1e-13, 3e-13, 2e-13], [3e-4, 2e-4, 4e-4], sgd_b=False))
    assert (win.status, win.cap) == ("inconclusive", "baseline not bracketed (sgd)")
    loss = v.judge_convex(_a1([1e-3, 2e-3, 3e-3], [3e-4, 2e-4, 4e-4], svrg_b=False))
    assert (loss.status, loss.cap) == ("inconclusive", "method not bracketed (svrg)")


def test_a1_with_one_tuning_seed_is_capped_as_too_few_seeds() -> None:
    s = dataclasses.replace(_a1([1e-13, 3e-13, 2e-13], [3e-4, 2e-4, 4e-4]), tuning_seeds=[1000])
    verdict = v.judge_convex(s)
    assert verdict.status == "inconclusive" and verdict.cap.startswith("too few seeds")


# ---- A2 (no tuning) ----------------------------------------------------------------------------------------------
def _a2(r0: float, r8: float, mid: float) -> v.DepthSummary:
    ratios: dict[str, float | None] = {"0": r0, "2": mid, "8": r8}
    vals = [r0, mid, r8]
    return v.DepthSummary(epoch=2, depths=[0, 2, 8], ratio=ratios, ratio_sd=dict.fromkeys(ratios, 0.01),
                          by_fraction={}, monotone=all(a <= b for a, b in zip(vals, vals[1:], strict=False)))


@pytest.mark.parametrize("r0,mid,r8,status", [(0.1, 0.3, 0.8, "reproduced"), (0.1, 0.3, 0.5, "partially reproduced"),
                                              (0.1, 0.9, 0.8, "partially reproduced"),
                                              (0.4, 0.9, 0.5, "not reproduced"), (0.4, 0.3, 0.2, "contradicted")])
def test_a2(r0: float, mid: float, r8: float, status: str) -> None:
    assert v.judge_depth(_a2(r0, r8, mid)).status == status
    assert PAPER.claim("a2").test is None and PAPER.claim("a2").arxiv == "1812.04529"


# ---- A3 ----------------------------------------------------------------------------------------------------------
def _a3(base: float, svrg: float, alpha: float, svrg_b: bool = True, base_b: bool = True) -> v.AlphaSvrgSummary:
    return v.AlphaSvrgSummary(**SEEDS, arms={"baseline": _arm(_around(base), 4e-3, base_b),
                                             "svrg": _arm(_around(svrg), 4e-3, svrg_b),
                                             "alpha_svrg": _arm(_around(alpha, 0.5), 4e-3)}, variance_seed0={})


@pytest.mark.parametrize("svrg,alpha,status", [(0.6, 0.4, "reproduced"), (0.45, 0.4, "partially reproduced"),
                                               (0.6, 0.5, "not reproduced"), (0.6, 0.6, "contradicted")])
def test_a3(svrg: float, alpha: float, status: str) -> None:
    s = _a3(0.5, svrg, alpha)
    assert v.judge_alpha_svrg(s).status == status
    assert PAPER.claim("a3").headline(s).startswith("final train loss: alpha_svrg - baseline")
    assert PAPER.claim("a3").test(s)["compares"] == "alpha_svrg - baseline"


def test_a3_svrg_raising_the_loss_does_not_count_when_svrg_is_unbracketed() -> None:
    verdict = v.judge_alpha_svrg(_a3(0.5, 0.6, 0.4, svrg_b=False))
    assert verdict.status == "partially reproduced"
    assert verdict.checks["L(SVRG) > L(base) (paired p<0.05)"] == "SVRG not bracketed"
    capped = v.judge_alpha_svrg(_a3(0.5, 0.6, 0.4, base_b=False))
    assert (capped.status, capped.cap) == ("inconclusive", "baseline not bracketed (baseline)")


def test_a3_paper_column_names_the_datasets_where_svrg_lowers_or_ties() -> None:
    paper = PAPER.claim("a3").paper_result
    assert "Flowers 2.40/2.26/2.16" in paper and "EuroSAT" in paper and "1.25/1.25/1.23" in paper


# ---- A4 ----------------------------------------------------------------------------------------------------------
def _a4(ratio: float | None, loss_gap: float = 0.0, storm_b: bool = True, zero: bool = False) -> v.StormSummary:
    mom = [1.0, 1.2, 0.9]
    storm = [0.0, 0.0, 0.0] if zero else [m * ratio * (1 + j) for m, j in zip(mom, JITTER, strict=True)]
    mom = [0.0, 0.0, 0.0] if zero else mom
    arms = {"storm": _arm(_around(0.5 + loss_gap), 0.05, storm_b), "momentum": _arm(_around(0.5), 0.1)}
    return v.StormSummary(**SEEDS, equal_lr={"0.05": {"storm": storm, "momentum": mom},
                                             "0.2": {"storm": [None, 1.0, 1.0], "momentum": [1.0, 1.0, 1.0]}},
                          arms={a: v.StormArm.extending(x, mean_error=[]) for a, x in arms.items()})


@pytest.mark.parametrize("ratio,gap,status", [(0.3, 0.0, "reproduced"), (0.3, 0.1, "partially reproduced"),
                                              (0.8, 0.0, "partially reproduced"), (1.0, 0.0, "not reproduced"),
                                              (1.5, 0.0, "not reproduced"), (1.5, 0.1, "contradicted")])
def test_a4_judges_the_ratio_at_equal_lr(ratio: float, gap: float, status: str) -> None:
    s = _a4(ratio, gap)
    verdict = v.judge_storm(s)
    assert verdict.status == status
    per_lr = PAPER.claim("a4").test(s)["per_lr"]
    assert per_lr["0.2"] == {"status": "diverged", "diverged": {"storm": "1/3", "momentum": "0/3"}}
    assert per_lr["0.05"]["ratio"] == pytest.approx(ratio, rel=0.02)
    lo, hi = per_lr["0.05"]["ci95"]
    assert lo < per_lr["0.05"]["ratio"] < hi
    assert "0.05: " in PAPER.claim("a4").headline(s) and "0.2: diverged" in PAPER.claim("a4").headline(s)


def test_a4_with_both_errors_zero_is_not_exercised_and_inconclusive() -> None:
    s = _a4(None, zero=True)
    assert v.error_ratios(s)["0.05"]["status"] == "not exercised"
    verdict = v.judge_storm(s)
    assert verdict.status == "inconclusive" and verdict.checks == {"error ratio at equal lr": "not exercised"}


def test_a4_a_worse_loss_of_an_unbracketed_storm_is_capped() -> None:
    verdict = v.judge_storm(_a4(1.5, 0.1, storm_b=False))
    assert (verdict.status, verdict.cap) == ("inconclusive", "method not bracketed (storm)")


# ---- A5 ----------------------------------------------------------------------------------------------------------
def _a5(k10_fT: float, k10_T: float, k1_T: float, acc10: float, acc1: float) -> v.ClusterSummary:
    fT = _around(k10_fT)
    return v.ClusterSummary(
        **SEEDS, arms={"k1_clean": _arm(_around(k1_T), 0.05), "k10_clean": _arm(_around(k10_T), 0.05),
                       "k1_noisy": _arm(_around(-80.0), 0.05), "k10_noisy": _arm(_around(-80.0), 0.05)},
        test_acc={"k10_noisy": _around(acc10, 5.0), "k1_noisy": _around(acc1)},
        short={"k10_clean": ShortRuns(f=0.8, lr=0.05, finals=fT, mean=sum(fT) / 3, diverged=0, ratio=None)})


@pytest.mark.parametrize("k10_fT,k10_T,acc10,status", [
    (0.35, 0.3, 82.0, "reproduced"), (0.35, 0.3, 80.0, "partially reproduced"),
    (0.6, 0.55, 82.0, "partially reproduced"), (0.6, 0.55, 80.0, "contradicted"),
    (0.43, 0.4, 80.5, "not reproduced")])
def test_a5(k10_fT: float, k10_T: float, acc10: float, status: str) -> None:
    s = _a5(k10_fT, k10_T, 0.4, acc10, 81.0 if status != "not reproduced" else 80.5)
    if status == "contradicted":
        s.test_acc["k10_noisy"] = _around(70.0)
    assert v.judge_cluster(s).status == status
    assert "our reconstruction" in PAPER.claim("a5").headline(s)
    assert PAPER.claim("a5").test(s)["clean"]["kind"] == "steps-at-fT"


def test_a5_reports_the_caps_of_both_parts() -> None:
    s = _a5(0.6, 0.55, 0.4, 70.0, 81.0)  # both parts contradicted: a loss of K=10 on clean and noisy labels
    assert v.judge_cluster(s).status == "contradicted"
    s.arms["k10_clean"].bracketed = s.arms["k10_noisy"].bracketed = False
    verdict = v.judge_cluster(s)
    assert verdict.status == "inconclusive"
    assert verdict.cap == "method not bracketed (k10_clean); method not bracketed (k10_noisy)"


def test_a5_is_labelled_as_judged_on_our_reconstruction() -> None:
    claim = PAPER.claim("a5")
    assert "our reconstruction" in claim.title and "our reconstruction" in claim.metric
    assert claim.arxiv == "2111.11828"


def test_every_claim_cites_its_own_paper() -> None:
    assert [c.arxiv for c in PAPER.claims] == ["", "1812.04529", "2311.05589", "1905.10018", "2111.11828"]
    assert "proceedings.neurips.cc" in PAPER.claim("a1").source


def test_arms_that_diverged_everywhere_are_inconclusive() -> None:
    dead = _arm([math.inf] * 3, 0.1)
    dead.lr = None
    dead_convex = v.ConvexArm.extending(dead, subopt=[math.inf] * 3)
    s1 = dataclasses.replace(_a1([1e-13] * 3, [1e-4] * 3), arms={"svrg": dead_convex, "sgd": dead_convex})
    assert v.judge_convex(s1).status == "inconclusive"
    s3 = _a3(0.5, 0.6, 0.4)
    s3.arms["svrg"] = dead
    assert v.judge_alpha_svrg(s3).status == "inconclusive"
    s5 = _a5(0.35, 0.3, 0.4, 82.0, 81.0)
    s5.arms["k1_noisy"] = dead
    assert v.judge_cluster(s5).status == "inconclusive"


@pytest.mark.parametrize("claim,summary", [
    ("a1", _a1([1e-13, 3e-13, 2e-13], [3e-4, 2e-4, 4e-4])), ("a2", _a2(0.1, 0.8, 0.3)), ("a3", _a3(0.5, 0.6, 0.4)),
    ("a4", _a4(0.3)), ("a5", _a5(0.35, 0.3, 0.4, 82.0, 81.0))])
def test_a_summary_judges_the_same_read_back_from_its_record(claim: str, summary: object) -> None:
    c = PAPER.claim(claim)
    plain = summary.to_record()
    assert c.summary_type.from_record(plain) == summary
    assert c.judge(plain).to_dict() == c.judge(summary).to_dict() and c.headline(plain) == c.headline(summary)


def test_a2_networks_are_recorded_only_for_a_model_family() -> None:
    s = _a2(0.1, 0.8, 0.3)
    assert "networks" not in s.to_record()
    s.networks = [v.Network(name="lenet", depth=5, model={"kind": "lenet"}, params=44_878)]
    back = v.DepthSummary.from_record(s.to_record())
    assert back.networks == s.networks and PAPER.claim("a2").headline(back).startswith(
        "SVRG/SGD variance ratio at the end of epoch 2, shallow to deep")
