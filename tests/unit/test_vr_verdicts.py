"""The vr_methods verdict rules (spec §6, cpu) on hand-made summaries: each outcome at its threshold."""

from __future__ import annotations

import pytest

from papers.vr_methods import PAPER
from papers.vr_methods.verdicts import judge_alpha_svrg, judge_cluster, judge_convex, judge_depth, judge_storm


def _a1(svrg: float, sgd: float) -> dict:
    entry = {"svrg": {"best_subopt": svrg, "lr": 1.0}, "sgd": {"best_subopt": sgd, "lr": 0.5}}
    seeds = {str(s): entry for s in range(3)}
    return {"per_seed": seeds, "svrg_best_subopt_max": svrg, "sgd_best_subopt_min": sgd, "f_star_grad_norm": 1e-9,
            "passes": 12}


@pytest.mark.parametrize("svrg,sgd,status", [(1e-7, 3e-4, "reproduced"), (5e-6, 3e-4, "partially reproduced"),
                                             (1e-4, 3e-4, "not reproduced"), (1e-3, 3e-4, "contradicted")])
def test_a1(svrg: float, sgd: float, status: str) -> None:
    assert judge_convex(_a1(svrg, sgd)).status == status
    PAPER.claim("a1").headline(_a1(svrg, sgd))


def _a2(r0: float, r8: float, mid: float) -> dict:
    ratios = {"0": r0, "2": mid, "8": r8}
    vals = [r0, mid, r8]
    return {"epoch": 2, "depths": [0, 2, 8], "ratio": ratios, "ratio_sd": dict.fromkeys(ratios, 0.01),
            "monotone": all(a <= b for a, b in zip(vals, vals[1:], strict=False))}


@pytest.mark.parametrize("r0,mid,r8,status", [(0.1, 0.3, 0.8, "reproduced"), (0.1, 0.3, 0.5, "partially reproduced"),
                                              (0.1, 0.9, 0.8, "partially reproduced"),
                                              (0.4, 0.9, 0.5, "not reproduced"), (0.4, 0.3, 0.2, "contradicted")])
def test_a2(r0: float, mid: float, r8: float, status: str) -> None:
    assert judge_depth(_a2(r0, r8, mid)).status == status
    PAPER.claim("a2").headline(_a2(r0, r8, mid))


def _a3(base: float, svrg: float, alpha: float, se: float = 0.01) -> dict:
    best = {a: {"mean": v, "sd": 0.01, "lr": 1e-3} for a, v in (("baseline", base), ("svrg", svrg),
                                                                ("alpha_svrg", alpha))}
    return {"best": best, "alpha_minus_base": alpha - base, "se_alpha_base": se, "svrg_minus_base": svrg - base,
            "se_svrg_base": se}


@pytest.mark.parametrize("svrg,alpha,status", [(0.6, 0.4, "reproduced"), (0.45, 0.4, "partially reproduced"),
                                               (0.6, 0.49, "not reproduced"), (0.6, 0.6, "contradicted")])
def test_a3(svrg: float, alpha: float, status: str) -> None:
    assert judge_alpha_svrg(_a3(0.5, svrg, alpha)).status == status
    PAPER.claim("a3").headline(_a3(0.5, svrg, alpha))


def _a4(ratio: float, gap: float) -> dict:
    arm = lambda e: {"error": {"mean": e, "lr": 0.1}, "loss": {"mean": 0.5, "lr": 0.1}}  # noqa: E731
    return {"error_ratio": ratio, "loss_gap": gap, "loss_se": 0.01, "best": {"storm": arm(ratio), "momentum": arm(1.0)}}


@pytest.mark.parametrize("ratio,gap,status", [(0.4, 0.0, "reproduced"), (0.4, 0.05, "partially reproduced"),
                                              (0.8, 0.0, "partially reproduced"), (1.2, 0.0, "not reproduced"),
                                              (1.2, 0.05, "contradicted")])
def test_a4(ratio: float, gap: float, status: str) -> None:
    assert judge_storm(_a4(ratio, gap)).status == status
    PAPER.claim("a4").headline(_a4(ratio, gap))


def _a5(frac: float | None, loss_gap: float, acc_gap: float) -> dict:
    arm = {"loss": {"mean": 0.4}, "test_acc": {"mean": 80.0}}
    return {"clean": {"target": 0.4, "hit_step": None if frac is None else 100 * frac, "steps": 100,
                      "step_fraction": frac, "loss_gap": loss_gap, "se": 0.01},
            "noisy": {"acc_gap": acc_gap, "se": 0.5},
            "best": {a: arm for a in ("k1_clean", "k10_clean", "k1_noisy", "k10_noisy")}}


@pytest.mark.parametrize("frac,loss_gap,acc_gap,status", [
    (0.7, -0.05, 1.0, "reproduced"), (0.7, -0.05, -1.0, "partially reproduced"),
    (None, 0.01, 1.0, "partially reproduced"), (0.9, 0.01, -1.0, "not reproduced"),
    (None, 0.3, -5.0, "contradicted")])
def test_a5(frac: float | None, loss_gap: float, acc_gap: float, status: str) -> None:
    assert judge_cluster(_a5(frac, loss_gap, acc_gap)).status == status
    PAPER.claim("a5").headline(_a5(frac, loss_gap, acc_gap))


def test_failed_arms_are_inconclusive() -> None:
    assert judge_storm({}).status == "inconclusive" and judge_cluster({}).status == "inconclusive"
    assert judge_alpha_svrg({}).status == "inconclusive"
