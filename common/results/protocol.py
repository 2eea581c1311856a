"""The tuning-and-evidence protocol every claim that compares arms goes through.

Why it exists: a verdict is only worth what the comparison behind it is worth. An under-tuned baseline
manufactures wins, a best value at the edge of a grid means tuning is unfinished, and a number read off the
middle of a run whose schedule ends later says little about a run that ends there. So, for every arm alike:

- **Seeds.** Tuning seeds choose hyperparameters, a disjoint set of eval seeds measures the chosen ones; a
  number used to choose is never used to judge.
- **Selection** (``tune_arm``): the score of a grid point is the mean over tuning seeds of the claim's
  end-of-schedule metric (lower is better); a point where any tuning seed diverged scores +inf. Points within
  ``delta = max(2 SE of the paired difference, 1e-3 |best|)`` of the best are tied, and the tied point nearest
  the grid's centre (in log space) wins.
- **Bracketing.** The optimum is bracketed when the grid points just outside the tied set were run and are worse
  by more than delta (or diverged). Otherwise the grid grows one step past that edge (at most
  ``max_extensions`` per edge) and the new point runs on the tuning seeds.
- **Evaluation** (``evaluate_arm``): the chosen value runs on every eval seed; a diverged eval run is counted
  (k/n) and scores +inf, never dropped.
- **Tests** (``paired_test``, ``welch_test``): scipy's paired or Welch t-test with a 95% interval of the
  difference.
- **Caps** (``cap_verdict``): a win over an unbracketed baseline, or a loss of an unbracketed method, is
  inconclusive; a winner that diverged on an eval seed is at most partially reproduced.
- **Checks that cannot fire** (``exercised``) are reported as not exercised and count neither way.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.results.verdict import CONTRADICTED, INCONCLUSIVE, NOT_REPRODUCED, PARTIAL, REPRODUCED

INF = math.inf
SELECTION = "mean final {metric} over tuning seeds"

# (value, seed) -> the claim's end-of-schedule metric (lower is better); None, NaN or Inf = diverged
PointFn = Callable[[float, int], float | None]


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def point_score(values: Sequence[float | None]) -> float:
    """A grid point's selection statistic: mean over tuning seeds, +inf when any seed diverged."""
    if not values or not all(finite(v) for v in values):
        return INF
    return statistics.fmean(values)  # type: ignore[arg-type]


def paired_se(a: Sequence[float], b: Sequence[float]) -> float:
    """Standard error of mean(a - b) over paired seeds (0 for one seed)."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    return statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else 0.0


def tie_delta(best: Sequence[float], other: Sequence[float]) -> float:
    """How close to the best a point must be to count as tied with it."""
    return max(2 * paired_se(other, best), 1e-3 * abs(statistics.fmean(best)))


@dataclass
class ArmTuning:
    """One arm's tuning as run: every grid point's per-seed values and score, extensions, the choice."""

    arm: str
    knob: str
    centre: float
    values: dict[float, list[float | None]] = field(default_factory=dict)  # grid value -> per tuning seed
    extensions: dict[str, int] = field(default_factory=lambda: {"low": 0, "high": 0})
    chosen: float | None = None
    bracketed: bool = False
    tied: list[float] = field(default_factory=list)
    unbracketed_edge: str | None = None  # "low" / "high" / "both" when not bracketed
    knob_choice: dict[str, Any] | None = None  # a second, categorical knob tuned with it (``tune_arm_with_knob``)

    @property
    def grid(self) -> list[float]:
        return sorted(self.values)

    def score(self, value: float) -> float:
        return point_score(self.values[value])

    def to_record(self) -> dict[str, Any]:
        return {"knob": self.knob, "grid": self.grid, "extensions": dict(self.extensions),
                "bracketed": self.bracketed, "chosen": self.chosen,
                "scores": {f"{v:g}": self.score(v) for v in self.grid},
                "tuning_values": {f"{v:g}": list(self.values[v]) for v in self.grid},
                "tied": list(self.tied), "unbracketed_edge": self.unbracketed_edge,
                **({"knob_choice": self.knob_choice} if self.knob_choice is not None else {})}


def _log_distance(a: float, b: float) -> float:
    if a > 0 and b > 0:
        return abs(math.log(a) - math.log(b))
    return abs(a - b)


def select(tuning: ArmTuning) -> None:
    """Choose the arm's value and decide whether it is bracketed (sets chosen, tied, bracketed)."""
    grid = tuning.grid
    scores = {v: tuning.score(v) for v in grid}
    ok = [v for v in grid if math.isfinite(scores[v])]
    if not ok:
        tuning.chosen, tuning.tied, tuning.bracketed = None, [], False
        tuning.unbracketed_edge = "low"  # everything diverged: look below
        return
    best = min(ok, key=lambda v: (scores[v], _log_distance(v, tuning.centre)))
    best_vals = [float(x) for x in tuning.values[best]]  # type: ignore[arg-type]
    tied = [v for v in ok if scores[v] - scores[best] <= tie_delta(best_vals, tuning.values[v])]  # type: ignore
    tuning.tied = tied
    tuning.chosen = min(tied, key=lambda v: (_log_distance(v, tuning.centre), v))
    lo, hi = grid.index(min(tied)), grid.index(max(tied))
    low_ok, high_ok = lo > 0, hi < len(grid) - 1  # points outside the tied set are worse by > delta or diverged
    tuning.bracketed = low_ok and high_ok
    tuning.unbracketed_edge = None if tuning.bracketed else ("both" if not (low_ok or high_ok)
                                                            else "low" if not low_ok else "high")


def grid_factor(grid: Sequence[float]) -> float:
    """The grid's spacing (ratio of neighbours, geometric mean); 2 for a single point."""
    g = sorted(float(x) for x in grid)
    if len(g) < 2 or g[0] <= 0:
        return 2.0
    return (g[-1] / g[0]) ** (1 / (len(g) - 1))


def tune_arm(arm: str, grid: Sequence[float], tuning_seeds: Sequence[int], point: PointFn, *,
             knob: str = "lr", max_extensions: int = 2, factor: float | None = None) -> ArmTuning:
    """Run the grid on the tuning seeds, select, and extend past an unbracketed edge (P3, P4)."""
    grid = sorted(float(x) for x in grid)
    factor = factor or grid_factor(grid)
    centre = math.sqrt(grid[0] * grid[-1]) if grid[0] > 0 else (grid[0] + grid[-1]) / 2
    tuning = ArmTuning(arm=arm, knob=knob, centre=centre)

    def run(value: float) -> None:
        tuning.values[value] = [point(value, s) for s in tuning_seeds]

    for v in grid:
        run(v)
    while True:
        select(tuning)
        edge = tuning.unbracketed_edge
        if edge is None:
            return tuning
        want = ["low", "high"] if edge == "both" else [edge]
        grown = False
        for side in want:
            if tuning.extensions[side] >= max_extensions:
                continue
            g = tuning.grid
            new = g[0] / factor if side == "low" else g[-1] * factor
            tuning.extensions[side] += 1
            run(float(f"{new:.6g}"))
            grown = True
        if not grown:
            return tuning


def tune_arm_with_knob(arm: str, grid: Sequence[float], knob: str, knob_values: Sequence[float],
                       tuning_seeds: Sequence[int], point: Callable[[float, float, int], float | None], *,
                       max_extensions: int = 2, factor: float | None = None) -> ArmTuning:
    """Tune the lr together with a second knob that takes a few fixed values (a categorical grid).

    Every knob value (a row) first runs the same lr grid on the tuning seeds. Rows are compared by the score of
    their best lr: rows within ``tie_delta`` of the best row count as tied, and the tied row whose knob value is
    nearest the centre of the knob's values (log space) wins, never the first in grid order (rows equally far
    from the centre: the better score). Then the chosen
    row's lr is bracketed as ``tune_arm`` does (extensions past an unbracketed edge, at most ``max_extensions``
    per edge); extending can only improve that row, so the row choice stands. The knob values are not extended:
    bracketing refers to the lr of the chosen row. ``point(lr, knob_value, seed)`` runs one point (memoised
    here). The returned tuning is the chosen row's; its ``knob_choice`` records every row."""
    ks = sorted(float(k) for k in knob_values)
    centre = math.sqrt(ks[0] * ks[-1]) if ks[0] > 0 else (ks[0] + ks[-1]) / 2
    memo: dict[tuple[float, float, int], float | None] = {}

    def pt(k: float) -> PointFn:
        def go(v: float, s: int) -> float | None:
            if (v, k, s) not in memo:
                memo[(v, k, s)] = point(v, k, s)
            return memo[(v, k, s)]
        return go

    rows = {k: tune_arm(arm, grid, tuning_seeds, pt(k), knob="lr", max_extensions=0, factor=factor) for k in ks}

    def row_score(k: float) -> float:
        r = rows[k]
        return INF if r.chosen is None else r.score(r.chosen)

    ok = [k for k in ks if math.isfinite(row_score(k))]
    tied: list[float] = []
    if ok:
        best = min(ok, key=lambda k: (row_score(k), _log_distance(k, centre)))
        best_vals = [float(x) for x in rows[best].values[rows[best].chosen]]  # type: ignore[arg-type,index]
        tied = [k for k in ok if row_score(k) - row_score(best)
                <= tie_delta(best_vals, rows[k].values[rows[k].chosen])]  # type: ignore[arg-type,index]
        # nearest the knob's centre; rows equally far (two values around the centre) go to the better score
        chosen = min(tied, key=lambda k: (round(_log_distance(k, centre), 9), row_score(k), k))
    else:
        chosen = min(ks, key=lambda k: (_log_distance(k, centre), k))
    scores_before = {k: row_score(k) for k in ks}
    rows[chosen] = tune_arm(arm, grid, tuning_seeds, pt(chosen), knob="lr", max_extensions=max_extensions,
                            factor=factor)
    out = rows[chosen]
    out.knob_choice = {"knob": knob, "values": ks, "chosen": chosen if ok else None, "tied": tied,
                       "row_scores": {f"{k:g}": scores_before[k] for k in ks},
                       "note": "rows compared on the base lr grid; only the chosen row's lr is extended",
                       "rows": {f"{k:g}": {"lr": rows[k].chosen, "bracketed": rows[k].bracketed,
                                           "extensions": dict(rows[k].extensions),
                                           "scores": {f"{v:g}": rows[k].score(v) for v in rows[k].grid}}
                                for k in ks}}
    return out


@dataclass
class ArmEval:
    """The chosen value of an arm run on the eval seeds; diverged runs score +inf and are counted."""

    arm: str
    value: float | None
    seeds: list[int]
    metrics: list[float]  # +inf for a diverged run

    @property
    def n(self) -> int:
        return len(self.metrics)

    @property
    def diverged(self) -> int:
        return sum(not math.isfinite(m) for m in self.metrics)

    @property
    def finite_metrics(self) -> list[float]:
        return [m for m in self.metrics if math.isfinite(m)]

    @property
    def mean(self) -> float | None:
        f = self.finite_metrics
        return statistics.fmean(f) if f else None

    @property
    def sd(self) -> float | None:
        f = self.finite_metrics
        return statistics.stdev(f) if len(f) > 1 else (0.0 if f else None)

    @property
    def se(self) -> float | None:
        sd = self.sd
        return None if sd is None else sd / math.sqrt(max(1, len(self.finite_metrics)))

    def to_record(self) -> dict[str, Any]:
        return {"value": self.value, "seeds": list(self.seeds), "metrics": list(self.metrics), "mean": self.mean,
                "sd": self.sd, "se": self.se, "diverged_eval": f"{self.diverged}/{self.n}"}


def evaluate_arm(arm: str, value: float | None, eval_seeds: Sequence[int], point: PointFn) -> ArmEval:
    """Run the chosen value on every eval seed (no eval runs when tuning found no finite point)."""
    if value is None:
        return ArmEval(arm, None, list(eval_seeds), [INF] * len(eval_seeds))
    out = []
    for s in eval_seeds:
        m = point(value, s)
        out.append(float(m) if finite(m) else INF)  # type: ignore[arg-type]
    return ArmEval(arm, value, list(eval_seeds), out)


@dataclass(frozen=True)
class TestResult:
    """A test of "a is lower than b": mean difference a - b, its 95% interval, the statistic and p."""

    kind: str
    diff: float | None
    ci95: tuple[float, float] | None
    statistic: float | None
    p: float | None  # one-sided, in the claimed direction (a < b)
    p_opposite: float | None  # one-sided, the other way (a > b)
    n: int
    note: str = ""

    def to_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "diff": self.diff, "ci95": None if self.ci95 is None else list(self.ci95),
                "statistic": self.statistic, "p": self.p, "p_opposite": self.p_opposite, "n": self.n,
                "note": self.note}

    @property
    def significant(self) -> bool:
        return self.p is not None and self.p < 0.05

    @property
    def significant_opposite(self) -> bool:
        return self.p_opposite is not None and self.p_opposite < 0.05


def _untestable(kind: str, n: int, note: str, diff: float | None = None) -> TestResult:
    return TestResult(kind, diff, None, None, None, None, n, note)


def paired_test(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Paired t-test of a < b over eval seeds (pairs where either run diverged are left out and said so)."""
    from scipy import stats

    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    dropped = len(a) - len(pairs)
    note = f"{dropped} pair(s) with a diverged run left out of the test" if dropped else ""
    d = [x - y for x, y in pairs]
    if len(d) < 2:
        return _untestable("paired-t", len(d), note or "fewer than 2 finite pairs",
                           statistics.fmean(d) if d else None)
    mean = statistics.fmean(d)
    sd = statistics.stdev(d)
    if sd == 0:
        p = 0.0 if mean < 0 else 1.0
        return TestResult("paired-t", mean, (mean, mean), None, p, 0.0 if mean > 0 else 1.0, len(d), note)
    res = stats.ttest_rel([x for x, _ in pairs], [y for _, y in pairs])
    half = stats.t.ppf(0.975, len(d) - 1) * sd / math.sqrt(len(d))
    t = float(res.statistic)
    half = float(half)
    return TestResult("paired-t", mean, (mean - half, mean + half), t, float(stats.t.cdf(t, len(d) - 1)),
                      float(stats.t.sf(t, len(d) - 1)), len(d), note)


def welch_test(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Welch's t-test of mean(a) < mean(b) for unpaired samples (diverged runs left out and said so)."""
    from scipy import stats

    fa, fb = [x for x in a if math.isfinite(x)], [y for y in b if math.isfinite(y)]
    dropped = len(a) + len(b) - len(fa) - len(fb)
    note = f"{dropped} diverged run(s) left out of the test" if dropped else ""
    if len(fa) < 2 or len(fb) < 2:
        diff = statistics.fmean(fa) - statistics.fmean(fb) if fa and fb else None
        return _untestable("welch", len(fa) + len(fb), note or "fewer than 2 finite runs per side", diff)
    diff = statistics.fmean(fa) - statistics.fmean(fb)
    va, vb = statistics.variance(fa) / len(fa), statistics.variance(fb) / len(fb)
    se = math.sqrt(va + vb)
    if se == 0:
        return TestResult("welch", diff, (diff, diff), None, 0.0 if diff < 0 else 1.0, 0.0 if diff > 0 else 1.0,
                          len(fa) + len(fb), note)
    df = (va + vb) ** 2 / (va * va / (len(fa) - 1) + vb * vb / (len(fb) - 1))
    t = diff / se
    half = float(stats.t.ppf(0.975, df) * se)
    return TestResult("welch", diff, (diff - half, diff + half), t, float(stats.t.cdf(t, df)),
                      float(stats.t.sf(t, df)), len(fa) + len(fb), note)


def loss_verdict(test: TestResult, claimed_diff: tuple[float, float] | None = None) -> tuple[str, list[str]]:
    """P7 for "method reaches a lower metric than baseline" (test of method - baseline < 0): reproduced at
    p < 0.05; at most partially when the paper's size (an interval of method - baseline) misses our 95%
    interval; contradicted when the opposite direction is significant; else not reproduced."""
    ci = "n/a" if test.ci95 is None else f"[{test.ci95[0]:+.4g}, {test.ci95[1]:+.4g}]"
    reasons = [f"{test.kind}: method - baseline = {_fmt(test.diff)}, 95% CI {ci}, p = {_fmt(test.p)} (n = {test.n})"
               + (f"; {test.note}" if test.note else "")]
    if test.significant_opposite:
        return CONTRADICTED, reasons
    if not test.significant:
        return NOT_REPRODUCED, reasons
    if claimed_diff is not None and test.ci95 is not None:
        lo, hi = claimed_diff
        if hi < test.ci95[0] or lo > test.ci95[1]:
            reasons.append(f"the paper's size [{lo:+.4g}, {hi:+.4g}] lies outside the 95% interval")
            return PARTIAL, reasons
    return REPRODUCED, reasons


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


RESTS_ON_WIN = (REPRODUCED, PARTIAL)
RESTS_ON_LOSS = (NOT_REPRODUCED, CONTRADICTED)


def cap_verdict(status: str, *, method: ArmTuning | None, baselines: Sequence[ArmTuning] = (),
                winner_diverged: bool = False) -> tuple[str, str | None]:
    """P5/P6 caps: (status, cap reason or None)."""
    if status in RESTS_ON_WIN and any(not b.bracketed for b in baselines):
        names = ", ".join(b.arm for b in baselines if not b.bracketed)
        return INCONCLUSIVE, f"baseline not bracketed ({names})"
    if status in RESTS_ON_LOSS and method is not None and not method.bracketed:
        return INCONCLUSIVE, f"method not bracketed ({method.arm})"
    if status == REPRODUCED and winner_diverged:
        return PARTIAL, "unstable at its chosen lr"
    return status, None


def exercised(a: float | int | Sequence[Any] | None, b: float | int | Sequence[Any] | None) -> bool:
    """P9: a check whose two sides are both zero or both empty was not exercised."""
    def empty(x: Any) -> bool:
        return x is None or (isinstance(x, (int, float)) and x == 0) or (isinstance(x, Sequence) and len(x) == 0)
    return not (empty(a) and empty(b))


@dataclass
class Protocol:
    """What a claim record's ``protocol`` object holds (tuning seeds, eval seeds, arms, test, cap)."""

    tuning_seeds: list[int]
    eval_seeds: list[int]
    metric: str
    arms: dict[str, ArmTuning] = field(default_factory=dict)
    evals: dict[str, ArmEval] = field(default_factory=dict)
    test: TestResult | dict[str, Any] | None = None
    cap: str | None = None
    exceptions: list[str] = field(default_factory=list)  # documented departures from equal treatment

    def to_record(self) -> dict[str, Any]:
        arms = {}
        for name in {**self.arms, **self.evals}:
            t, e = self.arms.get(name), self.evals.get(name)
            entry = t.to_record() if t else {}
            if e is not None:
                entry["diverged_eval"] = f"{e.diverged}/{e.n}"
                entry["eval"] = e.to_record()
            arms[name] = entry
        test = self.test.to_record() if isinstance(self.test, TestResult) else self.test
        return {"tuning_seeds": list(self.tuning_seeds), "eval_seeds": list(self.eval_seeds),
                "selection": SELECTION.format(metric=self.metric), "arms": arms, "test": test, "cap": self.cap,
                "exceptions": list(self.exceptions)}


def no_tuning(reason: str) -> dict[str, Any]:
    """The protocol object of a claim without a tuned comparison (a simulation, a closed-form toy)."""
    return {"kind": "no tuning", "reason": reason}


def check_disjoint(tuning_seeds: Sequence[int], eval_seeds: Sequence[int]) -> None:
    overlap = sorted(set(tuning_seeds) & set(eval_seeds))
    if overlap:
        raise ValueError(f"tuning and eval seeds must be disjoint; both contain {overlap}")
    if len(tuning_seeds) < 2:
        raise ValueError(f"the protocol needs at least 2 tuning seeds, got {list(tuning_seeds)}")
    if len(eval_seeds) < 3:
        raise ValueError(f"the protocol needs at least 3 eval seeds, got {list(eval_seeds)}")


def summary_of(protocol: Mapping[str, Any], arm: str) -> Mapping[str, Any]:
    """An arm's entry of a recorded protocol object (for judges that read records)."""
    return protocol["arms"][arm]


def steps_to_target(finals: Mapping[float, float], target: float) -> float:
    """One seed's steps (as a fraction of T) to reach ``target``, from the final losses of runs whose
    schedules end at each fraction: linear interpolation of loss against log steps between the first
    fraction that reaches it and the one before; +inf when none reaches it."""
    pts = sorted((f, v) for f, v in finals.items())
    prev = None
    for f, v in pts:
        if math.isfinite(v) and v <= target:
            if prev is None or not math.isfinite(prev[1]) or prev[1] == v:
                return f
            (f0, v0) = prev
            w = (v0 - target) / (v0 - v)
            return math.exp(math.log(f0) + w * (math.log(f) - math.log(f0)))
        prev = (f, v)
    return INF


def ratio_estimate(fractions: Sequence[float]) -> dict[str, Any]:
    """Geometric mean of per-seed S_i/T with a t-interval on log S_i; a seed that never reaches the target
    makes the estimate a bound (reported, never averaged in)."""
    from scipy import stats

    ok = [f for f in fractions if math.isfinite(f)]
    out: dict[str, Any] = {"per_seed": list(fractions), "never_reached": len(fractions) - len(ok)}
    if not ok:
        return {**out, "geo_mean": None, "ci95": None}
    logs = [math.log(f) for f in ok]
    m = statistics.fmean(logs)
    out["geo_mean"] = math.exp(m)
    if len(logs) > 1 and statistics.stdev(logs) > 0:
        half = stats.t.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
        out["ci95"] = [math.exp(m - half), math.exp(m + half)]
    else:
        out["ci95"] = [math.exp(m), math.exp(m)]
    return out


def step_verdict(method_T: ArmEval, baseline_T: ArmEval, method_fT: ArmEval, f: float,
                 ratio: Mapping[str, Any] | None = None) -> tuple[str, list[str], dict[str, Any]]:
    """P8 for "the method reaches the baseline's final loss in f*T steps", judged from runs whose schedules
    end at f*T. Returns (status, reasons, the record's ``test`` object)."""
    target = baseline_T.mean
    at_T = paired_test(method_T.metrics, baseline_T.metrics)
    at_fT = welch_test(method_fT.metrics, baseline_T.metrics)
    test = {"kind": "steps-at-fT", "f": f, "target": target, "method_fT_mean": method_fT.mean,
            "method_fT_diverged": f"{method_fT.diverged}/{method_fT.n}", "welch_fT_vs_target": at_fT.to_record(),
            "paired_T": at_T.to_record(), "ratio": dict(ratio) if ratio else None,
            "statistic": at_fT.statistic, "p": at_fT.p, "ci95": None if at_fT.ci95 is None else list(at_fT.ci95)}
    reasons = [f"target (baseline's mean final loss at T) {_fmt(target)}; method at {f:g}T: "
               f"{_fmt(method_fT.mean)} (diverged {method_fT.diverged}/{method_fT.n})",
               f"method - baseline at T: {_fmt(at_T.diff)} (paired p = {_fmt(at_T.p)}, opposite p = "
               f"{_fmt(at_T.p_opposite)})"]
    if ratio and ratio.get("geo_mean") is not None:
        lo, hi = ratio["ci95"]
        if ratio.get("upper_bound"):
            reasons.append(f"steps to target / T: at most {ratio['geo_mean']:.3f} (the shortest runs already reach it "
                           "on every seed)")
        else:
            reasons.append(f"steps to target / T: geometric mean {ratio['geo_mean']:.3f}, 95% CI [{lo:.3f}, "
                           f"{hi:.3f}], never reached on {ratio['never_reached']} seed(s)")
    if target is None or method_fT.mean is None or method_T.mean is None:
        return INCONCLUSIVE, reasons + ["an arm diverged on every eval seed"], test
    if at_T.significant_opposite:
        return CONTRADICTED, reasons, test
    if method_fT.diverged == 0 and method_fT.mean <= target:
        if ratio and ratio.get("never_reached"):
            return PARTIAL, reasons + ["a seed never reaches the target: the ratio is a bound"], test
        return REPRODUCED, reasons, test
    excess = method_fT.mean - target
    close = excess < 2 * _welch_se(method_fT, baseline_T)
    fewer = bool(ratio and ratio.get("never_reached") == 0 and ratio.get("ci95") and ratio["ci95"][1] < 1.0)
    if close or fewer:
        reasons.append(f"above the target by {excess:.4g} ({'< 2 SE' if close else '>= 2 SE'}); "
                       f"{'needs fewer than T steps' if fewer else 'ratio not clearly below 1'}")
        return PARTIAL, reasons, test
    if at_T.significant:
        reasons.append(f"better at T, but not within {f:g}T")
    return NOT_REPRODUCED, reasons, test


def _welch_se(a: ArmEval, b: ArmEval) -> float:
    fa, fb = a.finite_metrics, b.finite_metrics
    va = statistics.variance(fa) / len(fa) if len(fa) > 1 else 0.0
    vb = statistics.variance(fb) / len(fb) if len(fb) > 1 else 0.0
    return math.sqrt(va + vb)
