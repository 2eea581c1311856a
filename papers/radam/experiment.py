"""Claims C2 (LR robustness without warmup, tiny post-LN Transformer) and C3 (CIFAR-style accuracy).

Both are Lightning runs through ``common.lit.fit``; arms share the LR grid and the data order per seed.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from common.data.text import TextDataModule
from common.data.vision import image_datamodule
from common.lit.classification import ClassificationModule
from common.lit.fit import fit
from common.lit.language_model import LanguageModelModule
from common.lit.seed import seed_all
from common.models.gpt import GPT, GPTConfig
from common.models.resnet import resnet
from common.optim.schedules import linear_warmup, step_decay
from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves, plot_lr_sweep
from common.results.sweep import full_grid, tune_then_seed
from papers.radam.optimizers import optimizer_factory


def _thin(curve: list, keep: int = 60) -> list:
    """Keep at most ``keep`` points of a curve (first and last always), to keep records small."""
    if len(curve) <= keep:
        return list(curve)
    step = (len(curve) - 1) / (keep - 1)
    return [curve[round(i * step)] for i in range(keep)]


# ---------------------------------------------------------------- C2: LR robustness without warmup

def run_lr_robustness(cfg: Any, ctx: RunContext) -> Measurement:
    """Adam, Adam+warmup and RAdam over the same LR grid, every seed at every grid point."""
    dm_args = dict(corpus=cfg.data.corpus, level=cfg.data.level, block_size=int(cfg.model.block_size),
                   batch_size=int(cfg.batch_size), max_bytes=cfg.data.get("max_bytes"),
                   val_batches=int(cfg.val_batches))
    fail_loss = math.log(256) if cfg.data.level == "byte" else None

    def run(arm: str, lr: float, seed: int, label: str) -> dict[str, Any]:
        seed_all(seed)
        dm = TextDataModule(seed=seed, **dm_args)
        dm.setup("fit")
        model = GPT(GPTConfig(vocab_size=dm.vocab_size, block_size=int(cfg.model.block_size),
                              n_layer=int(cfg.model.n_layer), n_head=int(cfg.model.n_head),
                              d_model=int(cfg.model.d_model), dropout=float(cfg.model.dropout),
                              norm_position=str(cfg.model.norm_position)))
        spec = cfg.arms[arm]
        sched = linear_warmup(int(spec.warmup_steps)) if spec.get("warmup_steps") else None
        module = LanguageModelModule(model, optimizer_factory(arm, lr, spec), sched)
        res = fit(module, dm, max_steps=int(cfg.steps), out_dir=ctx.out_dir, run_name=f"c2/{arm}/lr{lr:g}/s{seed}",
                  val_every=int(cfg.val_every), progress_label=label, trainer_kwargs=ctx.trainer)
        initial = res.val_curve[0][1]
        final = res.final_val_loss
        failed = (res.diverged or final is None or not math.isfinite(final)
                  or final > initial - float(cfg.fail_margin))
        return {"initial_val_loss": initial, "final_val_loss": final, "failed": failed,
                "diverged": res.diverged, "divergence_reason": res.divergence_reason,
                "val_curve": res.val_curve, "train_curve": _thin(res.train_curve), "wall_s": res.wall_s,
                "step_time_ms": res.step_time_ms_median, "state_bytes": res.state_bytes}

    arms = list(cfg.arms)
    lrs = [float(x) for x in cfg.lrs]
    runs = full_grid(ctx, arms, lrs, run)
    fail_value = fail_loss if fail_loss is not None else max(
        (r["initial_val_loss"] for r in runs), default=float("nan"))
    summary: dict[str, Any] = {"mean_final": {}, "best": {}, "spread": {}, "failed": {},
                               "runs_per_arm": len(lrs) * len(ctx.seeds), "failed_value": fail_value}
    sweep_plot: dict[str, dict[float, list]] = {}
    for arm in arms:
        per_lr: dict[str, float] = {}
        sweep_plot[arm] = {}
        for lr in lrs:
            losses = [fail_value if r["failed"] else r["final_val_loss"]
                      for r in runs if r["arm"] == arm and r["lr"] == lr]
            per_lr[f"{lr:g}"] = statistics.fmean(losses)
            sweep_plot[arm][lr] = [None if r["failed"] else r["final_val_loss"]
                                   for r in runs if r["arm"] == arm and r["lr"] == lr]
        ok = {lr: statistics.fmean(v) for lr, v in sweep_plot[arm].items() if v and all(x is not None for x in v)}
        best_lr = min(ok, key=ok.get) if ok else None
        summary["mean_final"][arm] = per_lr
        summary["best"][arm] = {"lr": best_lr, "loss": ok[best_lr] if best_lr is not None else None,
                                "loss_std": statistics.pstdev(sweep_plot[arm][best_lr]) if best_lr else None}
        summary["spread"][arm] = statistics.pstdev(per_lr.values())
        summary["failed"][arm] = sum(r["failed"] for r in runs if r["arm"] == arm)
    plots = {"lr_sweep": str(plot_lr_sweep(
        sweep_plot, ctx.path("c2_lr_sweep.png"), title="C2: final val loss vs LR (no LR decay, post-LN)",
        ylabel="final val loss (nats/byte)", failed_value=fail_value))}
    curves = {}
    for arm in arms:
        lr = summary["best"][arm]["lr"]
        if lr is not None:
            curves[f"{arm} lr={lr:g}"] = [r["val_curve"] for r in runs if r["arm"] == arm and r["lr"] == lr]
    plots["val_curves"] = str(plot_curves(curves, ctx.path("c2_val_curves.png"),
                                          title="C2: validation loss at each arm's best LR",
                                          xlabel="step", ylabel="val loss"))
    return Measurement(arms={"runs": runs}, summary=summary, plots=plots)


# ---------------------------------------------------------------- C3: accuracy table (gpu/paper)

def run_accuracy(cfg: Any, ctx: RunContext) -> Measurement:
    """SGD, Adam and RAdam on a CIFAR-style ResNet: sweep on seed 0 (by val acc), best LR on the rest."""
    dm_args = dict(batch_size=int(cfg.batch_size), root=cfg.data.get("root"), pad_to=int(cfg.data.pad_to),
                   augment=bool(cfg.data.augment), val_size=int(cfg.data.val_size), subset=cfg.data.get("subset"),
                   test_size=cfg.data.get("test_size"))

    def run(arm: str, lr: float, seed: int, label: str) -> dict[str, Any]:
        seed_all(seed)
        dm = image_datamodule(str(cfg.data.dataset), seed=seed, **dm_args)
        dm.setup("fit")
        steps = int(cfg.epochs) * math.ceil(dm.num_train / int(cfg.batch_size))
        model = resnet(int(cfg.model.depth), num_classes=dm.num_classes, in_channels=dm.in_channels)
        module = ClassificationModule(model, optimizer_factory(arm, lr, cfg.arms[arm]),
                                      step_decay(steps, cfg.decay_at, 0.1))
        res = fit(module, dm, max_steps=steps, out_dir=ctx.out_dir, run_name=f"c3/{arm}/lr{lr:g}/s{seed}",
                  val_every=max(1, steps // int(cfg.evals)), progress_label=label, test=True,
                  trainer_kwargs=ctx.trainer)
        test_acc = res.test_metrics.get("test/acc")
        return {"val_acc": res.final_val_acc, "test_acc": None if test_acc is None else 100.0 * test_acc,
                "diverged": res.diverged, "divergence_reason": res.divergence_reason,
                "val_curve": res.val_curve, "wall_s": res.wall_s, "steps": steps}

    arms = list(cfg.arms)
    lrs = [float(x) for x in cfg.lrs]
    runs, best_lr = tune_then_seed(ctx, arms, lrs, run,
                                   score=lambda r: None if r["val_acc"] is None or r["diverged"] else -r["val_acc"])
    first = ctx.seeds[0]
    summary: dict[str, Any] = {"best": {}, "spread": {}, "grid": {}}
    for arm in arms:
        grid = {f"{r['lr']:g}": r["test_acc"] for r in runs if r["arm"] == arm and r["seed"] == first}
        summary["grid"][arm] = grid
        finite = [v if v is not None else 10.0 for v in grid.values()]  # a failed run counts as chance
        summary["spread"][arm] = statistics.pstdev(finite) if len(finite) > 1 else 0.0
        lr = best_lr[arm]
        accs = [r["test_acc"] for r in runs if r["arm"] == arm and r["lr"] == lr and r["test_acc"] is not None]
        summary["best"][arm] = {"lr": lr, "test_acc": statistics.fmean(accs) if accs else None,
                                "test_acc_std": statistics.pstdev(accs) if len(accs) > 1 else 0.0,
                                "n": len(accs)}
    plots = {"lr_sweep": str(plot_lr_sweep(
        {a: {float(k): [v] for k, v in summary["grid"][a].items()} for a in arms},
        ctx.path("c3_lr_sweep.png"), title=f"C3: test accuracy vs LR (seed {first})", ylabel="test accuracy (%)"))}
    return Measurement(arms={"runs": runs}, summary=summary, plots=plots)
