"""The verdict rules of spec §6 (B1-B4), applied to a run's summary. Thresholds live here, once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from common.results.verdict import CONTRADICTED, INCONCLUSIVE, NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict

B1_LMC_MIN = 4  # of 5 seeds
B1_EG_MAX = 1
B1_PARTIAL_MIN = 2
B2_SE = 2.0
B3_SE = 3.0
B3_MIN_RB = 0.02
B4_KL = 0.01
B4_FACTOR = 10.0


def _fmt(v: Any) -> str:
    return "never" if v is None else str(v)


# --- B1 -------------------------------------------------------------------------------------------------------
def judge_deepsea(s: Mapping[str, Any]) -> Verdict:
    at = s["sizes"][f"N{s['verdict_size']}"]
    n = s["seeds"]
    lmc, eg = at["lmc"]["seeds_solved"], at["egreedy"]["seeds_solved"]
    lmc_min = math.ceil(B1_LMC_MIN * n / 5)
    eg_max = math.floor(B1_EG_MAX * n / 5)
    checks = {f"lmc_solves_>={lmc_min}_of_{n}": lmc >= lmc_min, f"egreedy_solves_<={eg_max}_of_{n}": eg <= eg_max}
    reasons = [f"N={s['verdict_size']}: LMC-LSVI solved in {lmc}/{n} seeds (first success "
               f"{[_fmt(x) for x in at['lmc']['first_success']]}), eps-greedy in {eg}/{n}"]
    if eg > lmc:
        return Verdict(CONTRADICTED, checks, reasons)
    if all(checks.values()):
        return Verdict(REPRODUCED, checks, reasons)
    if lmc >= math.ceil(B1_PARTIAL_MIN * n / 5) and lmc > eg:
        return Verdict(PARTIAL, checks, reasons)
    return Verdict(NOT_REPRODUCED, checks, reasons)


def headline_deepsea(s: Mapping[str, Any]) -> str:
    parts = []
    for key, v in s["sizes"].items():
        lmc, eg = v["lmc"], v["egreedy"]
        parts.append(f"{key}: LMC solved {lmc['seeds_solved']}/{s['seeds']} (frac {lmc['fraction_solved_mean']:.2f}),"
                     f" eps-greedy {eg['seeds_solved']}/{s['seeds']}")
    return "; ".join(parts)


# --- B2 -------------------------------------------------------------------------------------------------------
def judge_nchain(s: Mapping[str, Any]) -> Verdict:
    lmc, dqn = s["best"]["lmc"], s["best"]["dqn"]
    diff = lmc["return"] - dqn["return"]
    se = math.sqrt(lmc["return_se"] ** 2 + dqn["return_se"] ** 2)
    checks = {"lmc_above_dqn_by_2se": diff > B2_SE * se, "lmc_above_dqn": diff > 0}
    reasons = [f"N={s['n']}: LMC {lmc['return']:.2f} vs DQN {dqn['return']:.2f} (diff {diff:+.2f}, SE {se:.2f}, "
               f"{s['seeds']} seeds; configs chosen on seed 0: LMC {lmc.get('config')}, DQN {dqn.get('config')})"]
    if "best_by_mean" in s:  # sensitivity, reported only
        bl, bd = s["best_by_mean"]["lmc"], s["best_by_mean"]["dqn"]
        d2, se2 = bl["return"] - bd["return"], math.sqrt(bl["return_se"] ** 2 + bd["return_se"] ** 2)
        reasons.append(f"sensitivity (not judged), configs chosen on the all-seed mean: LMC {bl['return']:.2f} "
                       f"({bl['config']}) vs DQN {bd['return']:.2f} ({bd['config']}), diff {d2:+.2f}, SE {se2:.2f}")
    if diff < -B2_SE * se:
        return Verdict(CONTRADICTED, checks, reasons)
    status = REPRODUCED if checks["lmc_above_dqn_by_2se"] else PARTIAL if diff > 0 else NOT_REPRODUCED
    return Verdict(status, checks, reasons)


def headline_nchain(s: Mapping[str, Any]) -> str:
    b, sm = s["best"], s["small"]["best"]
    out = (f"N={s['n']} return LMC {b['lmc']['return']:.2f}±{b['lmc']['return_sd']:.2f} vs DQN "
           f"{b['dqn']['return']:.2f}±{b['dqn']['return_sd']:.2f} (tuned on seed 0)")
    if "best_by_mean" in s:
        bm = s["best_by_mean"]
        out += f", {bm['lmc']['return']:.2f} vs {bm['dqn']['return']:.2f} (tuned on all seeds)"
    small = f"; N={s['small']['n']} LMC {sm['lmc']['return']:.2f} vs DQN {sm['dqn']['return']:.2f}"
    return out + small + f" (n={s['seeds']})"


# --- B3 -------------------------------------------------------------------------------------------------------
def _biased(st: Mapping[str, Any]) -> bool:
    return st["b2"] > B3_SE * st["b2_se"] and st["rb"] >= B3_MIN_RB


def judge_aggregation(s: Mapping[str, Any]) -> Verdict:
    st = s["stats"]
    dl, dr = st["deltal_a1"], st["drgrpo"]
    grpo_dapo_biased = _biased(st["grpo"]) and _biased(st["dapo"])
    dl_unbiased = dl["b2"] <= B3_SE * dl["b2_se"]
    lower_var = dl["trvar_norm"] < dr["trvar_norm"]
    checks = {"grpo_and_dapo_biased": grpo_dapo_biased, "deltal_unbiased": dl_unbiased,
              "deltal_var_below_drgrpo": lower_var}
    reasons = [f"{k}: rb {v['rb']:.4f} (b2 {v['b2']:.2e} ± {v['b2_se']:.1e}), tr Var/|gJ|^2 {v['trvar_rel']:.3g}"
               for k, v in st.items()]
    if dl["rb"] > st["grpo"]["rb"] and not lower_var:
        return Verdict(CONTRADICTED, checks, reasons)
    if not lower_var:
        return Verdict(NOT_REPRODUCED, checks, reasons)
    return Verdict(REPRODUCED if all(checks.values()) else PARTIAL, checks, reasons)


def headline_aggregation(s: Mapping[str, Any]) -> str:
    st = s["stats"]
    parts = [f"{k} rb {st[k]['rb']:.3f} var {st[k]['trvar_rel']:.2f}" for k in
             ("grpo", "dapo", "drgrpo", "deltal_a1", "deltal_a075") if k in st]
    return "relative bias / tr Var(g/c)/|gJ|^2: " + ", ".join(parts)


# --- B4 -------------------------------------------------------------------------------------------------------
def judge_gvpo(s: Mapping[str, Any]) -> Verdict:
    g, r = s["best"]["gvpo"], s["best"]["grpo"]
    if any(not math.isfinite(v["kl"]) for arm in (g, r) for v in arm.values()):
        return Verdict(INCONCLUSIVE, {}, ["a run diverged (non-finite KL)"])
    kl = {mu: max(v["kl"], 0.0) for mu, v in g.items()}
    gvpo_all = all(v < B4_KL for v in kl.values())
    off = [mu for mu in ("uniform", "stale") if mu in g]
    contrast = all(r[mu]["kl"] >= B4_FACTOR * kl[mu] for mu in off)
    checks = {f"gvpo_kl_below_{B4_KL}_all_mu": gvpo_all, f"grpo_kl_>={B4_FACTOR:g}x_gvpo_off_policy": contrast}
    reasons = [f"mu={mu}: GVPO KL {kl[mu]:.3g} (lr {g[mu]['lr']:g}), GRPO-style KL {r[mu]['kl']:.3g} "
               f"(lr {r[mu]['lr']:g})" for mu in g]
    if any(kl[mu] > r[mu]["kl"] for mu in off):
        return Verdict(CONTRADICTED, checks, reasons)
    if gvpo_all and contrast:
        return Verdict(REPRODUCED, checks, reasons)
    if kl.get("on_policy", math.inf) < B4_KL:
        return Verdict(PARTIAL, checks, reasons)
    return Verdict(NOT_REPRODUCED, checks, reasons)


def headline_gvpo(s: Mapping[str, Any]) -> str:
    g, r = s["best"]["gvpo"], s["best"]["grpo"]
    return "KL(pi*||pi) GVPO vs GRPO-style: " + ", ".join(
        f"{mu} {max(g[mu]['kl'], 0.0):.2g} vs {r[mu]['kl']:.2g}" for mu in g)
