"""The vr_methods verdict rules for A1-A5, applied to measured summaries.

Every claim that compares arms is judged on the tuning-and-evidence protocol (``common.results.protocol``): lrs
tuned on tuning seeds, the chosen ones compared on paired eval seeds with scipy tests and 95% intervals, and the
protocol's caps (an unbracketed arm, an unstable winner, too few seeds) turn a verdict that rests on an unfinished
comparison into ``inconclusive`` with the reason. A2 is a diagnostic at the paper's fixed SGD settings (no tuning).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.results.judges import (
    arm_eval,
    arm_tuning,
    comparison_headline,
    finish,
    loss_test_record,
    ratio_text,
    short_ratio,
    with_seed_cap,
)
from common.results.protocol import TestResult, cap_verdict, exercised, loss_verdict, paired_test, step_verdict
from common.results.summary import Summary, optional
from common.results.sweep import ArmSummary, StepSummary, TunedSummary
from common.results.verdict import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    PARTIAL,
    REPRODUCED,
    Verdict,
    count_rule,
)

A1_SVRG_MAX = 1e-6
A1_SGD_MIN = 1e-4
A1_FACTOR = 10.0
A2_DEEP_MIN = 0.6
A2_SHALLOW_MAX = 0.3
A4_RATIO_FULL = 0.5
NOT_EXERCISED = "not exercised"


def _sci(x: float) -> str:
    """``1e-06`` written as ``1e-6``."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


A1_RULE = ("step size of each arm tuned on tuning seeds (mean final suboptimality, x2 grid, bracketed), then "
           "5 paired eval seeds; paired t-test of log10 suboptimality SVRG - SGD. Reproduced if p < 0.05, "
           f"SVRG ≤ {_sci(A1_SVRG_MAX)} and SGD ≥ {_sci(A1_SGD_MIN)} on every eval seed; partially if p < 0.05 and "
           f"SVRG ≤ SGD/{A1_FACTOR:g} on every eval seed but a threshold fails; contradicted if SGD is lower at "
           "p < 0.05; "
           "otherwise not reproduced. Protocol caps apply (an unbracketed arm, an unstable winner, too few seeds)")
A2_RULE = ("a diagnostic at the paper's fixed SGD settings (no tuned comparison): reproduced if monotone in depth, "
           f"depth-8 ≥ {A2_DEEP_MIN:g} and depth-0 ≤ {A2_SHALLOW_MAX:g}; partially if one of the two; not reproduced "
           "if neither; contradicted if depth-8 < depth-0")
A4_RULE = ("estimator comparison at equal lr: per lr, the geometric mean of the per-seed error ratio with a 95% "
           "interval (paired t on log error). Reproduced if the ratio is < 1 (p < 0.05) and "
           f"≤ {A4_RATIO_FULL:g} at every lr where both arms ran, and STORM's tuned train loss is not worse (paired, "
           "p < 0.05); partially if the ratio is < 1 (p < 0.05) at every such lr; contradicted if it is > 1 "
           "(p < 0.05) at every such lr and STORM's tuned loss is worse (p < 0.05); otherwise not reproduced. "
           "Protocol caps apply")




# ---- summaries ---------------------------------------------------------------------------------------------------
@dataclass
class ConvexArm(ArmSummary):
    """A1's tuned arm: its eval ``finals`` are log10 suboptimality (the tuned metric); ``subopt`` holds the
    suboptimality itself per eval seed, from the lowest value any run reached (inf where a seed diverged)."""

    subopt: list[float]


@dataclass
class ConvexSummary(TunedSummary):
    """A1: SVRG and SGD tuned on the logistic-regression finite sum, and f* (by L-BFGS; ``f_star_used``: the lowest
    value seen, f* unless a run beat it), the problem (lambda, n examples) and the gradient-pass budget."""

    arms: dict[str, ConvexArm]
    f_star: float
    f_star_grad_norm: float
    f_star_used: float
    f_star_lowered_by: float
    lam: float
    n: int
    passes: int


@dataclass
class Network(Summary):
    """One network of A2's model family: its name, depth (weight layers), model spec and parameter count."""

    name: str
    depth: int
    model: dict[str, Any]
    params: int


@dataclass
class DepthSummary(Summary):
    """A2: the seed-mean SVRG/SGD variance ratio (and its sd over seeds) at the end of ``epoch`` per arm (an MLP
    depth, or with ``networks`` a network of the model family, keyed by name), ``by_fraction`` the seed means at
    each probe point of that epoch; ``depths`` lists the arms shallow to deep."""

    epoch: int
    ratio: dict[str, float | None]
    ratio_sd: dict[str, float]
    by_fraction: dict[str, dict[str, float]]
    depths: list[int | str]
    monotone: bool
    networks: list[Network] | None = optional()


@dataclass
class AlphaSvrgSummary(TunedSummary):
    """A3: baseline, SVRG and alpha-SVRG tuned on final train loss, and each arm's gradient-variance metrics on the
    first eval seed (arm -> one point per probe: step and metrics; arms without probes left out)."""

    variance_seed0: dict[str, list[dict[str, float]]]


@dataclass
class StormArm(ArmSummary):
    """A4's tuned arm, with its mean estimator error per eval seed (None where the run diverged)."""

    mean_error: list[float | None]


@dataclass
class StormSummary(TunedSummary):
    """A4: STORM and momentum tuned on final train loss, and at every lr of the shared grid (keyed "0.05", ...) per
    arm its mean estimator error per eval seed (key: the arm) and final train loss (key: ``<arm>_final_loss``)."""

    arms: dict[str, StormArm]
    equal_lr: dict[str, dict[str, list[float | None]]]


@dataclass
class ClusterSummary(StepSummary):
    """A5: the clean and noisy arms tuned (clean: train loss; noisy: minus clean val accuracy), K=10's f*T runs
    (``short``), and the noisy arms' test accuracy (%) per eval seed."""

    test_acc: dict[str, list[float | None]]


def _g(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3g}"


def _untuned(s: TunedSummary, *arms: str) -> str | None:
    dead = [a for a in arms if s.arms[a].lr is None]
    return f"{', '.join(dead)} diverged at every grid point" if dead else None


def _ci(t: Mapping[str, Any] | TestResult) -> str:
    ci = t["ci95"] if isinstance(t, Mapping) else t.ci95
    return "n/a" if ci is None else f"[{ci[0]:+.3g}, {ci[1]:+.3g}]"


# ---- A1 ----------------------------------------------------------------------------------------------------------
# The arms' eval ``finals`` (the tuned metric) are log10 suboptimality; ``subopt`` holds the suboptimality itself.
def a1_test(s: ConvexSummary) -> TestResult:
    """Paired t-test over eval seeds of log10 suboptimality, SVRG - SGD, each at its tuned lr."""
    return paired_test(arm_eval(s, "svrg").metrics, arm_eval(s, "sgd").metrics)


def judge_convex(s: ConvexSummary) -> Verdict:
    dead = _untuned(s, "svrg", "sgd")
    if dead:
        return Verdict(INCONCLUSIVE, {}, [dead])
    sv, sg = s.arms["svrg"].subopt, s.arms["sgd"].subopt
    test = a1_test(s)
    checks: dict[str, Any] = {
        f"SVRG<={A1_SVRG_MAX:g} every eval seed": all(a <= A1_SVRG_MAX for a in sv),
        f"SGD>={A1_SGD_MIN:g} every eval seed": all(b >= A1_SGD_MIN for b in sg),
        f"SVRG<=SGD/{A1_FACTOR:g} every eval seed": all(a <= b / A1_FACTOR for a, b in zip(sv, sg, strict=True)),
        "log10 SVRG < log10 SGD (paired p<0.05)": test.significant}
    reasons = [f"eval seed {i}: SVRG {_g(a)} (lr {s.arms['svrg'].lr:g}) vs SGD {_g(b)} "
               f"(lr {s.arms['sgd'].lr:g})" for i, (a, b) in enumerate(zip(sv, sg, strict=True))]
    reasons.append(f"paired t on log10 suboptimality, SVRG - SGD = {_g(test.diff)} decades, 95% CI {_ci(test)}, "
                   f"p = {_g(test.p)} (n = {test.n})" + (f"; {test.note}" if test.note else ""))
    if test.significant_opposite:
        status = CONTRADICTED
    elif not test.significant or not checks[f"SVRG<=SGD/{A1_FACTOR:g} every eval seed"]:
        status = NOT_REPRODUCED
    elif checks[f"SVRG<={A1_SVRG_MAX:g} every eval seed"] and checks[f"SGD>={A1_SGD_MIN:g} every eval seed"]:
        status = REPRODUCED
    else:
        status = PARTIAL
    return finish(status, checks, reasons, s, "svrg", ["sgd"])


def protocol_test_convex(s: ConvexSummary) -> dict[str, Any] | None:
    if _untuned(s, "svrg", "sgd"):
        return None
    return {**a1_test(s).to_record(), "scale": "log10 suboptimality (SVRG - SGD, decades)"}


def headline_convex(s: ConvexSummary) -> str:
    dead = _untuned(s, "svrg", "sgd")
    if dead:
        return f"no comparison ({dead})"
    sv, sg = s.arms["svrg"], s.arms["sgd"]
    t = a1_test(s)
    return (f"after {s.passes} gradient passes at tuned lrs, suboptimality SVRG max "
            f"{_g(max(sv.subopt))} (lr {sv.lr:g}) vs SGD min {_g(min(sg.subopt))} (lr {sg.lr:g}) over "
            f"{sv.n} eval seeds; log10 gap {_g(t.diff)} decades, 95% CI {_ci(t)}; f* by L-BFGS, ||∇f|| "
            f"{_g(s.f_star_grad_norm)}")


# ---- A2 ----------------------------------------------------------------------------------------------------------
def judge_depth(s: DepthSummary) -> Verdict:
    """MLP depths or, with ``s.networks`` (the paper preset's model family), networks ordered shallow to deep:
    the same rule on the ratio of the shallowest and the deepest arm."""
    ratios = [s.ratio.get(str(d)) for d in s.depths]
    family = s.networks is not None
    if any(r is None for r in ratios):
        return Verdict(INCONCLUSIVE, {}, ["a network produced no ratio" if family else "a depth produced no ratio"])
    shallow, deep = ratios[0], ratios[-1]
    checks = {"monotone in depth": bool(s.monotone),
              f"deepest>={A2_DEEP_MIN:g} and shallowest<={A2_SHALLOW_MAX:g}": deep >= A2_DEEP_MIN and
              shallow <= A2_SHALLOW_MAX}
    by = "network (shallow to deep)" if family else "depth"
    reasons = [f"end-of-epoch-{s.epoch} ratio by {by}: " +
               ", ".join(f"{d}: {r:.3f}" for d, r in zip(s.depths, ratios, strict=True))]
    return count_rule(checks, partial_at_least=1, contradicted=deep < shallow, reasons=reasons)


def headline_depth(s: DepthSummary) -> str:
    if s.networks is not None:
        return "SVRG/SGD variance ratio at the end of epoch {}, shallow to deep: {}".format(
            s.epoch, ", ".join(f"{d} {_g(s.ratio.get(str(d)))}±{_g(s.ratio_sd.get(str(d)))}" for d in s.depths))
    return "SVRG/SGD variance ratio at the end of epoch {}: {}".format(
        s.epoch, ", ".join(f"depth {d} {_g(s.ratio.get(str(d)))}±{_g(s.ratio_sd.get(str(d)))}" for d in s.depths))


# ---- A3 ----------------------------------------------------------------------------------------------------------
A3_ARMS = ("alpha_svrg", "baseline", "svrg")


def judge_alpha_svrg(s: AlphaSvrgSummary) -> Verdict:
    """alpha-SVRG below the baseline (paired, p < 0.05) is the claim; SVRG above it (paired, p < 0.05) is the
    second half of the paper's picture."""
    dead = _untuned(s, *A3_ARMS)
    if dead:
        return Verdict(INCONCLUSIVE, {}, [dead])
    alpha = paired_test(arm_eval(s, "alpha_svrg").metrics, arm_eval(s, "baseline").metrics)
    svrg = paired_test(arm_eval(s, "baseline").metrics, arm_eval(s, "svrg").metrics)  # base < SVRG: SVRG raises it
    status, reasons = loss_verdict(alpha)
    reasons[0] = reasons[0].replace("method - baseline", "alpha-SVRG - baseline")
    svrg_check: bool | str = svrg.significant
    if svrg.significant and not s.arms["svrg"].bracketed:
        svrg_check = "SVRG not bracketed"  # its loss may be an artefact of unfinished tuning: counts as not held
    checks: dict[str, Any] = {"L(alpha-SVRG) < L(base) (paired p<0.05)": alpha.significant,
                              "L(SVRG) > L(base) (paired p<0.05)": svrg_check}
    reasons.append(f"SVRG - baseline = {_g(None if svrg.diff is None else -svrg.diff)}, 95% CI "
                   f"{'n/a' if svrg.ci95 is None else f'[{-svrg.ci95[1]:+.3g}, {-svrg.ci95[0]:+.3g}]'}, "
                   f"p(SVRG higher) = {_g(svrg.p)}")
    if status == REPRODUCED and svrg_check is not True:
        status = PARTIAL
    return finish(status, checks, reasons, s, "alpha_svrg", ["baseline"])


def protocol_test_alpha_svrg(s: AlphaSvrgSummary) -> dict[str, Any] | None:
    t = loss_test_record(s, "alpha_svrg", "baseline")
    if t is None:
        return None
    return {**t, "compares": "alpha_svrg - baseline", "svrg_minus_baseline": loss_test_record(s, "svrg", "baseline")}


def headline_alpha_svrg(s: AlphaSvrgSummary) -> str:
    dead = _untuned(s, *A3_ARMS)
    if dead:
        return f"no comparison ({dead})"
    head = comparison_headline(s, "alpha_svrg", ["baseline", "svrg"])
    t = loss_test_record(s, "svrg", "baseline")
    extra = "" if not t or t["diff"] is None else f"; svrg - baseline = {t['diff']:+.4f} {_ci(t)}"
    return f"final train loss: {head}{extra}"


# ---- A4 ----------------------------------------------------------------------------------------------------------
def _finite_all(xs: Sequence[float | None]) -> bool:
    return bool(xs) and all(x is not None and math.isfinite(x) for x in xs)


def error_ratios(s: StormSummary) -> dict[str, dict[str, Any]]:
    """Per lr of the shared grid: STORM / momentum estimator error over eval seeds (geometric mean of the per-seed
    ratios, with the 95% interval and one-sided p from a paired t-test on log errors), or why there is none."""
    out: dict[str, dict[str, Any]] = {}
    for lr, e in s.equal_lr.items():
        st, mo = e["storm"], e["momentum"]
        div = {a: f"{sum(not (x is not None and math.isfinite(x)) for x in e[a])}/{len(e[a])}"
               for a in ("storm", "momentum")}
        if not _finite_all(st) or not _finite_all(mo):
            out[lr] = {"status": "diverged", "diverged": div}
            continue
        if not exercised(sum(st), sum(mo)):
            out[lr] = {"status": NOT_EXERCISED, "diverged": div}
            continue
        t = paired_test([math.log(max(x, 1e-300)) for x in st], [math.log(max(x, 1e-300)) for x in mo])
        out[lr] = {"status": "compared", "ratio": math.exp(t.diff) if t.diff is not None else None,
                   "ci95": None if t.ci95 is None else [math.exp(t.ci95[0]), math.exp(t.ci95[1])],
                   "p_below_1": t.p, "p_above_1": t.p_opposite, "n": t.n, "diverged": div}
    return out


def _ratio_ci(r: Mapping[str, Any]) -> str:
    ci = r.get("ci95") or [None, None]
    return f"[{_g(ci[0])}, {_g(ci[1])}]"


def _storm_loss(s: StormSummary) -> TestResult:
    return paired_test(arm_eval(s, "storm").metrics, arm_eval(s, "momentum").metrics)


def judge_storm(s: StormSummary) -> Verdict:
    """P10: the claim is judged on the error ratio at equal lrs; the tuned train-loss comparison is a separate
    check (STORM's loss not significantly worse)."""
    ratios = error_ratios(s)
    compared = {lr: r for lr, r in ratios.items() if r["status"] == "compared"}
    reasons = [f"lr {lr}: " + (f"error ratio STORM/momentum {_g(r['ratio'])}, 95% CI {_ratio_ci(r)}, "
                               f"p(<1) = {_g(r['p_below_1'])}" if r["status"] == "compared"
                               else f"{r['status']} (diverged STORM {r['diverged']['storm']}, momentum "
                                    f"{r['diverged']['momentum']})") for lr, r in ratios.items()]
    if not compared:
        return Verdict(INCONCLUSIVE, {"error ratio at equal lr": NOT_EXERCISED},
                       reasons + ["no lr of the shared grid where both estimators ran on every eval seed"])
    below = all(r["p_below_1"] is not None and r["p_below_1"] < 0.05 for r in compared.values())
    half = below and all(r["ratio"] <= A4_RATIO_FULL for r in compared.values())
    above = all(r["p_above_1"] is not None and r["p_above_1"] < 0.05 for r in compared.values())
    checks: dict[str, Any] = {"error ratio < 1 at every compared lr (p<0.05)": below,
                              f"error ratio <= {A4_RATIO_FULL:g} at every compared lr": half}
    dead = _untuned(s, "storm", "momentum")
    if dead:
        checks["STORM's tuned train loss not worse"] = NOT_EXERCISED
        loss_worse, loss_ok = False, False
        reasons.append(f"best-vs-best train loss: {dead}")
    else:
        t = _storm_loss(s)
        loss_worse, loss_ok = t.significant_opposite, not t.significant_opposite
        checks["STORM's tuned train loss not worse (paired)"] = loss_ok
        reasons.append(f"best-vs-best final train loss STORM - momentum = {_g(t.diff)}, 95% CI {_ci(t)}, "
                       f"p(STORM worse) = {_g(t.p_opposite)}")
    if above and loss_worse:
        status = CONTRADICTED
    elif half and loss_ok:
        status = REPRODUCED
    elif below:
        status = PARTIAL
    else:
        status = NOT_REPRODUCED
    return finish(status, checks, reasons, s, "storm", ["momentum"])


def protocol_test_storm(s: StormSummary) -> dict[str, Any]:
    loss = None if _untuned(s, "storm", "momentum") else loss_test_record(s, "storm", "momentum")
    return {"kind": "ratio", "compares": "STORM / momentum estimator error at equal lr (paired t on log error)",
            "per_lr": error_ratios(s), "best_vs_best_train_loss": loss}


def headline_storm(s: StormSummary) -> str:
    parts = []
    for lr, r in error_ratios(s).items():
        if r["status"] == "compared":
            parts.append(f"{lr}: {_g(r['ratio'])} {_ratio_ci(r)}")
        else:
            parts.append(f"{lr}: {r['status']}")
    head = "estimator error STORM/momentum at equal lr " + ", ".join(parts)
    if _untuned(s, "storm", "momentum"):
        return head
    return head + "; best-vs-best train loss " + comparison_headline(s, "storm", ["momentum"])


# ---- A5 ----------------------------------------------------------------------------------------------------------
A5_CLEAN = ("k10_clean", "k1_clean")
A5_NOISY = ("k10_noisy", "k1_noisy")


def _noisy_test(s: ClusterSummary) -> TestResult:
    """K=10 test accuracy above K=1's, as a test of minus accuracy (lower is better)."""
    acc = s.test_acc
    neg = [[-x if x is not None else math.inf for x in acc[a]] for a in A5_NOISY]
    return paired_test(neg[0], neg[1])


def _clean_parts(s: ClusterSummary) -> tuple[str, list[str], dict[str, Any]] | None:
    short = s.short.get("k10_clean")
    if short is None or _untuned(s, *A5_CLEAN) or short.lr is None:
        return None
    fT = arm_eval(s, "k10_clean", "short")
    return step_verdict(arm_eval(s, "k10_clean"), arm_eval(s, "k1_clean"), fT, float(short.f), short.ratio)


def judge_cluster(s: ClusterSummary) -> Verdict:
    """Clean labels: P8's step claim (K=10 at f*T vs K=1 at T); noisy labels: P7's paired test of test accuracy.
    Reproduced if both parts are; partially if one part is (at least partially); contradicted if both are; else
    not reproduced. Caps: each pair's bracketing, the winners' stability, the seed counts."""
    clean, noisy_dead = _clean_parts(s), _untuned(s, *A5_NOISY)
    if clean is None or noisy_dead:
        return Verdict(INCONCLUSIVE, {}, [_untuned(s, *A5_CLEAN) or noisy_dead or "no f*T runs"])
    c_status, c_reasons, _ = clean
    n_test = _noisy_test(s)
    n_status, n_reasons = loss_verdict(n_test)
    n_reasons = [r.replace("method - baseline", "minus test acc, K=10 - K=1") for r in n_reasons]
    checks: dict[str, Any] = {f"clean: K=10 reaches K=1's final loss in {s.short['k10_clean'].f:g}T":
                              c_status, "noisy: K=10 test acc > K=1's (paired p<0.05)": n_status}
    statuses = (c_status, n_status)
    if all(x == REPRODUCED for x in statuses):
        status = REPRODUCED
    elif all(x == CONTRADICTED for x in statuses):
        status = CONTRADICTED
    elif any(x in (REPRODUCED, PARTIAL) for x in statuses):
        status = PARTIAL
    else:
        status = NOT_REPRODUCED
    reasons = [f"clean: {r}" for r in c_reasons] + [f"noisy: {r}" for r in n_reasons]
    won = status in (REPRODUCED, PARTIAL)
    capped = [cap_verdict(status, method=arm_tuning(s, method), baselines=[arm_tuning(s, base)],
                          winner_diverged=won and bool(s.arms[method].diverged))
              for method, base in (A5_CLEAN, A5_NOISY)]
    caps = [(st, c) for st, c in capped if c]  # every pair's reason is reported, the strongest cap applies
    cap = "; ".join(c for _, c in caps) if caps else None
    if any(st == INCONCLUSIVE for st, _ in caps):
        status = INCONCLUSIVE
    elif caps:
        status = caps[0][0]
    status, cap = with_seed_cap(status, cap, s)
    return Verdict(status, checks, reasons, cap)


def protocol_test_cluster(s: ClusterSummary) -> dict[str, Any] | None:
    clean = _clean_parts(s)
    if clean is None or _untuned(s, *A5_NOISY):
        return None
    n = _noisy_test(s).to_record()
    return {"kind": "steps-at-fT + paired-t", "clean": clean[2],
            "noisy": {**n, "compares": "minus test accuracy, K=10 - K=1 (negative: K=10 more accurate)"},
            "statistic": clean[2].get("statistic"), "p": clean[2].get("p"), "ci95": clean[2].get("ci95")}


def headline_cluster(s: ClusterSummary) -> str:
    clean = _clean_parts(s)
    if clean is None or _untuned(s, *A5_NOISY):
        return "no comparison (an arm diverged at every grid point)"
    sh, k1, k10 = s.short["k10_clean"], s.arms["k1_clean"], s.arms["k10_clean"]
    ratio = ratio_text(short_ratio(sh), "K=1's final")
    acc = s.test_acc
    mean = {a: _mean([x for x in acc[a] if x is not None]) for a in A5_NOISY}
    t = _noisy_test(s)
    gap = "n/a" if t.diff is None else f"{-t.diff:+.2f} pp"
    return (f"clean (our reconstruction): K=10 at {sh.f:g}T {_g(sh.mean)} (lr {_g(sh.lr)}) vs K=1's final "
            f"{_g(k1.mean)} at T (K=10 at T {_g(k10.mean)}){ratio}; noisy test acc K=10 "
            f"{_g(mean['k10_noisy'])} vs K=1 {_g(mean['k1_noisy'])} ({gap})")


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None
