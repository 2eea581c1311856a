"""Claims A3 (alpha-SVRG vs SVRG vs the AdamW baseline), A4 (STORM's estimator error vs EMA momentum) and A5
(cluster multi-momentum vs single momentum, clean and noisy labels): Fashion-MNIST MLPs trained through one
manual-optimization LightningModule (``papers.vr_methods.lit.VRClassifier``) with ``common.lit.fit``.

Every arm of a claim is tuned over the same lr grid on the first seed, then its best lr runs on the other seeds
(``common.results.sweep.tune_then_seed``); all comparisons are best vs best. Full-pass quantities (the training
loss, the full gradient for the estimator error) are computed on the in-memory training subset.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any

import torch

from common.errors import ConfigError
from common.lit.callbacks import DivergenceMonitor
from common.lit.fit import fit
from common.lit.seed import seed_all
from common.models.mlp import mlp
from common.optim.arms import require
from common.optim.baselines import OptimizerFactory, baseline_factory
from common.optim.schedules import warmup_cosine
from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves, plot_lr_sweep
from common.results.stats import first_hit, mean_curve, mean_sd, se_of_difference
from common.results.sweep import tune_then_seed
from papers.vr_methods.cluster_momentum import ClusterMomentum
from papers.vr_methods.data import VRFashionMNIST
from papers.vr_methods.lit import EstimatorErrorProbe, TrainLossProbe, VarianceProbe, VRClassifier, chunks
from papers.vr_methods.storm import STORM
from papers.vr_methods.svrg import SVRG


def geometric_widths(in_features: int, num_classes: int, layers: int) -> list[int]:
    """Hidden widths of an MLP with ``layers`` linear layers shrinking geometrically from the input to the classes
    (alpha-SVRG's MLP-4 sizing read for one 784-pixel channel: 784 -> 264 -> 89 -> 30 -> 10)."""
    ratio = (num_classes / in_features) ** (1.0 / layers)
    return [round(in_features * ratio ** i) for i in range(1, layers)]


def build_model(spec: Mapping[str, Any], in_features: int, num_classes: int) -> Any:
    if spec.get("kind", "mlp") != "mlp":
        raise ConfigError(f"model.kind {spec.get('kind')!r} has no builder here (mlp only; the gpu preset documents "
                          "the paper's ResNet/ConvNeXt recipe)")
    hidden = (geometric_widths(in_features, num_classes, int(spec["geometric_layers"]))
              if spec.get("geometric_layers") else [int(h) for h in spec.get("hidden", [])])
    return mlp(in_features, hidden, num_classes)


def optimizer_for(arm: str, lr: float, spec: Mapping[str, Any], *, epochs: int,
                  cluster_weights: list[float] | None) -> OptimizerFactory:
    """The arm's optimizer: a torch baseline, SVRG around a baseline, STORM or ClusterMomentum."""
    kind = spec.get("optimizer", arm)
    where = f"arm {arm}"
    if kind == "svrg":
        require(spec, ["base", "coefficient", "schedule", "snapshot_every"], where)
        inner = baseline_factory(str(spec["base"]), lr, spec, where)
        if inner is None:
            raise ConfigError(f"{where}: base {spec['base']!r} is not a torch baseline (adam, adamw, radam, sgd)")
        n_intervals = max(1, epochs // int(spec["snapshot_every"]))
        return lambda params: SVRG(params, base=inner, coefficient=float(spec["coefficient"]),
                                   schedule=str(spec["schedule"]),
                                   n_intervals=n_intervals if spec["schedule"] == "linear" else None)
    if kind == "storm":
        require(spec, ["a"], where)
        return lambda params: STORM(params, lr=lr, a=float(spec["a"]), weight_decay=float(spec.get("weight_decay", 0)))
    if kind == "cluster_momentum":
        require(spec, ["momentum", "dampening", "clusters"], where)
        weights = cluster_weights or [1.0]
        return lambda params: ClusterMomentum(params, lr=lr, momentum=float(spec["momentum"]),
                                              dampening=float(spec["dampening"]), cluster_weights=weights)
    factory = baseline_factory(str(kind), lr, spec, where)
    if factory is None:
        raise ConfigError(f"{where}: unknown optimizer {kind!r}; valid: svrg, storm, cluster_momentum, adam, adamw, "
                          "radam, sgd")
    if kind == "sgd" and "dampening" in spec:  # EMA momentum (A4): torch SGD with dampening
        return lambda params: torch.optim.SGD(params, lr=lr, momentum=float(spec["momentum"]),
                                              dampening=float(spec["dampening"]))
    return factory


def train_arm(cfg: Any, ctx: RunContext, claim: str, arm: str, spec: Mapping[str, Any], lr: float, seed: int,
              label: str, *, error_key: str | None = None) -> dict[str, Any]:
    """One Lightning run; returns final metrics, the full-pass train-loss curve and, with ``error_key``, the
    estimator-error curve."""
    seed_all(seed)
    data = cfg.data
    dm = VRFashionMNIST(batch_size=int(cfg.batch_size), root=data.get("root"), val_size=int(data.val_size),
                        subset=data.get("subset"), balanced=bool(data.get("balanced", False)), seed=seed,
                        test_size=data.get("test_size"), clusters=str(spec.get("clusters", "none")),
                        label_noise=float(spec.get("label_noise", 0.0)), noise_seed=int(data.get("noise_seed", 0)))
    dm.setup("fit")
    steps_per_epoch = len(dm.train_dataloader())
    epochs = int(cfg.epochs)
    steps = epochs * steps_per_epoch
    x, y_obs = dm.tensors("train")
    y_clean = dm.clean_train_labels()
    full = chunks(x, y_obs, int(cfg.get("full_batch_size", 2000)))
    clean = chunks(x, y_clean, int(cfg.get("full_batch_size", 2000)))
    every = max(1, int(cfg.get("loss_every", steps // 10)))
    probes: list[Any] = [TrainLossProbe(clean, every)]
    if error_key is not None:
        probes.append(EstimatorErrorProbe(full, int(cfg.error_every), error_key))
    variance = None
    if int(cfg.get("variance_probes", 0)) and seed == ctx.seeds[0]:  # alpha-SVRG's metrics 1-3, first seed
        # probes just after each snapshot (step k * steps_per_epoch) and mid-epoch, before the update
        variance = VarianceProbe(x, y_obs, max(1, steps_per_epoch // 2), int(cfg.variance_probes),
                                 int(cfg.batch_size), seed)
        probes.append(variance)
    model = build_model(cfg.model, x[0].numel(), dm.num_classes)
    factory = optimizer_for(arm, lr, spec, epochs=epochs,
                            cluster_weights=dm.cluster_weights() if spec.get("clusters") == "labels" else None)
    schedule = warmup_cosine(steps, 0, 0.0) if cfg.get("schedule") == "cosine" else None
    module = VRClassifier(model, factory, schedule, snapshot_batches=chunks(x, y_obs, int(cfg.get(
        "snapshot_batch_size", 2000))), snapshot_every=int(spec.get("snapshot_every", 1)),
        bn_mode=str(cfg.get("bn_mode", "freeze")), probes=probes)
    res = fit(module, dm, max_steps=steps, out_dir=ctx.out_dir, run_name=f"{claim}/{arm}/lr{lr:g}/s{seed}",
              val_every=steps, progress_label=label, test=bool(cfg.get("test", False)),
              trainer_kwargs={**ctx.trainer, "callbacks": [DivergenceMonitor(explode_factor=8.0, patience=3)]})
    curve = probes[0].curve
    final = curve[-1][1] if curve else math.nan
    diverged = res.diverged or not math.isfinite(final)
    out = {"final_train_loss": None if diverged else final, "loss_curve": curve, "diverged": diverged,
           "divergence_reason": res.divergence_reason, "val_acc": res.final_val_acc, "steps": steps,
           "test_acc": None if res.test_metrics.get("test/acc") is None else 100.0 * res.test_metrics["test/acc"],
           "wall_s": res.wall_s, "full_passes": module.full_passes, "step_time_ms": res.step_time_ms_median}
    if variance is not None:
        out["variance"] = [{"step": st, **m} for st, m in variance.points]
    if error_key is not None:
        out["error_curve"] = probes[1].curve
        later = [e for s, e in probes[1].curve if s > 0]  # step 0: both estimators are the first gradient
        out["mean_error"] = statistics.fmean(later) if later and not diverged else None
    return out


def _loss_score(r: dict[str, Any]) -> float | None:
    return None if r["diverged"] else r["final_train_loss"]


def _best(runs: list[dict[str, Any]], arm: str, lr: float | None, key: str) -> dict[str, Any]:
    vals = [r[key] for r in runs if r["arm"] == arm and r["lr"] == lr and not r["diverged"] and r[key] is not None]
    mean, sd = mean_sd(vals) if vals else (None, None)
    return {"lr": lr, "mean": mean, "sd": sd, "n": len(vals), "values": vals}


def _grid(runs: list[dict[str, Any]], arm: str, seed: int, key: str) -> dict[str, Any]:
    return {f"{r['lr']:g}": r[key] for r in runs if r["arm"] == arm and r["seed"] == seed}


def _sweep(cfg: Any, ctx: RunContext, claim: str, score: Any, error_key: Mapping[str, str] | None = None
           ) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    arms = list(cfg.arms)
    lrs = [float(v) for v in cfg.lrs]

    def run(arm: str, lr: float, seed: int, label: str) -> dict[str, Any]:
        return train_arm(cfg, ctx, claim, arm, cfg.arms[arm], lr, seed, label,
                         error_key=(error_key or {}).get(arm))

    return tune_then_seed(ctx, arms, lrs, run, score=score)


def _curves_plot(runs: list[dict[str, Any]], best: Mapping[str, float | None], key: str, path: Any, title: str,
                 ylabel: str, logy: bool = True) -> str:
    arms = {f"{a} lr={lr:g}": [r[key] for r in runs if r["arm"] == a and r["lr"] == lr and r.get(key)]
            for a, lr in best.items() if lr is not None}
    return str(plot_curves(arms, path, title=title, xlabel="step", ylabel=ylabel, logy=logy))


def _sweep_plot(runs: list[dict[str, Any]], arms: list[str], seed: int, key: str, path: Any, title: str,
                ylabel: str) -> str:
    return str(plot_lr_sweep({a: {r["lr"]: [r[key]] for r in runs if r["arm"] == a and r["seed"] == seed}
                              for a in arms}, path, title=title, ylabel=ylabel))


# ---- A3 ----------------------------------------------------------------------------------------------------------
def run_alpha_svrg(cfg: Any, ctx: RunContext) -> Measurement:
    runs, best = _sweep(cfg, ctx, "a3", _loss_score)
    arms = list(cfg.arms)
    s: dict[str, Any] = {"best": {a: _best(runs, a, best[a], "final_train_loss") for a in arms},
                         "grid": {a: _grid(runs, a, ctx.seeds[0], "final_train_loss") for a in arms}}
    base, svrg, alpha = (s["best"].get(k) for k in ("baseline", "svrg", "alpha_svrg"))
    if base and alpha and base["values"] and alpha["values"]:
        s["alpha_minus_base"] = alpha["mean"] - base["mean"]
        s["se_alpha_base"] = se_of_difference(alpha["values"], base["values"])
    if base and svrg and base["values"] and svrg["values"]:
        s["svrg_minus_base"] = svrg["mean"] - base["mean"]
        s["se_svrg_base"] = se_of_difference(svrg["values"], base["values"])
    first = {a: next((r for r in runs if r["arm"] == a and r["lr"] == best[a] and r["seed"] == ctx.seeds[0]
                      and r.get("variance")), None) for a in arms}
    s["variance_seed0"] = {a: r["variance"] for a, r in first.items() if r}
    plots = {"train_loss": _curves_plot(runs, best, "loss_curve", ctx.path("a3_train_loss.png"),
                                        "A3: full-pass train loss at each arm's best lr (seed band)", "train loss"),
             "lr_sweep": _sweep_plot(runs, arms, ctx.seeds[0], "final_train_loss", ctx.path("a3_lr_sweep.png"),
                                     f"A3: final train loss vs lr (seed {ctx.seeds[0]})", "final train loss")}
    if s["variance_seed0"]:
        plots["gradient_variance"] = str(plot_curves(
            {f"{a} lr={best[a]:g}": [[(p["step"], p["total_variance"]) for p in v]]
             for a, v in s["variance_seed0"].items()}, ctx.path("a3_gradient_variance.png"), logy=True,
            title=f"A3: total variance of each arm's gradient estimate (seed {ctx.seeds[0]}, best lr)",
            xlabel="step", ylabel="Σ_k Var(g_k)"))
    return Measurement(arms={"runs": runs}, summary=s, plots=plots)


# ---- A4 ----------------------------------------------------------------------------------------------------------
def run_storm(cfg: Any, ctx: RunContext) -> Measurement:
    keys = {a: ("d" if cfg.arms[a].get("optimizer") == "storm" else "momentum_buffer") for a in cfg.arms}
    runs, best = _sweep(cfg, ctx, "a4", _loss_score, error_key=keys)
    arms = list(cfg.arms)
    s: dict[str, Any] = {"best": {}, "grid": {a: _grid(runs, a, ctx.seeds[0], "mean_error") for a in arms},
                         "grid_loss": {a: _grid(runs, a, ctx.seeds[0], "final_train_loss") for a in arms}}
    for a in arms:
        s["best"][a] = {"loss": _best(runs, a, best[a], "final_train_loss"), "error": _best(runs, a, best[a],
                                                                                            "mean_error")}
    st, mo = s["best"].get("storm"), s["best"].get("momentum")
    if st and mo and st["error"]["values"] and mo["error"]["values"]:
        s["error_ratio"] = st["error"]["mean"] / mo["error"]["mean"]
        s["loss_gap"] = st["loss"]["mean"] - mo["loss"]["mean"]  # > 0: STORM worse
        s["loss_se"] = se_of_difference(st["loss"]["values"], mo["loss"]["values"])
        same = {lr: (_grid(runs, "storm", ctx.seeds[0], "mean_error").get(lr),
                     _grid(runs, "momentum", ctx.seeds[0], "mean_error").get(lr)) for lr in s["grid"]["storm"]}
        s["error_ratio_equal_lr"] = {lr: (a / b if a is not None and b else None) for lr, (a, b) in same.items()}
    plots = {"estimator_error": _curves_plot(runs, best, "error_curve", ctx.path("a4_estimator_error.png"),
                                             "A4: ||d_t - grad F(x_t)||^2 at each arm's best lr (seed band)",
                                             "estimator error"),
             "train_loss": _curves_plot(runs, best, "loss_curve", ctx.path("a4_train_loss.png"),
                                        "A4: full-pass train loss at each arm's best lr (seed band)", "train loss")}
    return Measurement(arms={"runs": runs}, summary=s, plots=plots)


# ---- A5 ----------------------------------------------------------------------------------------------------------
def _a5_score(r: dict[str, Any]) -> float | None:
    if r["diverged"]:
        return None
    return -r["val_acc"] if r["arm"].endswith("noisy") else r["final_train_loss"]


def run_cluster(cfg: Any, ctx: RunContext) -> Measurement:
    runs, best = _sweep(cfg, ctx, "a5", _a5_score)
    arms = list(cfg.arms)
    s: dict[str, Any] = {"best": {}, "grid": {}}
    for a in arms:
        s["best"][a] = {"loss": _best(runs, a, best[a], "final_train_loss"), "test_acc": _best(runs, a, best[a],
                                                                                               "test_acc")}
        s["grid"][a] = _grid(runs, a, ctx.seeds[0], "final_train_loss" if a.endswith("clean") else "test_acc")
    k1, k10 = s["best"].get("k1_clean"), s["best"].get("k10_clean")
    if k1 and k10 and k1["loss"]["values"] and k10["loss"]["values"]:
        target = k1["loss"]["mean"]
        curve = mean_curve([r["loss_curve"] for r in runs
                            if r["arm"] == "k10_clean" and r["lr"] == best["k10_clean"] and not r["diverged"]])
        hit = first_hit(curve, target)
        total = next(r["steps"] for r in runs if r["arm"] == "k1_clean")
        s["clean"] = {"target": target, "hit_step": hit, "steps": total,
                      "step_fraction": None if hit is None else hit / total,
                      "loss_gap": k10["loss"]["mean"] - k1["loss"]["mean"],  # > 0: K=10 slower
                      "se": se_of_difference(k10["loss"]["values"], k1["loss"]["values"])}
    n1, n10 = s["best"].get("k1_noisy"), s["best"].get("k10_noisy")
    if n1 and n10 and n1["test_acc"]["values"] and n10["test_acc"]["values"]:
        s["noisy"] = {"acc_gap": n10["test_acc"]["mean"] - n1["test_acc"]["mean"],
                      "se": se_of_difference(n10["test_acc"]["values"], n1["test_acc"]["values"])}
    plots = {"train_loss": _curves_plot(runs, best, "loss_curve", ctx.path("a5_train_loss.png"),
                                        "A5: full-pass train loss (clean labels) at each arm's best lr (seed band)",
                                        "train loss"),
             "lr_sweep": _sweep_plot(runs, [a for a in arms if a.endswith("noisy")], ctx.seeds[0], "test_acc",
                                     ctx.path("a5_noisy_lr_sweep.png"),
                                     f"A5: test accuracy vs lr, 30% label noise (seed {ctx.seeds[0]})",
                                     "test accuracy (%)")}
    return Measurement(arms={"runs": runs}, summary=s, plots=plots)
