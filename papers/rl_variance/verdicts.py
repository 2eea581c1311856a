"""The verdict rules of B1-B4, applied to a run's summary. Thresholds live here, once.

B2 and B4 compare tuned arms and follow the tuning-and-evidence protocol (tuning seeds choose, eval seeds judge,
paired tests, caps for unbracketed tuning); B1 and B3 have no tuned comparison (a fixed configuration, an exact
computation) and keep their threshold rules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from common.results.judges import loss_claim, loss_test_record, with_seed_cap
from common.results.protocol import ArmTuning, TestResult, cap_verdict, paired_test
from common.results.summary import Summary
from common.results.sweep import ArmSummary, TunedSummary
from common.results.verdict import CONTRADICTED, INCONCLUSIVE, NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict

B1_LMC_MIN = 4  # of 5 seeds
B1_EG_MAX = 1
B1_PARTIAL_MIN = 2
B3_SE = 3.0
B3_MIN_RB = 0.02
B4_KL = 0.01
B4_FACTOR = 10.0


def _fmt(v: int | None) -> str:
    return "never" if v is None else str(v)


# --- B1 -------------------------------------------------------------------------------------------------------
B1_RULE = (f"reproduced if LMC solves ≥{B1_LMC_MIN}/5 seeds and ε-greedy ≤{B1_EG_MAX}/5; partially if LMC solves "
           f"{B1_PARTIAL_MIN}-{B1_LMC_MIN - 1}/5 (more than ε-greedy); not reproduced if LMC ≤{B1_PARTIAL_MIN - 1}/5; "
           "contradicted if ε-greedy solves more seeds than LMC")


@dataclass
class Solved(Summary):
    """One exploration method at one DeepSea size over the eval seeds: how many seeds ever reached the treasure,
    each seed's first successful episode (None: never) and the mean fraction of episodes solved."""

    seeds_solved: int
    first_success: list[int | None]
    fraction_solved_mean: float


@dataclass
class DeepSeaSize(Summary):
    """One DeepSea size N: its episode budget, Langevin steps per level J, and both methods' outcomes."""

    n: int
    episodes: int
    J: int
    lmc: Solved
    egreedy: Solved


@dataclass
class InvBetaRun(Summary):
    """One 1/beta of the temperature sweep (one seed): first successful episode (None: never), fraction solved."""

    first_success: int | None
    fraction_solved: float


@dataclass
class TemperatureSweep(Summary):
    """LMC-LSVI at each 1/beta (keyed "0.5", ...) on one seed at one size; reported, not judged."""

    n: int
    seed: int
    episodes: int
    by_inv_beta: dict[str, InvBetaRun]


@dataclass
class DeepSeaSummary(Summary):
    """B1's measurement: per size (keyed "N20", ...) both methods' successes, the size the verdict reads, the
    number of eval seeds, and the 1/beta sweep."""

    sizes: dict[str, DeepSeaSize]
    verdict_size: int
    seeds: int
    temperature: TemperatureSweep


def judge_deepsea(s: DeepSeaSummary) -> Verdict:
    at = s.sizes[f"N{s.verdict_size}"]
    n = s.seeds
    lmc, eg = at.lmc.seeds_solved, at.egreedy.seeds_solved
    lmc_min = math.ceil(B1_LMC_MIN * n / 5)
    eg_max = math.floor(B1_EG_MAX * n / 5)
    checks = {f"lmc_solves_>={lmc_min}_of_{n}": lmc >= lmc_min, f"egreedy_solves_<={eg_max}_of_{n}": eg <= eg_max}
    reasons = [f"N={s.verdict_size}: LMC-LSVI solved in {lmc}/{n} seeds (first success "
               f"{[_fmt(x) for x in at.lmc.first_success]}), eps-greedy in {eg}/{n}"]
    if eg > lmc:
        return Verdict(CONTRADICTED, checks, reasons)
    if all(checks.values()):
        return Verdict(REPRODUCED, checks, reasons)
    if lmc >= math.ceil(B1_PARTIAL_MIN * n / 5) and lmc > eg:
        return Verdict(PARTIAL, checks, reasons)
    return Verdict(NOT_REPRODUCED, checks, reasons)


def headline_deepsea(s: DeepSeaSummary) -> str:
    parts = []
    for key, v in s.sizes.items():
        lmc, eg = v.lmc, v.egreedy
        parts.append(f"{key}: LMC solved {lmc.seeds_solved}/{s.seeds} (frac {lmc.fraction_solved_mean:.2f}),"
                     f" eps-greedy {eg.seeds_solved}/{s.seeds}")
    return "; ".join(parts)


# --- B2 -------------------------------------------------------------------------------------------------------
B2_RULE = ("paired one-sided t-test over eval seeds of the regret (optimal return 10 minus greedy return) of LMC - "
           "DQN, each at its own configuration tuned on the tuning seeds (lr with bracketing, plus its exploration "
           "knob): reproduced if LMC's regret is lower at p < 0.05; contradicted if DQN's is lower at p < 0.05; "
           "otherwise not reproduced. The paper's size (7.31 vs 5.52) is on its own chain and budget, so it is not "
           "held against our interval. A win over an unbracketed DQN, or a loss of an unbracketed LMC, is "
           "inconclusive")


@dataclass
class NChainArm(ArmSummary):
    """A tuned B2 arm (its metric is the regret) plus its exploration knob: the knob's name, the chosen value
    (None when every configuration diverged), the values tied with it, and the eval-seed greedy returns (None
    where the regret was not finite) and their mean."""

    knob: str
    knob_value: float | None
    knob_tied: list[float]
    returns: list[float | None]
    return_mean: float | None


@dataclass
class SmallChainArm(Summary):
    """One arm's chosen configuration run on the shorter chain's eval seeds: its greedy returns, mean and sd."""

    lr: float
    knob_value: float | None
    returns: list[float]
    return_mean: float
    return_sd: float


@dataclass
class SmallChain(Summary):
    """The shorter chain (reported only): its length, budget, and the arms that had a chosen lr."""

    n: int
    env_steps: int
    arms: dict[str, SmallChainArm]


@dataclass
class NChainSummary(TunedSummary):
    """B2's measurement: the chain length N the verdict reads, its budget and optimal return, both tuned arms
    (regret as the metric) and the shorter chain."""

    n: int
    env_steps: int
    optimal_return: float
    arms: dict[str, NChainArm]
    small: SmallChain


def judge_nchain(s: NChainSummary) -> Verdict:
    v = loss_claim(s, "lmc", "dqn")
    reasons = list(v.reasons)
    lmc, dqn = s.arms["lmc"], s.arms["dqn"]
    if lmc.return_mean is not None and dqn.return_mean is not None:
        reasons.insert(0, f"N={s.n}: return LMC {lmc.return_mean:.2f} vs DQN {dqn.return_mean:.2f} "
                          f"over eval seeds {s.eval_seeds} (LMC lr {lmc.lr:g}, noise_scale "
                          f"{lmc.knob_value:g}; DQN lr {dqn.lr:g}, eps_final {dqn.knob_value:g})")
    return Verdict(v.status, v.checks, reasons, v.cap)


def test_nchain(s: NChainSummary) -> dict[str, Any] | None:
    return loss_test_record(s, "lmc", "dqn")


def _arm_return(s: NChainSummary, arm: str) -> str:
    a = s.arms[arm]
    if a.return_mean is None:
        return f"{arm} no finite config"
    edge = "" if a.bracketed else f", lr not bracketed ({a.unbracketed_edge})"
    return f"{arm} {a.return_mean:.2f}±{(a.sd or 0.0):.2f} (lr {a.lr:g}, {a.knob} {a.knob_value:g}{edge})"


def headline_nchain(s: NChainSummary) -> str:
    t = loss_test_record(s, "lmc", "dqn")
    out = f"N={s.n} return {_arm_return(s, 'lmc')} vs {_arm_return(s, 'dqn')}"
    if t and t["diff"] is not None:
        ci = "" if t["ci95"] is None else f" [{-t['ci95'][1]:+.2f}, {-t['ci95'][0]:+.2f}]"
        p = "" if t["p"] is None else f", p={t['p']:.3g}"
        out += f"; LMC - DQN return {-t['diff']:+.2f}{ci}{p}"
    sm = s.small.arms
    if "lmc" in sm and "dqn" in sm:
        out += f"; N={s.small.n} (reported) LMC {sm['lmc'].return_mean:.2f} vs DQN {sm['dqn'].return_mean:.2f}"
    return out + f" (eval n={len(s.eval_seeds)})"


# --- B3 -------------------------------------------------------------------------------------------------------
B3_RULE = (f"reproduced if GRPO and DAPO have b2 > {B3_SE:g} SE and rb ≥ {B3_MIN_RB}, ΔL (α=1) has b2 ≤ {B3_SE:g} SE, "
           "and tr Var(ΔL) < tr Var(Dr.GRPO); partially if the variance ordering holds but ΔL is detectably biased "
           "or GRPO/DAPO are not; not reproduced if tr Var(ΔL) ≥ tr Var(Dr.GRPO); contradicted if ΔL is both more "
           "biased than GRPO and higher-variance than Dr.GRPO")


@dataclass
class EstimatorStats(Summary):
    """One aggregator's gradient estimate over ``n`` batches against the exact gradient: the fitted scale c, the
    noise-debiased squared relative bias b2 and its bootstrap SE, rb = sqrt(max(b2, 0)), the plain (noisy) rb,
    and tr Var(g/c), alone and relative to |grad J|^2."""

    c: float
    b2: float
    b2_se: float
    rb: float
    rb_naive: float
    trvar_norm: float
    trvar_rel: float
    n: int


@dataclass
class RLBest(Summary):
    """One aggregator's short RL runs (reported only): the lr with the largest area under the curve, its mean
    final J (and sd over seeds) and its mean J over the run."""

    best_lr: float
    best_final_J: float
    best_mean_J: float
    best_final_J_sd: float


@dataclass
class AggregationSummary(Summary):
    """B3's measurement: per aggregator the bias/variance statistics, the fixed policy's J, mean response length
    and |grad J|, the batch count and group size, the RL runs' best lr per aggregator, and the number of seeds."""

    stats: dict[str, EstimatorStats]
    policy_J: float
    mean_length: float
    grad_norm: float
    batches: int
    group_size: int
    rl: dict[str, RLBest]
    seeds: int


def _biased(st: EstimatorStats) -> bool:
    return st.b2 > B3_SE * st.b2_se and st.rb >= B3_MIN_RB


def judge_aggregation(s: AggregationSummary) -> Verdict:
    st = s.stats
    dl, dr = st["deltal_a1"], st["drgrpo"]
    grpo_dapo_biased = _biased(st["grpo"]) and _biased(st["dapo"])
    dl_unbiased = dl.b2 <= B3_SE * dl.b2_se
    lower_var = dl.trvar_norm < dr.trvar_norm
    checks = {"grpo_and_dapo_biased": grpo_dapo_biased, "deltal_unbiased": dl_unbiased,
              "deltal_var_below_drgrpo": lower_var}
    reasons = [f"{k}: rb {v.rb:.4f} (b2 {v.b2:.2e} ± {v.b2_se:.1e}), tr Var/|gJ|^2 {v.trvar_rel:.3g}"
               for k, v in st.items()]
    if dl.rb > st["grpo"].rb and not lower_var:
        return Verdict(CONTRADICTED, checks, reasons)
    if not lower_var:
        return Verdict(NOT_REPRODUCED, checks, reasons)
    return Verdict(REPRODUCED if all(checks.values()) else PARTIAL, checks, reasons)


def headline_aggregation(s: AggregationSummary) -> str:
    st = s.stats
    parts = [f"{k} rb {st[k].rb:.3f} var {st[k].trvar_rel:.2f}" for k in
             ("grpo", "dapo", "drgrpo", "deltal_a1", "deltal_a075") if k in st]
    return "relative bias / tr Var(g/c)/|gJ|^2: " + ", ".join(parts)


# --- B4 -------------------------------------------------------------------------------------------------------
B4_RULE = ("per sampling distribution mu, each arm's lr tuned on the tuning seeds (bracketing), KL(pi*||pi_theta) on "
           f"the eval seeds and a paired one-sided t-test of GVPO - GRPO-style: reproduced if GVPO's mean KL < {B4_KL} "
           f"for all three mu and, under uniform and stale sampling, GRPO-style's KL is >= {B4_FACTOR:g}x GVPO's with "
           f"p < 0.05; partially if GVPO < {B4_KL} on-policy only or the contrast fails; not reproduced if GVPO's "
           f"on-policy KL >= {B4_KL}; contradicted if GRPO-style's KL is lower than GVPO's under an off-policy mu at "
           "p < 0.05. A win over an unbracketed GRPO-style arm, or a loss of an unbracketed GVPO arm, is inconclusive")
OFF_POLICY = ("uniform", "stale")


@dataclass
class AnchorOld(Summary):
    """GVPO with anchor=old (reported only): mean KL(pi*||pi_theta) at the start and after each outer iteration,
    its lr and the steps per iteration."""

    kl_by_iteration: list[float]
    lr: float
    every: int


@dataclass
class GVPOSummary(TunedSummary):
    """B4's measurement: every (arm, mu) tuned arm (keyed "gvpo/uniform", ...; the metric is KL(pi*||pi_theta)),
    beta, the step budget, the anchor=old runs and KL(pi*||pi_ref), where every run starts."""

    beta: float
    steps: int
    anchor_old: AnchorOld
    kl_at_ref: float


def _mus(s: GVPOSummary) -> list[str]:
    return [k.split("/", 1)[1] for k in s.arms if k.startswith("gvpo/")]


def _b4_tests(s: GVPOSummary) -> dict[str, TestResult]:
    out = {}
    for mu in _mus(s):
        g, r = s.arms[f"gvpo/{mu}"], s.arms[f"grpo/{mu}"]
        if g.lr is None or r.lr is None:
            continue
        out[mu] = paired_test([_inf(x) for x in g.finals], [_inf(x) for x in r.finals])
    return out


def _inf(x: float | None) -> float:
    return math.inf if x is None or not math.isfinite(float(x)) else float(x)


def judge_gvpo(s: GVPOSummary) -> Verdict:
    mus = _mus(s)
    g = {mu: s.arms[f"gvpo/{mu}"] for mu in mus}
    r = {mu: s.arms[f"grpo/{mu}"] for mu in mus}
    if any(a.mean is None for arm in (g, r) for a in arm.values()):
        return Verdict(INCONCLUSIVE, {}, ["an arm diverged at every lr or on every eval seed (non-finite KL)"])
    tests = _b4_tests(s)
    kl = {mu: max(v.mean, 0.0) for mu, v in g.items()}
    off = [mu for mu in OFF_POLICY if mu in g]
    gvpo_all = all(v < B4_KL for v in kl.values())
    contrast = all(r[mu].mean >= B4_FACTOR * kl[mu] and tests[mu].significant for mu in off)
    checks = {f"gvpo_kl_below_{B4_KL}_all_mu": gvpo_all,
              f"grpo_kl_>={B4_FACTOR:g}x_gvpo_off_policy_p<0.05": contrast}
    reasons = []
    for mu in mus:
        t = tests[mu]
        ci = "n/a" if t.ci95 is None else f"[{t.ci95[0]:+.3g}, {t.ci95[1]:+.3g}]"
        reasons.append(f"mu={mu}: GVPO KL {kl[mu]:.3g} (lr {g[mu].lr:g}), GRPO-style KL {r[mu].mean:.3g} "
                       f"(lr {r[mu].lr:g}); GVPO - GRPO {t.diff:+.3g}, 95% CI {ci}, p = "
                       f"{'n/a' if t.p is None else format(t.p, '.3g')}")
    if any(tests[mu].significant_opposite for mu in off):
        status = CONTRADICTED
    elif gvpo_all and contrast:
        status = REPRODUCED
    elif kl.get("on_policy", math.inf) < B4_KL:
        status = PARTIAL
    else:
        status = NOT_REPRODUCED
    gvpo_t = ArmTuning("gvpo", "lr", 0.0, bracketed=all(g[mu].bracketed for mu in mus))
    gvpo_t.arm = "gvpo (" + ", ".join(mu for mu in mus if not g[mu].bracketed) + ")"
    baselines = [ArmTuning(f"grpo/{mu}", "lr", 0.0, bracketed=bool(r[mu].bracketed)) for mu in off]
    won = status in (REPRODUCED, PARTIAL)
    status, cap = cap_verdict(status, method=gvpo_t, baselines=baselines,
                              winner_diverged=won and any(v.diverged for v in g.values()))
    status, cap = with_seed_cap(status, cap, s)
    return Verdict(status, checks, reasons, cap)


def test_gvpo(s: GVPOSummary) -> dict[str, Any] | None:
    tests = _b4_tests(s)
    if not tests:
        return None
    return {"kind": "paired-t per mu (GVPO - GRPO-style KL)", "per_mu": {mu: t.to_record() for mu, t in tests.items()}}


def headline_gvpo(s: GVPOSummary) -> str:
    parts = []
    for mu in _mus(s):
        g, r = s.arms[f"gvpo/{mu}"], s.arms[f"grpo/{mu}"]
        if g.mean is None or r.mean is None:
            parts.append(f"{mu} diverged")
            continue
        parts.append(f"{mu} {max(g.mean, 0.0):.2g}@{g.lr:g} vs {r.mean:.2g}@{r.lr:g}")
    return f"KL(pi*||pi) GVPO vs GRPO-style (eval n={len(s.eval_seeds)}): " + ", ".join(parts)
