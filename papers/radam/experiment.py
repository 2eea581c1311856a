"""Claims C2 (LR robustness without warmup, tiny post-LN Transformer) and C3 (CIFAR-style accuracy).

Both go through the protocol: arms share the LR grid, tuning seeds and the data order per seed. The module
imports light; Lightning, data and models load inside the functions.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.sweep import arm_summary, protocol_sweep
from papers.radam.verdicts import AccuracySummary, BestAccuracy, RobustnessSummary

# ---------------------------------------------------------------- C2: LR robustness without warmup

def _c2_arms(cfg: Any) -> Any:
    from common.lit.lm_sweep import LMArms

    def arm_config(section: Any, spec: Any) -> Any:
        """Constant lr (no decay); Adam+warmup's linear warmup is the only schedule difference between arms."""
        from omegaconf import OmegaConf

        warmup = int(spec.get("warmup_steps") or 0)
        return OmegaConf.merge(section, {"warmup_frac": warmup / int(section.steps), "min_lr_ratio": 1.0})

    def extras(entry: dict[str, Any], module: Any, run_cfg: Any) -> dict[str, Any]:
        initial = entry["val_curve"][0][1] if entry["val_curve"] else None
        final = entry["final_val_loss"]
        failed = (entry["diverged"] or final is None or initial is None or not math.isfinite(final)
                  or final > initial - float(cfg.fail_margin))
        return {"initial_val_loss": initial, "failed": failed}

    return LMArms(methods={"radam": _radam}, arm_config=arm_config, extras=extras, param_groups=None, name="c2")


def run_lr_robustness(cfg: Any, ctx: RunContext) -> Measurement:
    """Adam, Adam+warmup and RAdam through the shared LM sweep: each arm's lr tuned by the protocol (tuning seeds,
    bracketing), the choice on the eval seeds, and the whole original grid on the eval seeds for the spread and
    failure counts (sensitivity is a property of the grid, so it is measured on seeds that chose nothing)."""
    from omegaconf import OmegaConf

    from common.lit.lm_sweep import lm_sweep
    from common.results.plots import plot_lr_sweep

    section = OmegaConf.merge(cfg, {"eval_grid": True})
    sweep = lm_sweep(section, ctx, _c2_arms(cfg))
    base = sweep.summary
    fail_value = math.log(256) if cfg.data.get("level", "byte") == "byte" else None
    mean_final: dict[str, dict[str, float | None]] = {}
    for arm, per_lr in base.grid_eval.items():
        means = {}
        for lr, rows in per_lr.items():
            vals = [fail_value if r.failed or r.final is None or not math.isfinite(r.final) else r.final for r in rows]
            means[lr] = statistics.fmean(v for v in vals if v is not None) if any(v is not None for v in vals) \
                else None
        mean_final[arm] = means
    s = sweep.summary = RobustnessSummary.extending(
        base, failed_value=fail_value, mean_final=mean_final,
        spread={a: statistics.pstdev([v for v in m.values() if v is not None]) for a, m in mean_final.items()},
        failed={a: sum(r.failed for rows in per_lr.values() for r in rows) for a, per_lr in base.grid_eval.items()},
        runs_per_arm=len(cfg.lrs) * len(ctx.seeds))
    sweep.plots["lr_sweep"] = str(plot_lr_sweep(
        {arm: {float(lr): [None if r.failed else r.final for r in rows] for lr, rows in per_lr.items()}
         for arm, per_lr in s.grid_eval.items()},
        ctx.path("c2_lr_sweep.png"), title="C2: final val loss vs LR on the eval seeds (constant lr, post-LN)",
        ylabel="final val loss (nats/byte)", failed_value=fail_value))
    return sweep.measurement()


def _radam(lr: float, spec: Any, where: str) -> Any:
    from papers.radam.optimizers import radam_builder

    return radam_builder(lr, spec, where)


# ---------------------------------------------------------------- C3: accuracy table (gpu/paper)

def run_accuracy(cfg: Any, ctx: RunContext) -> Measurement:
    """SGD, Adam and RAdam on a CIFAR-style ResNet: lr by validation accuracy on the tuning seeds, test accuracy of
    the choice on the eval seeds."""
    from common.data.vision import image_datamodule
    from common.lit.classification import ClassificationModule
    from common.lit.fit import fit
    from common.lit.seed import seed_all
    from common.models.resnet import resnet
    from common.optim.schedules import step_decay
    from common.results.plots import plot_lr_sweep
    from papers.radam.optimizers import optimizer_factory

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
    # selection on validation error (100 - val acc %), judged on test accuracy of the eval seeds
    sweep = protocol_sweep(ctx, arms, {a: lrs for a in arms}, run, metric_name="val error (%)",
                           max_extensions=int(cfg.get("max_extensions", 2)),
                           metric=lambda r: None if r["val_acc"] is None or r["diverged"] else 100 - 100 * r["val_acc"])
    best, spread, grid = {}, {}, {}
    for arm in arms:
        grid[arm] = {f"{v:g}": sweep.tuning(arm).score(v) for v in sweep.tuning(arm).grid}
        tests = [r["test_acc"] for r in sweep.grid_runs(arm)]
        finite = [v if v is not None else 10.0 for v in tests]  # a failed run counts as chance
        spread[arm] = statistics.pstdev(finite) if len(finite) > 1 else 0.0
        accs = [r["test_acc"] for r in sweep.eval_runs(arm) if r["test_acc"] is not None]
        best[arm] = BestAccuracy(lr=sweep.chosen(arm), test_acc=statistics.fmean(accs) if accs else None,
                                 test_acc_std=statistics.pstdev(accs) if len(accs) > 1 else 0.0, n=len(accs))
    summary = AccuracySummary(tuning_seeds=list(ctx.tuning_seeds), eval_seeds=list(ctx.seeds),
                              arms={a: arm_summary(sweep, a) for a in arms}, best=best, spread=spread, grid=grid)
    plots = {"lr_sweep": str(plot_lr_sweep(
        {a: {float(k): [None if v == float("inf") else 100 - v] for k, v in summary.grid[a].items()} for a in arms},
        ctx.path("c3_lr_sweep.png"), title="C3: validation accuracy vs LR (mean over tuning seeds)",
        ylabel="val accuracy (%)"))}
    return Measurement(arms={"runs": sweep.runs}, summary=summary, plots=plots, protocol=sweep.protocol.to_record())
