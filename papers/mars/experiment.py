"""Claims M1 (MARS-AdamW beats AdamW at equal tokens) and M2 (the gain is variance reduction: MARS beats its
own gamma=0 control). One sweep feeds both: four arms (AdamW, MARS-AdamW, MARS gamma=0, MARS-Lion) on a tiny
pre-LN GPT, each tuned over its grid, best lr on more seeds. M1 and M2 read the same runs, so the sweep runs
once per process for a given config (the presets point M2 at M1's section with a YAML alias).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from common.lit.lm_run import tokens_per_step, train_lm
from common.optim.arms import arm_optimizer, require
from common.optim.baselines import OptimizerFactory
from common.optim.param_groups import decay_split
from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves, plot_lr_sweep
from common.results.stats import best_arm, first_hit, se_of_difference
from common.results.sweep import tune_then_seed
from papers.mars.optim import MARS

_DONE: dict[str, Measurement] = {}


def _mars(lr: float, spec: Mapping[str, Any], where: str) -> OptimizerFactory:
    require(spec, ["mars_type", "gamma", "betas", "weight_decay", "lr_1d_ratio", "betas_1d", "weight_decay_1d",
                   "is_approx", "clip_c"], where)
    kw = dict(mars_type=str(spec["mars_type"]), gamma=float(spec["gamma"]), betas=tuple(spec["betas"]),
              eps=float(spec.get("eps", 1e-8)), weight_decay=float(spec["weight_decay"]),
              lr_1d=lr * float(spec["lr_1d_ratio"]), betas_1d=tuple(spec["betas_1d"]),
              weight_decay_1d=float(spec["weight_decay_1d"]), is_approx=bool(spec["is_approx"]),
              clip_c=bool(spec["clip_c"]))
    return lambda params: MARS(params, lr=lr, **kw)


def run_mars(cfg: Any, ctx: RunContext) -> Measurement:
    key = json.dumps([OmegaConf.to_container(cfg, resolve=True), ctx.seeds, str(ctx.out_dir), ctx.trainer],
                     sort_keys=True)
    if key in _DONE:
        ctx.say(f"[{ctx.claim_id}] reusing this run's sweep (same config as the other MARS claim)")
        return _DONE[key]
    _DONE[key] = measurement = _sweep(cfg, ctx)
    return measurement


def _sweep(cfg: Any, ctx: RunContext) -> Measurement:

    def run(arm: str, lr: float, seed: int, label: str) -> dict[str, Any]:
        spec = cfg.arms[arm]
        # AdamW decays matrices only (nanoGPT); MARS takes every tensor and routes 1-D ones to its own AdamW path
        groups = decay_split(float(spec.weight_decay)) if spec.optimizer != "mars" else None
        entry, _ = train_lm(cfg, ctx, run_name=f"mars/{arm}/lr{lr:g}/s{seed}", seed=seed, label=label,
                            optimizer=arm_optimizer(arm, lr, spec, {"mars": _mars}), param_groups=groups)
        return entry

    arms = list(cfg.arms)
    grids = {a: [float(x) for x in cfg.arms[a].get("lrs", cfg.lrs)] for a in arms}
    runs, best = tune_then_seed(ctx, arms, grids, run, score=lambda r: None if r["diverged"] else r["final_val_loss"])
    summary = summarize(runs, best, int(cfg.steps), tokens_per_step(cfg))
    return Measurement(arms={"runs": runs}, summary=summary, plots=_plots(runs, best, arms, ctx))


def summarize(runs: list[dict[str, Any]], best: Mapping[str, float | None], steps: int,
              tokens_per_step: int) -> dict[str, Any]:
    s: dict[str, Any] = {"steps": steps, "tokens_per_step": tokens_per_step, "effective_batch_tokens": tokens_per_step,
                         "best": {}, "grid": {}}
    curves = {}
    for arm, lr in best.items():
        s["grid"][arm] = {f"{r['lr']:g}": r["final_val_loss"] for r in runs if r["arm"] == arm and r["seed"] == 0}
        s["best"][arm], curves[arm] = best_arm(runs, arm, lr)
        s["best"][arm]["state_bytes"] = next((r["state_bytes"] for r in runs if r["arm"] == arm and r["lr"] == lr),
                                             None)
    for name, (base, method) in {"m1": ("adamw", "mars"), "m2": ("mars_gamma0", "mars")}.items():
        a, m = s["best"].get(base), s["best"].get(method)
        if not a or not m or not a["finals"] or not m["finals"]:
            s[name] = None
            continue
        hit = first_hit(curves[method], a["final_val_loss"])
        s[name] = {"baseline": base, "delta": a["final_val_loss"] - m["final_val_loss"],
                   "se": se_of_difference(a["finals"], m["finals"]),
                   "tokens_to_baseline_final": None if hit is None else int(hit) * tokens_per_step,
                   "baseline_tokens": steps * tokens_per_step}
    return s


def _plots(runs: list[dict[str, Any]], best: Mapping[str, float | None], arms: list[str],
           ctx: RunContext) -> dict[str, str]:
    chosen = {a: [r for r in runs if r["arm"] == a and r["lr"] == best[a]] for a in arms if best[a] is not None}
    plots = {"val_curves": str(plot_curves(
        {f"{a} lr={best[a]:g}": [r["val_curve"] for r in rs] for a, rs in chosen.items()},
        ctx.path("mars_val_curves.png"), title="MARS: validation loss at each arm's best lr (seed band)",
        xlabel="step", ylabel="val loss (nats/byte)"))}
    sweep = {a: {r["lr"]: [None if r["diverged"] else r["final_val_loss"]]
                 for r in runs if r["arm"] == a and r["seed"] == ctx.seeds[0]} for a in arms}
    plots["lr_sweep"] = str(plot_lr_sweep(sweep, ctx.path("mars_lr_sweep.png"),
                                          title="MARS: final val loss vs lr (seed 0)", ylabel="final val loss"))
    return plots
