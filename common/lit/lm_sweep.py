"""The language-model sweep five papers share (RAdam, Sophia, MARS, SOAP, Stable-SPAM): every arm of a preset
section tuned and evaluated by the protocol, step claims' f*T runs, one summary and one set of plots.

A paper describes its arms with ``LMArms`` (which optimizers it implements, and optionally its own
LightningModule, per-arm config, extra per-run fields); the preset section gives the model, data, schedule,
``lrs`` (or per-arm ``lrs``), ``arms`` and optionally ``step_claims: {<method arm>: f}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.optim.arms import MethodBuilder, arm_optimizer
from common.results.context import RunContext
from common.results.lm_summary import GridPoint, LMArm, LMSummary
from common.results.paper import Measurement
from common.results.protocol import finite, ratio_estimate, steps_to_target, tune_arm
from common.results.sweep import ShortRuns, StepSummary, arm_summary, protocol_sweep, run_at


def final_val_loss(entry: Mapping[str, Any]) -> float | None:
    """The selection metric: the run's final validation loss (None when it diverged)."""
    return None if entry.get("diverged") else entry.get("final_val_loss")


def default_param_groups(spec: Any) -> Any:
    """nanoGPT's split (decay matrices, not biases and norms) at the arm's weight decay."""
    from common.optim.param_groups import decay_split

    return decay_split(float(spec.get("weight_decay", 0.0)))


@dataclass(frozen=True)
class LMArms:
    """How a paper's arms train. ``module`` builds the LightningModule class and kwargs for an arm
    ((arm, spec, seed, cfg) -> (class, kwargs)); ``arm_config`` adapts the section for an arm; ``extras`` adds
    fields to a run's entry from the trained module; ``param_groups`` maps an arm's spec to its groups
    (None: all parameters in one group)."""

    methods: Mapping[str, MethodBuilder]
    module: Callable[[str, Any, int, Any], tuple[type, dict[str, Any]]] | None = None
    arm_config: Callable[[Any, Any], Any] | None = None
    extras: Callable[[dict[str, Any], Any, Any], dict[str, Any]] | None = None
    param_groups: Callable[[Any], Any] | None = default_param_groups
    name: str = "lm"


@dataclass
class LMSweep:
    """The sweep's measurement: every run, the protocol object and the summary claims judge."""

    runs: list[dict[str, Any]]
    summary: LMSummary
    protocol: dict[str, Any]
    plots: dict[str, str] = field(default_factory=dict)

    def measurement(self) -> Measurement:
        return Measurement(arms={"runs": self.runs}, summary=self.summary, plots=self.plots, protocol=self.protocol)


def tokens_per_step(cfg: Any) -> int:
    return int(cfg.batch_size) * int(cfg.model.block_size)


def lm_sweep(cfg: Any, ctx: RunContext, arms_def: LMArms) -> LMSweep:
    """Tune every arm (tuning seeds, bracketing), evaluate the choices (eval seeds), run step claims' f*T runs."""
    from omegaconf import OmegaConf

    from common.lit.lm_run import train_lm

    def train(arm: str, lr: float, seed: int, label: str, steps: int | None = None) -> dict[str, Any]:
        spec = cfg.arms[arm]
        run_cfg = arms_def.arm_config(cfg, spec) if arms_def.arm_config else cfg
        module_cls, kwargs = arms_def.module(arm, spec, seed, run_cfg) if arms_def.module else (None, {})
        options = OmegaConf.to_container(spec, resolve=True)
        groups = arms_def.param_groups(spec) if arms_def.param_groups else None
        extra = {"module_cls": module_cls} if module_cls else {}
        entry, module = train_lm(run_cfg, ctx, run_name=f"{arms_def.name}/{arm}/lr{lr:g}/T{steps or cfg.steps}/s{seed}",
                                 seed=seed, label=label, steps=steps,
                                 optimizer=arm_optimizer(arm, lr, options, arms_def.methods), param_groups=groups,
                                 **extra, **kwargs)
        return {**entry, **(arms_def.extras(entry, module, run_cfg) if arms_def.extras else {})}

    arms = list(cfg.arms)
    grids = {a: [float(x) for x in cfg.arms[a].get("lrs", cfg.lrs)] for a in arms}
    sweep = protocol_sweep(ctx, arms, grids, lambda a, lr, s, lb: train(a, lr, s, lb), final_val_loss,
                           metric_name="val loss", max_extensions=int(cfg.get("max_extensions", 2)))
    steps = int(cfg.steps)
    summary = LMSummary(
        steps=steps, tokens_per_step=tokens_per_step(cfg), tuning_seeds=list(ctx.tuning_seeds),
        eval_seeds=list(ctx.seeds), short={},
        arms={a: LMArm.extending(arm_summary(sweep, a),
                                 state_bytes=next((r.get("state_bytes") for r in sweep.eval_runs(a)), None))
              for a in arms})
    runs = list(sweep.runs)
    if cfg.get("eval_grid"):  # the whole original grid on the eval seeds, for claims about sensitivity to the lr
        summary.grid_eval = {}
        for a in arms:
            per_lr = {}
            for lr in grids[a]:
                ev, rr = run_at(ctx, a, lr, ctx.seeds, lambda x, v, sd, lb: train(x, v, sd, lb), final_val_loss,
                                phase="grid", key_prefix="")
                per_lr[f"{lr:g}"] = [GridPoint(final=m, failed=bool(r.get("failed", r.get("diverged"))))
                                     for m, r in zip(ev.metrics, rr, strict=True)]
                runs += rr
            summary.grid_eval[a] = per_lr
    for method, claim in dict(cfg.get("step_claims") or {}).items():
        short, short_runs = _short_runs(ctx, sweep, method, float(claim.f), steps, train,
                                        [float(x) for x in cfg.get("ratio_fractions") or []])
        short.baseline = strongest(sweep, claim.baseline)
        summary.short[method] = short
        runs += short_runs
        add_ratio(summary, method, short.baseline)
    protocol = sweep.protocol.to_record()
    if summary.short:
        protocol["step_claims"] = {m: {k: v for k, v in sh.to_record().items() if k != "finals"}
                                   for m, sh in summary.short.items()}
    out = LMSweep(runs, summary, protocol)
    out.plots = _plots(out, ctx)
    return out


def strongest(sweep: Any, baseline: Any) -> str:
    """A step claim's baseline: one arm, or of several variants the one with the best tuning score at its
    chosen lr (decided on tuning seeds, so the eval seeds stay unused for any choice)."""
    if isinstance(baseline, str):
        return baseline
    names = [str(b) for b in baseline]

    def score(arm: str) -> float:
        t = sweep.tuning(arm)
        return t.score(t.chosen) if t.chosen is not None else float("inf")

    return min(names, key=score)


def _short_runs(ctx: RunContext, sweep: Any, method: str, f: float, steps: int, train: Callable[..., dict[str, Any]],
                ratio_fractions: list[float]) -> tuple[ShortRuns, list[dict[str, Any]]]:
    """A step claim's runs whose schedules end at f*T: the method at its T-tuned lr and at twice it, chosen on the
    tuning seeds, then run on the eval seeds; optional extra fractions for the ratio estimate."""
    lr = sweep.chosen(method)
    if lr is None:
        return ShortRuns(f=f, lr=None, finals=[None] * len(ctx.seeds)), []
    short_steps = max(1, round(f * steps))
    runs: list[dict[str, Any]] = []

    def point_at(n_steps: int, tag: str) -> Any:
        return lambda a, x, s, lb: train(a, x, s, lb, steps=n_steps)

    choice = tune_arm(method, [lr, 2 * lr], ctx.tuning_seeds,
                      lambda x, s: _collect(ctx, runs, method, x, s, short_steps, train, f"short{f:g}"),
                      max_extensions=0)
    chosen = choice.chosen if choice.chosen is not None else lr
    ev, eval_runs = run_at(ctx, method, chosen, ctx.seeds, point_at(short_steps, "eval"), final_val_loss,
                           phase=f"eval at {f:g}T", key_prefix=f"short{f:g}-")
    runs += eval_runs
    out = ShortRuns(f=f, steps=short_steps, lr=chosen, candidates={f"{x:g}": choice.score(x) for x in choice.grid},
                    finals=list(ev.metrics), mean=ev.mean, se=ev.se, diverged=ev.diverged)
    extra: dict[float, list[float]] = {f: list(ev.metrics), 1.0: list(sweep.eval(method).metrics)}
    for g in ratio_fractions:
        if g in extra:
            continue
        e, rr = run_at(ctx, method, chosen, ctx.seeds, point_at(max(1, round(g * steps)), "ratio"),
                       final_val_loss, phase=f"ratio at {g:g}T", key_prefix=f"short{g:g}-")
        extra[g] = list(e.metrics)
        runs += rr
    out.fractions = {f"{g:g}": v for g, v in sorted(extra.items())}
    return out, runs


def _collect(ctx: RunContext, runs: list[dict[str, Any]], arm: str, lr: float, seed: int, n_steps: int,
             train: Callable[..., dict[str, Any]], prefix: str) -> float | None:
    label = f"{ctx.claim_id} ({prefix} tune) {arm} lr={lr:g} seed {seed}"
    result = ctx.cached(f"{prefix}-{arm}-lr{lr:g}-s{seed}", lambda: train(arm, lr, seed, label, steps=n_steps), label)
    runs.append({"arm": arm, "lr": lr, "seed": seed, "phase": f"tune at {prefix}", **result})
    m = final_val_loss(result)
    return float(m) if finite(m) else None


def add_ratio(summary: StepSummary, method: str, baseline: str) -> None:
    """Per-seed steps to the baseline's mean final loss from the method's fraction runs (P8's ratio estimate)."""
    short = summary.short.get(method)
    if not short or short.fractions is None:
        return
    target = summary.arms[baseline].mean
    if target is None:
        return
    fr = {float(k): v for k, v in short.fractions.items()}
    n = len(next(iter(fr.values())))
    per_seed = [steps_to_target({g: (v[i] if v[i] is not None else float("inf")) for g, v in fr.items()}, target)
                for i in range(n)]
    short.ratio = ratio_estimate(per_seed)


def _plots(sweep: LMSweep, ctx: RunContext) -> dict[str, str]:
    from common.results.plots import plot_curves, plot_lr_sweep

    name = ctx.claim_id or "lm"
    s = sweep.summary
    curves: dict[str, list[Any]] = {}
    for arm, a in s.arms.items():
        rs = [r for r in sweep.runs if r["arm"] == arm and r["phase"] == "eval"]
        if rs:
            curves[f"{arm} lr={a.lr:g}"] = [r["val_curve"] for r in rs]
    for arm, sh in s.short.items():
        rs = [r for r in sweep.runs if r["arm"] == arm and r["phase"] == f"eval at {sh.f:g}T"]
        if rs:
            curves[f"{arm} run ending at {sh.f:g}T, lr={sh.lr:g}"] = [r["val_curve"] for r in rs]
    plots = {"val_curves": str(plot_curves(
        curves, ctx.path(f"{name}_val_curves.png"),
        title="validation loss at each arm's chosen lr, eval seeds (band: min-max)", xlabel="step",
        ylabel="val loss (nats/token)"))}
    plots["lr_sweep"] = str(plot_lr_sweep(
        {arm: {float(lr): [score if finite(score) else None] for lr, score in a.grid.items()}
         for arm, a in s.arms.items()},
        ctx.path(f"{name}_lr_sweep.png"), title="final val loss vs lr (mean over tuning seeds)",
        ylabel="final val loss"))
    return plots
