"""AdaBelief's verdict rules, applied to a run's summary. Thresholds live here, once. Both claims compare tuned
arms and follow the tuning-and-evidence protocol: tuning seeds choose each arm's lr, eval seeds judge with paired
tests, and unbracketed tuning caps the verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from common.results.judges import finish
from common.results.protocol import TestResult, exercised, paired_test
from common.results.sweep import ArmSummary, TunedSummary
from common.results.verdict import CONTRADICTED, INCONCLUSIVE, NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict

NOT_EXERCISED = "not exercised"

C1_REACHED = 0.1
C1_FACTOR = 0.5
C1_WINS = 4
C2_SPEED_FACTOR = 1.1
C2_SGD_SLACK_PP = 0.2
C2_CONTRA_ACC_PP = 0.5
C2_CONTRA_SPEED = 1.25


@dataclass
class ToySummary(TunedSummary):
    """C1 on the toy function: every arm tuned on the tuning starts (``finals``: distance to the optimum on each
    eval start), the optimum and the step budget, and the equal-lr check on the eval starts (``equal_lr``: arm ->
    lr -> mean distance, None where a start diverged; ``shared_lrs``: how many lrs AdaBelief and Adam both ran;
    ``adabelief_closer_at``: at how many of them AdaBelief ended closer)."""

    optimum: list[float]
    steps: int
    equal_lr: dict[str, dict[str, float | None]]
    shared_lrs: int
    adabelief_closer_at: int


@dataclass
class GeneralizationArm(ArmSummary):
    """A C2 arm tuned by final val error (%): its eval seeds' test accuracy (%) and train loss at ``speed_at`` of
    the steps, with their means (and the accuracy's sd); None where a run gave no value."""

    test_acc: list[float | None]
    train_loss_at_speed: list[float | None]
    test_acc_mean: float | None
    test_acc_sd: float | None
    train_loss_at_speed_mean: float | None


@dataclass
class GeneralizationSummary(TunedSummary):
    """C2: every arm's :class:`GeneralizationArm`, and the fraction of training where the speed loss is read."""

    speed_at: float
    arms: dict[str, GeneralizationArm]


C1_RULE = ("each arm's lr chosen on the tuning seeds' starts (bracketing), distance to the optimum on the eval "
           "seeds' starts, paired one-sided t-test of AdaBelief against its closest rival (Adam or SGD, by eval "
           f"mean): reproduced if AdaBelief is closer at p < 0.05, its mean distance is < {C1_REACHED} and <= "
           f"{C1_FACTOR}x the rival's; partially if it is closer at p < 0.05 without that, or closer than Adam at "
           f">= {C1_WINS} of 6 shared lrs (equal-lr runs on the eval starts); contradicted if the rival is closer at "
           "p < 0.05; otherwise not reproduced. A win over an unbracketed rival, or a loss of an unbracketed "
           "AdaBelief, is inconclusive")


def _finals(s: ToySummary, arm: str) -> list[float]:
    return [math.inf if x is None or not math.isfinite(float(x)) else float(x) for x in s.arms[arm].finals]


def _rival(s: ToySummary) -> str | None:
    means = {a: m for a in ("adam", "sgd") if (m := s.arms[a].mean) is not None}
    return min(means, key=means.__getitem__) if means else None


def toy_test(s: ToySummary) -> TestResult | None:
    rival = _rival(s)
    if rival is None or s.arms["adabelief"].lr is None:
        return None
    return paired_test(_finals(s, "adabelief"), _finals(s, rival))


def judge_toy(s: ToySummary) -> Verdict:
    rival, t = _rival(s), toy_test(s)
    ab = s.arms["adabelief"]
    wins_needed = math.ceil(C1_WINS * s.shared_lrs / 6)
    wins = s.shared_lrs > 0 and s.adabelief_closer_at >= wins_needed
    if rival is None:
        return Verdict(INCONCLUSIVE, {}, ["Adam and SGD diverged at every lr or on every eval start"])
    if t is None or ab.mean is None:
        checks = {"closer_than_rival_p<0.05": False}
        return finish(CONTRADICTED, checks, ["AdaBelief diverged at every lr or on every eval start"], s,
                      "adabelief", ["adam", "sgd"])
    d_ab, d_r = ab.mean, s.arms[rival].mean
    closer = t.significant
    reached = closer and d_ab < C1_REACHED and d_ab <= C1_FACTOR * d_r
    checks = {"reaches_optimum_and_halves_rival": reached, "closer_than_rival_p<0.05": closer,
              f"closer_than_adam_at_{wins_needed}_of_{s.shared_lrs}_lrs": wins}
    ci = "n/a" if t.ci95 is None else f"[{t.ci95[0]:+.4g}, {t.ci95[1]:+.4g}]"
    reasons = [f"mean distance AdaBelief {d_ab:.4g} (lr {ab.lr:g}) vs {rival} {d_r:.4g} (lr "
               f"{s.arms[rival].lr:g}); AdaBelief - {rival} {t.diff:+.4g}, 95% CI {ci}, p = "
               f"{'n/a' if t.p is None else format(t.p, '.3g')} (n = {t.n})",
               f"reached (< {C1_REACHED} and <= {C1_FACTOR}x the rival): {reached}",
               f"AdaBelief closer than Adam at {s.adabelief_closer_at} of {s.shared_lrs} shared lrs "
               "(eval starts)"]
    if t.significant_opposite:
        status = CONTRADICTED
    else:
        status = REPRODUCED if reached else PARTIAL if closer or wins else NOT_REPRODUCED
    return finish(status, checks, reasons, s, "adabelief", ["adam", "sgd"])


def test_toy(s: ToySummary) -> dict[str, Any] | None:
    t = toy_test(s)
    return None if t is None else {**t.to_record(), "rival": _rival(s)}


def headline_toy(s: ToySummary) -> str:
    parts = []
    for arm in ("adabelief", "adam", "sgd"):
        a = s.arms[arm]
        edge = "" if a.bracketed else " (lr not bracketed)"
        parts.append(f"{arm} {'diverged' if a.mean is None else format(a.mean, '.3g')}"
                     f"@{'-' if a.lr is None else format(a.lr, 'g')}{edge}")
    t = toy_test(s)
    p = "" if t is None or t.p is None else f"; AdaBelief - {_rival(s)} p={t.p:.3g}"
    return (f"distance to optimum after {s.steps} steps (eval n={len(s.eval_seeds)}): " + ", ".join(parts) + p
            + f"; AdaBelief closer than Adam at {s.adabelief_closer_at}/{s.shared_lrs} shared lrs")


C2_RULE = ("each arm's lr tuned on the tuning seeds by final val error (bracketing), measured on the eval seeds, "
           "paired one-sided t-tests over eval seeds: (a) 'as fast as Adam' holds if AdaBelief's train loss at "
           f"50% of the steps is below {C2_SPEED_FACTOR}x Adam's at p < 0.05; (b) 'generalizes like SGD' holds "
           "if AdaBelief's test accuracy is above Adam's at p < 0.05 and above SGD's minus "
           f"{C2_SGD_SLACK_PP} pp at p < 0.05. Reproduced if (a) and (b); partially if exactly one; not reproduced if "
           f"neither; contradicted if AdaBelief's accuracy is below Adam's minus {C2_CONTRA_ACC_PP} pp and its train "
           f"loss above {C2_CONTRA_SPEED}x Adam's, both at p < 0.05. A win over an unbracketed Adam or SGD, or a loss "
           "of an unbracketed AdaBelief, is inconclusive")


def _vals(xs: list[float | None]) -> list[float]:
    return [math.inf if x is None or not math.isfinite(float(x)) else float(x) for x in xs]


def _neg(xs: list[float]) -> list[float]:
    return [-x if math.isfinite(x) else math.inf for x in xs]  # accuracy: higher is better; a failed run is +inf


def generalization_tests(s: GeneralizationSummary) -> dict[str, TestResult] | None:
    """The paired one-sided tests of C2, each of the form "left < right" over eval seeds."""
    arms = s.arms
    if any(arms[a].lr is None for a in ("adabelief", "adam", "sgd")):
        return None
    ab_l, adam_l = _vals(arms["adabelief"].train_loss_at_speed), _vals(arms["adam"].train_loss_at_speed)
    ab_acc, adam_acc, sgd_acc = (_vals(arms[a].test_acc) for a in ("adabelief", "adam", "sgd"))
    return {
        # (a) AdaBelief's loss < 1.1 x Adam's
        "a_loss_vs_1.1x_adam": paired_test(ab_l, [C2_SPEED_FACTOR * x for x in adam_l]),
        # (b) AdaBelief's accuracy > Adam's, and > SGD's - 0.2 pp (as -acc < -other)
        "b_acc_vs_adam": paired_test(_neg(ab_acc), _neg(adam_acc)),
        "b_acc_vs_sgd_minus_0.2pp": paired_test(_neg(ab_acc), _neg([x - C2_SGD_SLACK_PP for x in sgd_acc])),
        # contradiction: AdaBelief's accuracy < Adam's - 0.5 pp, and its loss > 1.25 x Adam's
        "contra_acc_below_adam_minus_0.5pp": paired_test(ab_acc, [x - C2_CONTRA_ACC_PP for x in adam_acc]),
        "contra_loss_above_1.25x_adam": paired_test([C2_CONTRA_SPEED * x for x in adam_l], ab_l),
    }


def _t(t: TestResult) -> str:
    ci = "n/a" if t.ci95 is None else f"[{t.ci95[0]:+.4g}, {t.ci95[1]:+.4g}]"
    return (f"diff {'n/a' if t.diff is None else format(t.diff, '+.4g')}, 95% CI {ci}, "
            f"p = {'n/a' if t.p is None else format(t.p, '.3g')}")


def _t_acc(t: TestResult) -> str:
    """A test run on -acc, reported as AdaBelief's accuracy minus the other side's (pp)."""
    ci = "n/a" if t.ci95 is None else f"[{-t.ci95[1]:+.3g}, {-t.ci95[0]:+.3g}]"
    return (f"AdaBelief - it {'n/a' if t.diff is None else format(-t.diff, '+.3g')} pp, 95% CI {ci}, "
            f"p = {'n/a' if t.p is None else format(t.p, '.3g')}")


def judge_generalization(s: GeneralizationSummary) -> Verdict:
    tests = generalization_tests(s)
    if tests is None:
        return Verdict(INCONCLUSIVE, {}, ["an arm failed at every learning rate"])
    a = s.arms
    fast = tests["a_loss_vs_1.1x_adam"].significant
    general = tests["b_acc_vs_adam"].significant and tests["b_acc_vs_sgd_minus_0.2pp"].significant
    diverged = sum(int(a[x].diverged) for x in ("adabelief", "adam", "sgd"))
    checks: dict[str, Any] = {"a_fast_as_adam": fast, "b_generalizes_like_sgd": general,
                              "eval_runs_diverged": diverged if exercised(diverged, 0) else NOT_EXERCISED}
    reasons = [f"(a) train loss at {s.speed_at:.0%} of steps: AdaBelief "
               f"{_m(a['adabelief'].train_loss_at_speed_mean)}"
               f" vs {C2_SPEED_FACTOR} x Adam {_m(a['adam'].train_loss_at_speed_mean)}; AdaBelief - "
               f"{C2_SPEED_FACTOR}x Adam: {_t(tests['a_loss_vs_1.1x_adam'])}",
               f"(b) test acc AdaBelief {_m(a['adabelief'].test_acc_mean)}% vs Adam "
               f"{_m(a['adam'].test_acc_mean)}% ({_t_acc(tests['b_acc_vs_adam'])}) and SGD "
               f"{_m(a['sgd'].test_acc_mean)}% - {C2_SGD_SLACK_PP} pp ({_t_acc(tests['b_acc_vs_sgd_minus_0.2pp'])})"]
    if tests["contra_acc_below_adam_minus_0.5pp"].significant and tests["contra_loss_above_1.25x_adam"].significant:
        status = CONTRADICTED
    else:
        status = REPRODUCED if fast and general else PARTIAL if fast or general else NOT_REPRODUCED
    baselines = ["adam", "sgd"] if general else ["adam"]
    return finish(status, checks, reasons, s, "adabelief", baselines)


def test_generalization(s: GeneralizationSummary) -> dict[str, Any] | None:
    tests = generalization_tests(s)
    if tests is None:
        return None
    return {"kind": "paired-t per sub-claim (one-sided, left < right)",
            "tests": {k: t.to_record() for k, t in tests.items()}}


def _m(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def headline_generalization(s: GeneralizationSummary) -> str:
    parts = []
    for arm, v in s.arms.items():
        if v.test_acc_mean is None:
            parts.append(f"{arm} failed")
            continue
        edge = "" if v.bracketed else ", lr not bracketed"
        parts.append(f"{arm} {v.test_acc_mean:.2f}±{(v.test_acc_sd or 0.0):.2f}%@{v.lr:g}{edge} "
                     f"(loss@{s.speed_at:.0%} {_m(v.train_loss_at_speed_mean)})")
    return f"test acc (eval n={len(s.eval_seeds)}): " + ", ".join(parts)
