"""Claim C2: AdaBelief trains as fast as Adam and tests at least as well as SGD (Fashion-MNIST CNN at cpu,
CIFAR-shaped VGG/ResNet at gpu/paper), with the paper's step decay late in training.

On the tuning-and-evidence protocol: every arm's lr is tuned on the tuning seeds by the final validation error
(held-out training images, never the test set), with bracketing; the chosen lr runs on the eval seeds, where
the test accuracy and the training-loss speed metric are measured and compared by paired tests."""

from __future__ import annotations

import math
import statistics
from typing import Any

from common.data.vision import image_datamodule
from common.lit.classification import ClassificationModule
from common.lit.fit import fit
from common.lit.seed import seed_all
from common.models.build import build_classifier
from common.optim.schedules import step_decay
from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves, plot_lr_sweep
from common.results.sweep import SweepResult, arm_summary, protocol_sweep
from papers.adabelief.optimizers import optimizer_factory
from papers.adabelief.verdicts import GeneralizationArm, GeneralizationSummary


def train_loss_at(curve: list, fraction: float, total_steps: int, window: float = 0.05) -> float | None:
    """Mean logged train loss over the ``window`` of steps ending at ``fraction`` of training: the
    "speed" metric (a single minibatch loss is too noisy to compare arms)."""
    hi = fraction * total_steps
    lo = hi - window * total_steps
    points = [(s, v) for s, v in curve if v is not None and s < hi]
    vals = [v for s, v in points if s >= lo] or [v for _, v in points[-1:]]  # short runs: the last point
    return statistics.fmean(vals) if vals else None


def run_generalization(cfg: Any, ctx: RunContext) -> Measurement:
    dm_args = dict(batch_size=int(cfg.batch_size), root=cfg.data.get("root"), pad_to=int(cfg.data.pad_to),
                   augment=bool(cfg.data.augment), val_size=int(cfg.data.val_size), subset=cfg.data.get("subset"),
                   balanced=bool(cfg.data.get("balanced", False)), test_size=cfg.data.get("test_size"))
    speed_at = float(cfg.speed_at)

    def run(arm: str, lr: float, seed: int, label: str) -> dict[str, Any]:
        seed_all(seed)
        dm = image_datamodule(str(cfg.data.dataset), seed=seed, **dm_args)
        dm.setup("fit")
        steps = int(cfg.epochs) * math.ceil(dm.num_train / int(cfg.batch_size))
        module = ClassificationModule(build_classifier(cfg.model, dm), optimizer_factory(arm, lr, cfg.arms[arm]),
                                      step_decay(steps, cfg.decay_at, 0.1))
        res = fit(module, dm, max_steps=steps, out_dir=ctx.out_dir, run_name=f"c2/{arm}/lr{lr:g}/s{seed}",
                  val_every=max(1, steps // int(cfg.evals)), progress_label=label, test=True,
                  trainer_kwargs=ctx.trainer)
        test_acc = res.test_metrics.get("test/acc")
        return {"val_acc": res.final_val_acc, "test_acc": None if test_acc is None else 100.0 * test_acc,
                "train_loss_at_speed": train_loss_at(res.train_curve, speed_at, steps),
                "final_train_loss": res.final_train_loss, "diverged": res.diverged,
                "divergence_reason": res.divergence_reason, "val_curve": res.val_curve,
                "train_curve": res.train_curve[:: max(1, len(res.train_curve) // 100)], "wall_s": res.wall_s,
                "steps": steps, "step_time_ms": res.step_time_ms_median, "state_bytes": res.state_bytes}

    def metric(r: dict[str, Any]) -> float | None:  # selection: final val error (%), lower is better
        return None if r["val_acc"] is None or r["diverged"] else 100.0 * (1.0 - float(r["val_acc"]))

    arms = list(cfg.arms)
    grids = {a: [float(x) for x in cfg.arms[a].lrs] for a in arms}  # SGD's grid is offset (its own lr scale)
    sweep = protocol_sweep(ctx, arms, grids, run, metric, metric_name="val error (%)",
                           max_extensions=int(cfg.get("max_extensions", 2)))
    summary = GeneralizationSummary(tuning_seeds=list(ctx.tuning_seeds), eval_seeds=list(ctx.seeds),
                                    arms={a: _arm(sweep, a) for a in arms}, speed_at=speed_at)
    plots = {"lr_sweep": str(plot_lr_sweep(
        {a: {float(v): [sc if math.isfinite(sc) else None] for v, sc in summary.arms[a].grid.items()}
         for a in arms},
        ctx.path("c2_lr_sweep.png"), title="C2: val error vs LR (mean over tuning seeds)", ylabel="val error (%)"))}
    curves = {f"{a} lr={sweep.chosen(a):g}": [r["train_curve"] for r in sweep.eval_runs(a)]
              for a in arms if sweep.chosen(a) is not None}
    plots["train_loss"] = str(plot_curves(curves, ctx.path("c2_train_loss.png"), logy=True,
                                          title="C2: training loss at each arm's chosen LR (eval seeds, band)",
                                          xlabel="step", ylabel="train loss"))
    return Measurement(arms={"runs": sweep.runs}, summary=summary, plots=plots, protocol=sweep.protocol.to_record())


def _arm(sweep: SweepResult, arm: str) -> GeneralizationArm:
    """An arm's :class:`ArmSummary` with its eval seeds' test accuracy and speed loss."""
    ev = sweep.eval_runs(arm)
    test_acc = [r["test_acc"] for r in ev]
    loss = [r["train_loss_at_speed"] for r in ev]
    return GeneralizationArm.extending(arm_summary(sweep, arm), test_acc=test_acc, train_loss_at_speed=loss,
                                       test_acc_mean=_mean(test_acc), test_acc_sd=_sd(test_acc),
                                       train_loss_at_speed_mean=_mean(loss))


def _mean(xs: list[float | None]) -> float | None:
    f = [x for x in xs if x is not None and math.isfinite(x)]
    return statistics.fmean(f) if f else None


def _sd(xs: list[float | None]) -> float | None:
    f = [x for x in xs if x is not None and math.isfinite(x)]
    return statistics.stdev(f) if len(f) > 1 else (0.0 if f else None)
