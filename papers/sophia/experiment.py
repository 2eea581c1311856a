"""Claim S1: SophiaG reaches AdamW's final validation loss in fewer steps (the paper: 2x in steps, compute
and wall-clock on GPT-2 125M-770M). A tiny byte-level GPT at cpu; the ratio is measured, never assumed.

Both arms train through one manual-optimization LightningModule, so they share clipping, schedule and
logging; the SophiaG arm adds the Gauss-Newton-Bartlett estimate every k steps (the official loop's order:
update, then every k-th step a forward on the same batch with labels sampled from the model).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import OmegaConf

from common.lit.language_model import LanguageModelModule
from common.lit.lm_run import tokens_per_step, train_lm
from common.optim.arms import arm_optimizer, require
from common.optim.baselines import OptimizerFactory
from common.optim.param_groups import decay_split
from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves
from common.results.stats import best_arm, first_hit, se_of_difference
from common.results.sweep import tune_then_seed
from papers.sophia.hessian import gnb_hessian_step, hessian_update_due
from papers.sophia.optim import SophiaG


class SophiaLanguageModel(LanguageModelModule):
    """Manual optimization: backward, global clip, step, schedule; then, for SophiaG, the GNB estimate
    every ``hessian_every`` steps on the same batch. ``hessian_trace`` keeps (step, win_rate, h mean)."""

    def __init__(self, *args: Any, hessian_every: int | None, seed_for_labels: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self.hessian_every, self.seed = hessian_every, seed_for_labels
        self.hessian_trace: list[tuple[int, float, float]] = []

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:  # a resumed run keeps the whole trace
        checkpoint["sophia_hessian_trace"] = [list(t) for t in self.hessian_trace]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.hessian_trace = [tuple(t) for t in checkpoint.get("sophia_hessian_trace", [])]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        opt, sched = self.optimizers(), self.lr_schedulers()
        loss = self.evaluate_batch(batch)["loss"]
        opt.zero_grad()
        self.manual_backward(loss)
        if self.grad_clip is not None:
            self.clip_gradients(opt, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
        opt.step()
        if sched is not None:
            sched.step()
        self.log("train/loss", loss.detach(), on_step=True, prog_bar=False, batch_size=batch[0].size(0))
        self.log("train/lr", opt.param_groups[0]["lr"], on_step=True, batch_size=batch[0].size(0))
        if self.hessian_every and hessian_update_due(self.global_step, self.hessian_every):
            # Ranks draw independent labels (rank 0 keeps the single-process seed); the estimate is averaged
            # across ranks inside gnb_hessian_step, so h stays identical everywhere.
            gen = torch.Generator(device=batch[0].device).manual_seed(
                self.seed * 1_000_003 + self.global_step + self.global_rank * 2**40)
            stats = gnb_hessian_step(opt.optimizer, self.model(batch[0]), grad_clip=self.grad_clip, generator=gen)
            self.hessian_trace.append((self.global_step, stats["win_rate"], stats["hessian_mean"]))
            self.log_dict({f"sophia/{k}": float(v) for k, v in stats.items()}, on_step=True,
                          batch_size=batch[0].size(0))
        return loss.detach()


def _sophiag(bs: int) -> Any:
    def build(lr: float, spec: Mapping[str, Any], where: str) -> OptimizerFactory:
        require(spec, ["betas", "rho", "weight_decay", "k"], where)
        kw = dict(betas=tuple(spec["betas"]), rho=float(spec["rho"]), weight_decay=float(spec["weight_decay"]),
                  bs=bs)
        return lambda params: SophiaG(params, lr=lr, **kw)

    return build


def run_steps_to_target(cfg: Any, ctx: RunContext) -> Measurement:
    def train(arm: str, lr: float, seed: int, label: str, *, steps: int, rho: float | None) -> dict[str, Any]:
        spec = OmegaConf.merge(cfg.arms[arm], {"rho": rho} if rho is not None else {})
        entry, module = train_lm(
            cfg, ctx, run_name=f"s1/{arm}/lr{lr:g}/rho{rho}/s{seed}", seed=seed, label=label, steps=steps,
            optimizer=arm_optimizer(arm, lr, spec, {"sophiag": _sophiag(tokens_per_step(cfg))}),
            param_groups=decay_split(float(spec.weight_decay)), module_cls=SophiaLanguageModel,
            hessian_every=int(spec.k) if spec.get("optimizer") == "sophiag" else None, seed_for_labels=seed)
        return {**entry, "hessian_trace": module.hessian_trace}

    rho, probes = tune_rho(cfg, ctx, train)
    arms = list(cfg.arms)
    runs, best = tune_then_seed(ctx, arms, [float(x) for x in cfg.lrs],
                                lambda a, lr, seed, label: {"rho": rho if a == "sophiag" else None, **train(
                                    a, lr, seed, label, steps=int(cfg.steps), rho=rho if a == "sophiag" else None)},
                                score=lambda r: None if r["diverged"] else r["final_val_loss"])
    summary = summarize(runs, best, int(cfg.steps), tokens_per_step(cfg))
    summary["rho"], summary["rho_probes"] = rho, probes
    late = [w for r in runs if r["arm"] == "sophiag" and r["lr"] == best.get("sophiag")
            for step, w, _ in r["hessian_trace"] if step >= int(cfg.rho_tuning.after)]
    summary["win_rate_after"] = statistics.fmean(late) if late else None
    return Measurement(arms={"runs": runs}, summary=summary, plots=_plots(runs, best, ctx))


def tune_rho(cfg: Any, ctx: RunContext, train: Any) -> tuple[float, dict[str, float | None]]:
    """rho by the README's rule: the win rate (fraction of coordinates not clipped) should settle in a band
    (0.1-0.5) after the first steps, and a larger rho raises it. Probe each candidate on seed 0 at one lr and
    take the smallest rho whose late win rate lands in the band (else the one closest to it). Done once,
    before the lr sweep; rho is never tuned per seed."""
    t = cfg.rho_tuning
    lo, hi = (float(x) for x in t.band)
    probes: dict[str, float | None] = {}
    if len(t.rhos) == 1:  # a fixed rho (the paper preset): nothing to choose
        return float(t.rhos[0]), probes
    for i, rho in enumerate(float(x) for x in t.rhos):
        r = train("sophiag", float(t.lr), ctx.seeds[0], ctx.label(i + 1, len(t.rhos), f"rho probe {rho:g}"),
                  steps=int(t.steps), rho=rho)
        late = [w for step, w, _ in r["hessian_trace"] if step >= int(t.after)]
        probes[f"{rho:g}"] = None if r["diverged"] or not late else statistics.fmean(late)
        ctx.say(f"[{ctx.claim_id} rho probe] rho={rho:g}: late win rate {probes[f'{rho:g}']}")
    scored = [(float(k), v) for k, v in probes.items() if v is not None]
    if not scored:
        return float(cfg.arms.sophiag.rho), probes
    inside = [k for k, v in scored if lo <= v <= hi]
    if inside:
        return min(inside), probes
    return min(scored, key=lambda kv: min(abs(kv[1] - lo), abs(kv[1] - hi)))[0], probes


def summarize(runs: list[dict[str, Any]], best: Mapping[str, float | None], steps: int,
              tokens_per_step: int) -> dict[str, Any]:
    """Best-vs-best over seeds: AdamW's final loss as the target, SophiaG's first hitting step, R, SE."""
    s: dict[str, Any] = {"steps": steps, "tokens_per_step": tokens_per_step, "effective_batch_tokens": tokens_per_step,
                         "best": {}}
    for arm, lr in best.items():
        s["best"][arm], curve = best_arm(runs, arm, lr)
        train_s = [r["train_s"] for r in runs
                   if r["arm"] == arm and r["lr"] == lr and r["train_s"] and not r["diverged"]]
        s["best"][arm]["mean_curve"] = curve
        s["best"][arm]["train_s_per_step"] = statistics.fmean(train_s) / steps if train_s else None
    a, g = s["best"].get("adamw"), s["best"].get("sophiag")
    if not a or not g or not a["finals"] or not g["finals"]:
        s["ratio"] = None
        return s
    target = a["final_val_loss"]
    hit = first_hit([(x, y) for x, y in g["mean_curve"]], target)
    s["target"] = target
    s["sophia_hit_step"] = hit
    s["ratio"] = steps / hit if hit else None
    s["final_gap"] = a["final_val_loss"] - g["final_val_loss"]
    s["se"] = se_of_difference(a["finals"], g["finals"])
    if a["train_s_per_step"] and g["train_s_per_step"]:
        s["step_time_overhead"] = g["train_s_per_step"] / a["train_s_per_step"] - 1
        s["wallclock_ratio"] = (steps * a["train_s_per_step"]) / (hit * g["train_s_per_step"]) if hit else None
    for v in s["best"].values():  # the mean curves are in the runs; keep the summary small
        v.pop("mean_curve")
    return s


def _plots(runs: list[dict[str, Any]], best: Mapping[str, float | None], ctx: RunContext) -> dict[str, str]:
    chosen = {arm: [r for r in runs if r["arm"] == arm and r["lr"] == lr] for arm, lr in best.items() if lr}
    plots = {"val_vs_steps": str(plot_curves(
        {f"{a} lr={best[a]:g}": [r["val_curve"] for r in rs] for a, rs in chosen.items()},
        ctx.path("s1_val_vs_steps.png"), title="S1: validation loss at each arm's best lr (seed band)",
        xlabel="step", ylabel="val loss (nats/byte)"))}
    plots["val_vs_time"] = str(plot_curves(
        {f"{a} seed {r['seed']}": [[(t, v[1]) for (_, t), v in zip(r["val_train_s"], r["val_curve"], strict=True)]]
         for a, rs in chosen.items() for r in rs},
        ctx.path("s1_val_vs_time.png"), title="S1: validation loss against training time (incl. Hessian steps)",
        xlabel="training seconds", ylabel="val loss (nats/byte)"))
    traces = [[(step, w) for step, w, _ in r["hessian_trace"]] for r in chosen.get("sophiag", [])]
    if traces:
        plots["win_rate"] = str(plot_curves({"sophiag win rate": traces}, ctx.path("s1_win_rate.png"),
                                            title="S1: SophiaG win rate (fraction of coordinates not clipped)",
                                            xlabel="step", ylabel="win rate"))
    return plots
