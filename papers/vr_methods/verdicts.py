"""The spec's verdict rules (§6, cpu) for A1-A5, applied to measured summaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
A5_STEP_FRACTION = 0.8


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


# ---- A1 ----------------------------------------------------------------------------------------------------------
def judge_convex(s: Mapping[str, Any]) -> Verdict:
    seeds = s["per_seed"]
    pairs = [(v["svrg"]["best_subopt"], v["sgd"]["best_subopt"]) for v in seeds.values()]
    if not pairs or any(a is None or b is None for a, b in pairs):
        return Verdict(INCONCLUSIVE, {}, ["an arm failed at every lr for some seed"])
    checks = {f"SVRG<={A1_SVRG_MAX:g} every seed": all(a <= A1_SVRG_MAX for a, _ in pairs),
              f"SGD>={A1_SGD_MIN:g} every seed": all(b >= A1_SGD_MIN for _, b in pairs)}
    reasons = [f"seed {k}: best SVRG {_g(v['svrg']['best_subopt'])} (lr {v['svrg']['lr']:g}) vs best SGD "
               f"{_g(v['sgd']['best_subopt'])} (lr {v['sgd']['lr']:g})" for k, v in seeds.items()]
    if any(a > b for a, b in pairs):
        return Verdict(CONTRADICTED, checks, reasons)
    if all(checks.values()):
        return Verdict(REPRODUCED, checks, reasons)
    if all(a <= b / A1_FACTOR for a, b in pairs):
        return Verdict(PARTIAL, checks, reasons)
    return Verdict(NOT_REPRODUCED, checks, reasons)


def headline_convex(s: Mapping[str, Any]) -> str:
    return (f"after {s.get('passes', '?')} gradient passes, best-lr suboptimality SVRG ≤ "
            f"{_g(s['svrg_best_subopt_max'])} "
            f"vs SGD ≥ {_g(s['sgd_best_subopt_min'])} (worst/best seed; f* by L-BFGS, ||∇f|| "
            f"{_g(s['f_star_grad_norm'])})")


# ---- A2 ----------------------------------------------------------------------------------------------------------
def judge_depth(s: Mapping[str, Any]) -> Verdict:
    ratios = [s["ratio"].get(str(d)) for d in s["depths"]]
    if any(r is None for r in ratios):
        return Verdict(INCONCLUSIVE, {}, ["a depth produced no ratio"])
    shallow, deep = ratios[0], ratios[-1]
    checks = {"monotone in depth": bool(s["monotone"]),
              f"deepest>={A2_DEEP_MIN:g} and shallowest<={A2_SHALLOW_MAX:g}": deep >= A2_DEEP_MIN and
              shallow <= A2_SHALLOW_MAX}
    reasons = [f"end-of-epoch-{s['epoch']} ratio by depth: " +
               ", ".join(f"{d}: {r:.3f}" for d, r in zip(s["depths"], ratios, strict=True))]
    return count_rule(checks, partial_at_least=1, contradicted=deep < shallow, reasons=reasons)


def headline_depth(s: Mapping[str, Any]) -> str:
    return "SVRG/SGD variance ratio at the end of epoch {}: {}".format(
        s["epoch"], ", ".join(f"depth {d} {_g(s['ratio'].get(str(d)))}±{_g(s['ratio_sd'].get(str(d)))}"
                              for d in s["depths"]))


# ---- A3 ----------------------------------------------------------------------------------------------------------
def judge_alpha_svrg(s: Mapping[str, Any]) -> Verdict:
    if "alpha_minus_base" not in s or "svrg_minus_base" not in s:
        return Verdict(INCONCLUSIVE, {}, ["an arm failed at every lr"])
    d_alpha, se = s["alpha_minus_base"], s["se_alpha_base"]
    d_svrg = s["svrg_minus_base"]
    checks = {"L(alpha-SVRG) < L(base) - 2SE": d_alpha < -2 * se, "L(SVRG) > L(base)": d_svrg > 0}
    b = s["best"]
    reasons = [f"final train loss: baseline {b['baseline']['mean']:.4f} (lr {b['baseline']['lr']:g}), SVRG "
               f"{b['svrg']['mean']:.4f} (lr {b['svrg']['lr']:g}), alpha-SVRG {b['alpha_svrg']['mean']:.4f} "
               f"(lr {b['alpha_svrg']['lr']:g})",
               f"alpha-SVRG - base = {d_alpha:+.4f} (2SE {2 * se:.4f}); SVRG - base = {d_svrg:+.4f}"]
    if d_alpha > 2 * se:
        return Verdict(CONTRADICTED, checks, reasons)
    if abs(d_alpha) <= 2 * se:
        return Verdict(NOT_REPRODUCED, checks, reasons)
    return count_rule(checks, partial_at_least=1, reasons=reasons)


def headline_alpha_svrg(s: Mapping[str, Any]) -> str:
    b = s["best"]
    return "final train loss baseline / SVRG / alpha-SVRG: " + " / ".join(
        f"{_g(b[a]['mean'])}±{_g(b[a]['sd'])}" for a in ("baseline", "svrg", "alpha_svrg"))


# ---- A4 ----------------------------------------------------------------------------------------------------------
def judge_storm(s: Mapping[str, Any]) -> Verdict:
    if "error_ratio" not in s:
        return Verdict(INCONCLUSIVE, {}, ["an arm failed at every lr"])
    ratio, gap, se = s["error_ratio"], s["loss_gap"], s["loss_se"]
    checks = {f"error ratio<={A4_RATIO_FULL:g}": ratio <= A4_RATIO_FULL, "error ratio<1": ratio < 1,
              "STORM loss not worse by >2SE": gap <= 2 * se}
    b = s["best"]
    reasons = [f"mean ||d_t - grad F||^2: STORM {b['storm']['error']['mean']:.4g} (lr {b['storm']['error']['lr']:g}) "
               f"vs momentum {b['momentum']['error']['mean']:.4g} (lr {b['momentum']['error']['lr']:g}): ratio "
               f"{ratio:.3f}", f"final train loss gap STORM - momentum {gap:+.4f} (2SE {2 * se:.4f})"]
    if ratio >= 1 and gap > 2 * se:
        return Verdict(CONTRADICTED, checks, reasons)
    if ratio <= A4_RATIO_FULL and gap <= 2 * se:
        return Verdict(REPRODUCED, checks, reasons)
    if ratio < 1:
        return Verdict(PARTIAL, checks, reasons)
    return Verdict(NOT_REPRODUCED, checks, reasons)


def headline_storm(s: Mapping[str, Any]) -> str:
    if "error_ratio" not in s:
        return "no comparison (an arm failed at every lr)"
    b = s["best"]
    return (f"estimator error ratio STORM/momentum {s['error_ratio']:.3f} at best lrs "
            f"({b['storm']['error']['lr']:g} / {b['momentum']['error']['lr']:g}); final train loss "
            f"{_g(b['storm']['loss']['mean'])} vs {_g(b['momentum']['loss']['mean'])}")


# ---- A5 ----------------------------------------------------------------------------------------------------------
def judge_cluster(s: Mapping[str, Any]) -> Verdict:
    if "clean" not in s or "noisy" not in s:
        return Verdict(INCONCLUSIVE, {}, ["an arm failed at every lr"])
    c, n = s["clean"], s["noisy"]
    frac = c["step_fraction"]
    checks = {f"K=10 steps<={A5_STEP_FRACTION:g}xK=1": frac is not None and frac <= A5_STEP_FRACTION,
              "noisy test acc K=10>=K=1": n["acc_gap"] >= 0}
    reasons = [f"K=10 reaches K=1's final train loss {c['target']:.4f} at step {c['hit_step']} of {c['steps']}"
               if c["hit_step"] is not None else f"K=10 never reaches K=1's final train loss {c['target']:.4f}",
               f"final train loss gap K10-K1 {c['loss_gap']:+.4f} (2SE {2 * c['se']:.4f})",
               f"noisy test acc gap K10-K1 {n['acc_gap']:+.2f} pp (2SE {2 * n['se']:.2f})"]
    slower = c["loss_gap"] > 2 * c["se"]
    return count_rule(checks, partial_at_least=1, contradicted=slower and n["acc_gap"] < 0, reasons=reasons)


def headline_cluster(s: Mapping[str, Any]) -> str:
    if "clean" not in s or "noisy" not in s:
        return "no comparison (an arm failed at every lr)"
    b, c = s["best"], s["clean"]
    frac = "never" if c["step_fraction"] is None else f"{c['step_fraction']:.2f}"
    return (f"K=10 needs {frac} of K=1's steps to K=1's final train loss (clean; final "
            f"{_g(b['k10_clean']['loss']['mean'])} vs {_g(b['k1_clean']['loss']['mean'])}); noisy test acc "
            f"{_g(b['k10_noisy']['test_acc']['mean'])} vs {_g(b['k1_noisy']['test_acc']['mean'])}")
