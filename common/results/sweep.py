"""Sweeps shared by every paper, run through the protocol (``common.results.protocol``).

Every (arm, value, seed) result is saved under the claim's runs folder as it finishes (``RunContext.cached``), so
``reproduce --resume`` reruns only what a killed run had not finished."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.results.context import RunContext
from common.results.protocol import ArmEval, ArmTuning, Protocol, evaluate_arm, finite, tune_arm
from common.results.summary import Summary, optional

RunFn = Callable[[str, float, int, str], dict[str, Any]]  # (arm, value, seed, progress label) -> result
Metric = Callable[[dict[str, Any]], float | None]  # the claim's end-of-schedule metric; None = diverged


def full_grid(ctx: RunContext, arms: Sequence[str], lrs: Sequence[float], run: RunFn) -> list[dict[str, Any]]:
    """Every (arm, lr, eval seed): for measurements across a whole grid that involve no choice."""
    jobs = [(a, float(lr), s) for a in arms for lr in lrs for s in ctx.seeds]
    out = []
    for i, (arm, lr, seed) in enumerate(jobs, 1):
        label = ctx.label(i, len(jobs), f"{arm} lr={lr:g} seed {seed}")
        result = ctx.cached(f"{arm}-lr{lr:g}-s{seed}", lambda a=arm, r=lr, s=seed, lb=label: run(a, r, s, lb), label)
        out.append({"arm": arm, "lr": lr, "seed": seed, **result})
    return out


@dataclass
class SweepResult:
    """Every run of a protocol sweep (tuning and eval, each tagged with its phase) and the protocol object."""

    runs: list[dict[str, Any]]
    protocol: Protocol
    extra: dict[str, Any] = field(default_factory=dict)

    def tuning(self, arm: str) -> ArmTuning:
        return self.protocol.arms[arm]

    def eval(self, arm: str) -> ArmEval:
        return self.protocol.evals[arm]

    def chosen(self, arm: str) -> float | None:
        return self.protocol.arms[arm].chosen

    def eval_runs(self, arm: str) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["arm"] == arm and r["phase"] == "eval"]

    def grid_runs(self, arm: str) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["arm"] == arm and r["phase"] == "tune"]


class _Runner:
    """Runs (arm, value, seed) once through the context's cache and keeps every result."""

    def __init__(self, ctx: RunContext, run: RunFn, metric: Metric, knob: str) -> None:
        self.ctx, self.run, self.metric, self.knob = ctx, run, metric, knob
        self.runs: list[dict[str, Any]] = []
        self.count = 0

    def point(self, arm: str, phase: str, key_prefix: str = "") -> Callable[[float, int], float | None]:
        def go(value: float, seed: int) -> float | None:
            self.count += 1
            label = (f"{self.ctx.claim_id} run {self.count} ({phase}) {arm} {self.knob}={value:g} seed {seed}"
                     if self.ctx.claim_id else f"run {self.count} ({phase}) {arm} {self.knob}={value:g} seed {seed}")
            key = f"{key_prefix}{arm}-{self.knob}{value:g}-s{seed}"
            result = self.ctx.cached(key, lambda: self.run(arm, value, seed, label), label)
            entry = {"arm": arm, self.knob: value, "seed": seed, "phase": phase, **result}
            if self.knob != "lr":
                entry.setdefault("lr", value)
            self.runs.append(entry)
            m = self.metric(result)
            return float(m) if finite(m) else None
        return go


def protocol_sweep(ctx: RunContext, arms: Sequence[str], grids: Mapping[str, Sequence[float]], run: RunFn,
                   metric: Metric, *, metric_name: str = "val loss", knob: str = "lr", max_extensions: int = 2,
                   key_prefix: str = "") -> SweepResult:
    """Tune each arm's ``knob`` on the tuning seeds (bracketing with at most ``max_extensions`` steps past each
    edge, the same rule for every arm), then run each arm's choice on the eval seeds."""
    runner = _Runner(ctx, run, metric, knob)
    protocol = Protocol(list(ctx.tuning_seeds), list(ctx.seeds), metric_name)
    for arm in arms:
        protocol.arms[arm] = tune_arm(arm, grids[arm], ctx.tuning_seeds, runner.point(arm, "tune", key_prefix),
                                      knob=knob, max_extensions=max_extensions)
        t = protocol.arms[arm]
        ctx.say(f"[{ctx.claim_id}] {arm}: {knob} {t.chosen} chosen over {t.grid} "
                f"({'bracketed' if t.bracketed else 'NOT bracketed'}; extensions {t.extensions})")
    for arm in arms:
        protocol.evals[arm] = evaluate_arm(arm, protocol.arms[arm].chosen, ctx.seeds,
                                           runner.point(arm, "eval", key_prefix))
    return SweepResult(runner.runs, protocol)


def run_at(ctx: RunContext, arm: str, value: float, seeds: Sequence[int], run: RunFn, metric: Metric, *,
           phase: str, key_prefix: str, knob: str = "lr") -> tuple[ArmEval, list[dict[str, Any]]]:
    """One arm at one value on the given seeds (e.g. a step claim's f*T runs), kept apart by ``key_prefix``."""
    runner = _Runner(ctx, run, metric, knob)
    ev = evaluate_arm(arm, value, seeds, runner.point(arm, phase, key_prefix))
    return ev, runner.runs


@dataclass
class ArmSummary(Summary):
    """What a judge needs of one tuned arm: the choice, whether it is bracketed, the tuning scores by grid point,
    and its eval-seed metrics (``finals``; None where a seed diverged)."""

    lr: float | None
    bracketed: bool
    unbracketed_edge: str | None
    extensions: dict[str, int]
    grid: dict[str, float | None]
    finals: list[float | None]
    mean: float | None
    sd: float | None
    se: float | None
    diverged: int
    n: int


@dataclass
class TunedSummary(Summary):
    """A summary of tuned arms: the seeds of each phase and every arm's :class:`ArmSummary`. The shared judges
    (``common.results.judges``) read this much of any paper's summary."""

    tuning_seeds: list[int]
    eval_seeds: list[int]
    arms: dict[str, ArmSummary]


def arm_summary(sweep: SweepResult, arm: str) -> ArmSummary:
    """One arm of a sweep as its claims judge it."""
    t, e = sweep.tuning(arm), sweep.eval(arm)
    return ArmSummary(lr=t.chosen, bracketed=t.bracketed, unbracketed_edge=t.unbracketed_edge,
                      extensions=dict(t.extensions), grid={f"{v:g}": t.score(v) for v in t.grid},
                      finals=list(e.metrics), mean=e.mean, sd=e.sd, se=e.se, diverged=e.diverged, n=e.n)


@dataclass
class ShortRuns(Summary):
    """A step claim's runs whose schedules end at f*T: the lr chosen for them on the tuning seeds (``candidates``:
    its tuning scores), their eval-seed finals, and P8's ratio estimate (``fractions``: finals at each schedule
    length that was run, ``ratio``: the protocol's estimate). When the method diverged at every lr of the
    full-length sweep nothing was run: ``lr`` and the statistics are None and the optional fields absent."""

    f: float
    lr: float | None
    finals: list[float | None]
    steps: int | None = optional()
    T: int | None = optional()
    candidates: dict[str, float | None] | None = optional()
    mean: float | None = None
    se: float | None = None
    diverged: int | None = None
    fractions: dict[str, list[float | None]] | None = optional()
    baseline: str | None = optional()
    ratio: dict[str, Any] | None = optional()


@dataclass
class StepSummary(TunedSummary):
    """Tuned arms plus step claims' f*T runs, by method arm."""

    short: dict[str, ShortRuns]
