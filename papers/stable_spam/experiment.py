"""Claims S1 (lr-stability), S2 (beats-fp) and S3 (half-steps), plus the official-vs-fixed comparison: one sweep
of six arms on a tiny LLaMA (RMSNorm, SwiGLU, RoPE) trained through fake W4A4 quantization (spec §6).

Arms: Adam full precision; Adam-INT4; Adam+GradClip-INT4 (global clip 1.0); SPAM-INT4; Stable-SPAM-INT4 in the
official and the fixed semantics. Each arm is tuned over the same lr grid on seed 0, its best lr rerun on the
other seeds. The three claims read the same runs, so the sweep runs once per process for a given config (the
presets point S2 and S3 at S1's section with a YAML alias).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from common.lit.lm_run import tokens_per_step, train_lm
from common.optim.arms import arm_optimizer, require
from common.optim.baselines import OptimizerFactory
from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves, plot_lr_sweep
from common.results.stats import best_arm, first_hit, se_of_difference
from common.results.sweep import tune_then_seed
from papers.stable_spam.spam import SPAM
from papers.stable_spam.stablespam import StableSPAM
from papers.stable_spam.tracing import TracingLanguageModel, count_spikes, subsample

_DONE: dict[str, Measurement] = {}
ADAM_4BIT = ("adam_int4", "adam_clip_int4")  # Adam* is the better of the two (spec §6)
SEMANTICS_ARMS = {"official": "stablespam_official_int4", "fixed": "stablespam_fixed_int4"}
FAIL_MARGIN = 0.1  # a run fails when its final val loss is not at least this far below its initial one


def _stablespam(lr: float, spec: Mapping[str, Any], where: str) -> OptimizerFactory:
    require(spec, ["semantics", "betas", "eps", "weight_decay", "gamma1", "gamma2", "gamma3", "total_T", "eta_min",
                   "update_proj_gap"], where)
    kw = dict(betas=tuple(spec["betas"]), eps=float(spec["eps"]), weight_decay=float(spec["weight_decay"]),
              gamma1=float(spec["gamma1"]), gamma2=float(spec["gamma2"]), gamma3=float(spec["gamma3"]),
              total_T=None if spec["total_T"] is None else int(spec["total_T"]), eta_min=float(spec["eta_min"]),
              update_proj_gap=None if spec["update_proj_gap"] is None else int(spec["update_proj_gap"]),
              semantics=str(spec["semantics"]), reset_warmup_steps=int(spec.get("reset_warmup_steps", 150)),
              adaclip=bool(spec.get("adaclip", True)), adagn=bool(spec.get("adagn", True)),
              moret=bool(spec.get("moret", True)))
    return lambda params: StableSPAM(params, lr=lr, track_stats=True, **kw)


def _spam(lr: float, spec: Mapping[str, Any], where: str) -> OptimizerFactory:
    require(spec, ["betas", "eps", "weight_decay", "threshold", "DeltaT", "warmup_steps", "grad_accu_steps",
                   "warmup_from_lr_schedule"], where)
    kw = dict(betas=tuple(spec["betas"]), eps=float(spec["eps"]), weight_decay=float(spec["weight_decay"]),
              threshold=float(spec["threshold"]), DeltaT=None if spec["DeltaT"] is None else int(spec["DeltaT"]),
              warmup_steps=int(spec["warmup_steps"]), grad_accu_steps=int(spec["grad_accu_steps"]),
              warmup_from_lr_schedule=bool(spec["warmup_from_lr_schedule"]))
    lr_warmup = spec.get("lr_warmup_steps")
    return lambda params: SPAM(params, lr=lr, track_stats=True,
                               lr_warmup_steps=None if lr_warmup is None else int(lr_warmup), **kw)


METHODS = {"stablespam": _stablespam, "spam": _spam}


def run_stable_spam(cfg: Any, ctx: RunContext) -> Measurement:
    key = json.dumps([OmegaConf.to_container(cfg, resolve=True), ctx.seeds, str(ctx.out_dir), ctx.trainer],
                     sort_keys=True)
    if key in _DONE:
        ctx.say(f"[{ctx.claim_id}] reusing this run's sweep (same config as the other Stable-SPAM claims)")
        return _DONE[key]
    _DONE[key] = measurement = _sweep(cfg, ctx)
    return measurement


def arm_config(cfg: Any, spec: Any) -> Any:
    """The run's section for one arm: its own global clip, and the model quantized or not."""
    require(spec, ["quant", "grad_clip"], "arm")
    return OmegaConf.merge(cfg, {"grad_clip": spec.grad_clip,
                                 "model": {"quant": OmegaConf.to_container(cfg.quant) if spec.quant else None}})


def failed(entry: Mapping[str, Any]) -> bool:
    """Spec §6: non-finite loss (a diverged run) or a final val loss above initial - 0.1."""
    final = entry.get("final_val_loss")
    curve = entry.get("val_curve") or []
    if entry.get("diverged") or final is None or not math.isfinite(final) or not curve:
        return True
    return final > curve[0][1] - FAIL_MARGIN


def _sweep(cfg: Any, ctx: RunContext) -> Measurement:
    every = max(1, int(cfg.steps) // int(cfg.get("trace_points", 100)))

    def run(arm: str, lr: float, seed: int, label: str) -> dict[str, Any]:
        spec = cfg.arms[arm]
        entry, module = train_lm(arm_config(cfg, spec), ctx, run_name=f"stable_spam/{arm}/lr{lr:g}/s{seed}",
                                 seed=seed, label=label, optimizer=arm_optimizer(arm, lr, spec, METHODS),
                                 module_cls=TracingLanguageModel)
        tr = module.trace
        entry = {**entry, "spikes": count_spikes(tr["loss"]), "failed": False,  # traces the optimizer has
                 "trace": {k: subsample(v, every) for k, v in tr.items() if not all(math.isnan(x) for x in v)}}
        entry["failed"] = failed(entry)
        return entry

    arms = list(cfg.arms)
    grids = {a: [float(x) for x in cfg.arms[a].get("lrs", cfg.lrs)] for a in arms}
    runs, best = tune_then_seed(ctx, arms, grids, run, score=lambda r: None if r["diverged"] else r["final_val_loss"])
    summary = summarize(runs, best, int(cfg.steps), tokens_per_step(cfg))
    return Measurement(arms={"runs": runs}, summary=summary, plots=_plots(runs, best, arms, ctx))


def _cmp(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[float, float]:
    """(L_a - L_b, SE of the difference), best-vs-best seed means."""
    return a["final_val_loss"] - b["final_val_loss"], se_of_difference(a["finals"], b["finals"])


def summarize(runs: list[dict[str, Any]], best: Mapping[str, float | None], steps: int,
              tokens_per_step: int) -> dict[str, Any]:
    s: dict[str, Any] = {"steps": steps, "tokens_per_step": tokens_per_step, "best": {}, "grid": {}, "failures": {},
                         "spikes": {}, "runs_per_arm": {}}
    curves = {}
    for arm, lr in best.items():
        mine = [r for r in runs if r["arm"] == arm]
        s["grid"][arm] = {f"{r['lr']:g}": None if r["diverged"] else r["final_val_loss"]
                          for r in mine if r["seed"] == min(x["seed"] for x in mine)}
        s["failures"][arm] = sum(bool(r["failed"]) for r in mine)
        s["spikes"][arm] = sum(int(r["spikes"]) for r in mine)
        s["runs_per_arm"][arm] = len(mine)
        s["best"][arm], curves[arm] = best_arm(runs, arm, lr)
    ok = {a: v for a, v in s["best"].items() if v["finals"]}
    adam = [a for a in ADAM_4BIT if a in ok]
    star = min(adam, key=lambda a: ok[a]["final_val_loss"]) if adam else None
    s["adam_star"] = star
    for sem, arm in SEMANTICS_ARMS.items():
        ss = ok.get(arm)
        s[f"s1_{sem}"] = s[f"s2_{sem}"] = s[f"s3_{sem}"] = None
        if ss is None:
            continue
        if star is not None:
            d, se = _cmp(ok[star], ss)
            s[f"s1_{sem}"] = {"arm": arm, "baseline": star, "delta": d, "se": se,
                              "failures": s["failures"][arm], "failures_baseline": s["failures"][star],
                              "spikes": s["spikes"][arm], "spikes_baseline": s["spikes"][star]}
            hit = first_hit(curves[arm], ok[star]["final_val_loss"])
            s[f"s3_{sem}"] = {"arm": arm, "baseline": star, "target": ok[star]["final_val_loss"],
                              "hit_step": hit, "ratio": steps / hit if hit else None, "delta": d, "se": se}
        if "adam_fp" in ok:
            d2, se2 = _cmp(ok["adam_fp"], ss)
            s[f"s2_{sem}"] = {"arm": arm, "baseline": "adam_fp", "delta": d2, "se": se2}
    off, fix = ok.get(SEMANTICS_ARMS["official"]), ok.get(SEMANTICS_ARMS["fixed"])
    s["official_vs_fixed"] = None
    if off and fix:
        d, se = _cmp(off, fix)
        s["official_vs_fixed"] = {"delta": d, "se": se,
                                  "failures": [s["failures"][SEMANTICS_ARMS[k]] for k in ("official", "fixed")]}
    return s


def _plots(runs: list[dict[str, Any]], best: Mapping[str, float | None], arms: list[str],
           ctx: RunContext) -> dict[str, str]:
    chosen = {a: [r for r in runs if r["arm"] == a and r["lr"] == best[a]] for a in arms if best[a] is not None}
    plots = {"val_curves": str(plot_curves(
        {f"{a} lr={best[a]:g}": [r["val_curve"] for r in rs] for a, rs in chosen.items()},
        ctx.path("stable_spam_val_curves.png"), title="Stable-SPAM: val loss at each arm's best lr (seed band)",
        xlabel="step", ylabel="val loss (nats/byte)"))}
    first = ctx.seeds[0]
    finite = [r["final_val_loss"] for r in runs if not r["diverged"] and r["final_val_loss"] is not None]
    failed_at = max(finite) + 0.1 if finite and any(r["diverged"] for r in runs) else None
    sweep = {a: {r["lr"]: [None if r["diverged"] else r["final_val_loss"]]
                 for r in runs if r["arm"] == a and r["seed"] == first} for a in arms}
    plots["lr_sweep"] = str(plot_lr_sweep(sweep, ctx.path("stable_spam_lr_sweep.png"),
                                          title="Stable-SPAM: final val loss vs lr (seed 0; W4A4 unless _fp)",
                                          ylabel="final val loss", failed_value=failed_at))
    traces: dict[str, list] = {}
    for a in arms:
        r = next((r for r in runs if r["arm"] == a and r["lr"] == best[a] and r["seed"] == first), None)
        if r is None or a == "adam_fp":
            continue
        traces[f"{a} in"] = [r["trace"]["grad_norm_in"]]
        if a not in ("adam_int4",):
            traces[f"{a} out"] = [r["trace"]["grad_norm_out"]]
    plots["grad_norms"] = str(plot_curves(traces, ctx.path("stable_spam_grad_norms.png"),
                                          title="gradient norm before (in) / after (out) the method (best lr, seed 0)",
                                          xlabel="step", ylabel="global grad norm", logy=True))
    plots["train_loss"] = str(plot_curves(
        {f"{a} lr={best[a]:g}": [r["trace"]["loss"] for r in rs] for a, rs in chosen.items()},
        ctx.path("stable_spam_train_loss.png"), title="training loss at each arm's best lr (spikes visible)",
        xlabel="step", ylabel="train loss"))
    return plots
