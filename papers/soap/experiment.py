"""Claim P1: SOAP needs clearly fewer iterations than AdamW (and fewer than Shampoo) to reach AdamW's final
loss, at a batch that is large relative to the model. A tiny byte GPT at >= 4k tokens/step at cpu; steps and
wall-clock to target are reported separately (at tiny scale SOAP's per-step overhead is 25-40%, spec §6)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from common.lit.lm_run import tokens_per_step, train_lm
from common.optim.arms import arm_optimizer
from common.optim.baselines import OptimizerFactory
from common.optim.param_groups import decay_split
from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves, plot_lr_sweep
from common.results.stats import best_arm, first_hit, se_of_difference
from common.results.sweep import tune_then_seed
from papers.soap.optim import SOAP
from papers.soap.shampoo import Shampoo

_NOT_OPTIONS = ("optimizer", "lrs")


def _kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The arm's constructor options as written in the preset (lists become tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in dict(spec).items() if k not in _NOT_OPTIONS}


def _soap(lr: float, spec: Mapping[str, Any], where: str) -> OptimizerFactory:
    kw = _kwargs(spec)
    return lambda params: SOAP(params, lr=lr, **kw)


def _shampoo(lr: float, spec: Mapping[str, Any], where: str) -> OptimizerFactory:
    kw = _kwargs(spec)
    return lambda params: Shampoo(params, lr=lr, **kw)


METHODS = {"soap": _soap, "shampoo": _shampoo}


def run_fewer_iterations(cfg: Any, ctx: RunContext) -> Measurement:
    def run(arm: str, lr: float, seed: int, label: str) -> dict[str, Any]:
        spec = cfg.arms[arm]
        options = OmegaConf.to_container(spec, resolve=True)
        wd = float(options.get("weight_decay", 0.0))
        entry, _ = train_lm(cfg, ctx, run_name=f"p1/{arm}/lr{lr:g}/s{seed}", seed=seed, label=label,
                            optimizer=arm_optimizer(arm, lr, options, METHODS), param_groups=decay_split(wd))
        return entry

    arms = list(cfg.arms)
    grids = {a: [float(x) for x in cfg.arms[a].get("lrs", cfg.lrs)] for a in arms}
    runs, best = tune_then_seed(ctx, arms, grids, run, score=lambda r: None if r["diverged"] else r["final_val_loss"])
    summary = summarize(runs, best, int(cfg.steps), tokens_per_step(cfg))
    extra = []
    for f in cfg.get("p2_frequencies", []) or []:  # P2: SOAP's advantage against the refresh frequency, seed 0
        if best.get("soap") is None:
            break
        spec = {**OmegaConf.to_container(cfg.arms.soap, resolve=True), "precondition_frequency": int(f)}
        entry, _ = train_lm(cfg, ctx, run_name=f"p2/soap_f{f}/s0", seed=ctx.seeds[0],
                            label=ctx.label(len(extra) + 1, len(cfg.p2_frequencies), f"P2 soap f={f}"),
                            optimizer=arm_optimizer("soap", best["soap"], spec, METHODS),
                            param_groups=decay_split(float(spec.get("weight_decay", 0.0))))
        extra.append({"arm": f"soap_f{f}", "lr": best["soap"], "seed": ctx.seeds[0], "frequency": int(f), **entry})
    summary["p2"] = {str(r["frequency"]): r["final_val_loss"] for r in extra}
    return Measurement(arms={"runs": runs, "p2_runs": extra}, summary=summary, plots=_plots(runs, best, arms, ctx))


def summarize(runs: list[dict[str, Any]], best: Mapping[str, float | None], steps: int,
              tokens: int) -> dict[str, Any]:
    s: dict[str, Any] = {"steps": steps, "tokens_per_step": tokens, "effective_batch_tokens": tokens, "best": {},
                         "grid": {}}
    curves = {}
    for arm, lr in best.items():
        s["grid"][arm] = {f"{r['lr']:g}": r["final_val_loss"] for r in runs if r["arm"] == arm and r["seed"] == 0}
        s["best"][arm], curves[arm] = best_arm(runs, arm, lr)
        secs = [r["train_s"] for r in runs if r["arm"] == arm and r["lr"] == lr and r["train_s"] and not r["diverged"]]
        s["best"][arm]["train_s_per_step"] = statistics.fmean(secs) / steps if secs else None
        s["best"][arm]["state_bytes"] = next((r["state_bytes"] for r in runs if r["arm"] == arm and r["lr"] == lr),
                                             None)
    soap = s["best"].get("soap")
    for base in ("adamw", "shampoo"):
        b = s["best"].get(base)
        if not soap or not b or not soap["finals"] or not b["finals"]:
            s[f"vs_{base}"] = None
            continue
        hit = first_hit(curves["soap"], b["final_val_loss"])
        cmp: dict[str, Any] = {"target": b["final_val_loss"], "soap_hit_step": hit,
                               "iteration_reduction": None if hit is None else 1 - hit / steps,
                               "final_gap": b["final_val_loss"] - soap["final_val_loss"],
                               "se": se_of_difference(b["finals"], soap["finals"])}
        if hit is not None and soap["train_s_per_step"] and b["train_s_per_step"]:
            cmp["wallclock_reduction"] = 1 - (hit * soap["train_s_per_step"]) / (steps * b["train_s_per_step"])
        s[f"vs_{base}"] = cmp
    return s


def _plots(runs: list[dict[str, Any]], best: Mapping[str, float | None], arms: list[str],
           ctx: RunContext) -> dict[str, str]:
    chosen = {a: [r for r in runs if r["arm"] == a and r["lr"] == best[a]] for a in arms if best[a] is not None}
    plots = {"val_vs_steps": str(plot_curves(
        {f"{a} lr={best[a]:g}": [r["val_curve"] for r in rs] for a, rs in chosen.items()},
        ctx.path("p1_val_vs_steps.png"), title="P1: validation loss at each arm's best lr (seed band)",
        xlabel="step", ylabel="val loss (nats/byte)"))}
    plots["val_vs_time"] = str(plot_curves(
        {f"{a} seed {r['seed']}": [[(t, v[1]) for (_, t), v in zip(r["val_train_s"], r["val_curve"], strict=True)]]
         for a, rs in chosen.items() for r in rs},
        ctx.path("p1_val_vs_time.png"), title="P1: validation loss against training time",
        xlabel="training seconds", ylabel="val loss (nats/byte)"))
    sweep = {a: {r["lr"]: [None if r["diverged"] else r["final_val_loss"]]
                 for r in runs if r["arm"] == a and r["seed"] == ctx.seeds[0]} for a in arms}
    plots["lr_sweep"] = str(plot_lr_sweep(sweep, ctx.path("p1_lr_sweep.png"),
                                          title="P1: final val loss vs lr (seed 0)", ylabel="final val loss"))
    return plots
