"""Claims A3 (alpha-SVRG vs SVRG vs the AdamW baseline), A4 (STORM's estimator error vs EMA momentum) and A5
(cluster multi-momentum vs single momentum, clean and noisy labels): Fashion-MNIST MLPs (A3's paper preset:
ConvNeXt-femto, via ``common.models.build.build_classifier``) trained through one manual-optimization
LightningModule (``papers.vr_methods.lit.VRClassifier``) with ``common.lit.fit``.

Every arm of a claim goes through the tuning-and-evidence protocol (``common.results.sweep.protocol_sweep``): its
lr is tuned on the tuning seeds over the same x2 grid as every other arm (mean of the end-of-run metric, a
diverged point scores +inf, at most ``max_extensions`` grid steps past an unbracketed edge), then the chosen lr
runs on the eval seeds, the same paired seeds for every arm. A4 also compares the two estimators at equal lrs on
a shared grid (the claim is about the estimator, not the tuned optimizer). Full-pass quantities (the training
loss, the full gradient for the estimator error) are computed on the in-memory training subset.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import torch

from common.errors import ConfigError
from common.lit.callbacks import DivergenceMonitor
from common.lit.fit import fit
from common.lit.seed import seed_all
from common.models.build import build_classifier
from common.models.mlp import mlp
from common.optim.arms import require
from common.optim.baselines import OptimizerFactory, baseline_factory
from common.optim.schedules import warmup_cosine
from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves, plot_lr_sweep
from common.results.protocol import ratio_estimate, steps_to_target, tune_arm
from common.results.sweep import ShortRuns, SweepResult, arm_summary, full_grid, protocol_sweep
from papers.vr_methods.cluster_momentum import ClusterMomentum
from papers.vr_methods.data import VRFashionMNIST
from papers.vr_methods.lit import EstimatorErrorProbe, TrainLossProbe, VarianceProbe, VRClassifier, chunks
from papers.vr_methods.storm import STORM
from papers.vr_methods.svrg import SVRG
from papers.vr_methods.verdicts import AlphaSvrgSummary, ClusterSummary, StormArm, StormSummary


def geometric_widths(in_features: int, num_classes: int, layers: int) -> list[int]:
    """Hidden widths of an MLP with ``layers`` linear layers shrinking geometrically from the input to the classes
    (alpha-SVRG's MLP-4 sizing read for one 784-pixel channel: 784 -> 264 -> 89 -> 30 -> 10)."""
    ratio = (num_classes / in_features) ** (1.0 / layers)
    return [round(in_features * ratio ** i) for i in range(1, layers)]


def build_model(spec: Mapping[str, Any], in_features: int, num_classes: int,
                image_shape: tuple[int, ...] | None = None) -> Any:
    """``kind: mlp`` (``hidden`` or ``geometric_layers``) on flattened inputs; any other kind (e.g. alpha-SVRG's
    ``convnext_femto``) goes to ``common.models.build.build_classifier`` for images of ``image_shape`` (C, H, W)."""
    kind = spec.get("kind", "mlp")
    if kind != "mlp":
        if image_shape is None or len(image_shape) != 3:
            raise ConfigError(f"model.kind {kind!r} needs image inputs (C, H, W), got shape {image_shape}")
        shape = SimpleNamespace(num_classes=num_classes, in_channels=image_shape[0], image_size=image_shape[-1])
        return build_classifier(spec, shape)
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
              label: str, *, error_key: str | None = None, variance_wanted: bool = False) -> dict[str, Any]:
    """One Lightning run; returns final metrics, the full-pass train-loss curve (also at the steps that
    ``cfg.loss_at_fractions`` of the run name) and, with ``error_key``, the estimator-error curve; with
    ``variance_wanted``, alpha-SVRG's gradient-variance metrics."""
    seed_all(seed)
    data = cfg.data
    dm = VRFashionMNIST(batch_size=int(cfg.batch_size), root=data.get("root"), val_size=int(data.val_size),
                        subset=data.get("subset"), balanced=bool(data.get("balanced", False)), seed=seed,
                        test_size=data.get("test_size"), clusters=str(spec.get("clusters", "none")),
                        label_noise=float(spec.get("label_noise", 0.0)), noise_seed=int(data.get("noise_seed", 0)))
    dm.setup("fit")
    steps_per_epoch = len(dm.train_dataloader())
    epochs = int(cfg.epochs)
    x, y_obs = dm.tensors("train")
    if cfg.get("equal_steps"):  # one step budget for every arm: one-cluster batches add a partial batch per cluster
        steps_per_epoch = math.ceil(len(y_obs) / int(cfg.batch_size))
    steps = epochs * steps_per_epoch
    y_clean = dm.clean_train_labels()
    full = chunks(x, y_obs, int(cfg.get("full_batch_size", 2000)))
    clean = chunks(x, y_clean, int(cfg.get("full_batch_size", 2000)))
    every = max(1, int(cfg.get("loss_every", steps // 10)))
    at = [round(float(f) * steps) for f in cfg.get("loss_at_fractions") or []]
    probes: list[Any] = [TrainLossProbe(clean, every, at)]
    if error_key is not None:
        probes.append(EstimatorErrorProbe(full, int(cfg.error_every), error_key))
    variance = None
    if int(cfg.get("variance_probes", 0)) and variance_wanted:  # alpha-SVRG's metrics 1-3
        # probes just after each snapshot (step k * steps_per_epoch) and mid-epoch, before the update
        variance = VarianceProbe(x, y_obs, max(1, steps_per_epoch // 2), int(cfg.variance_probes),
                                 int(cfg.batch_size), seed)
        probes.append(variance)
    model = build_model(cfg.model, x[0].numel(), dm.num_classes, tuple(x.shape[1:]))
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


def _final_loss(r: Mapping[str, Any]) -> float | None:
    return None if r["diverged"] else r["final_train_loss"]


class Runs:
    """(arm, lr, seed) -> one training run, run once per claim: the protocol sweep, the equal-lr grid (A4) and the
    step claim's candidates (A5) ask for the same runs, and ``RunContext.cached`` only reuses them under --resume."""

    def __init__(self, cfg: Any, ctx: RunContext, claim: str, error_key: Mapping[str, str] | None = None) -> None:
        self.cfg, self.ctx, self.claim, self.error_key = cfg, ctx, claim, dict(error_key or {})
        self.done: dict[tuple[str, float, int], dict[str, Any]] = {}

    def __call__(self, arm: str, lr: float, seed: int, label: str) -> dict[str, Any]:
        key = (arm, float(f"{lr:.6g}"), seed)
        if key not in self.done:
            self.done[key] = train_arm(self.cfg, self.ctx, self.claim, arm, self.cfg.arms[arm], lr, seed, label,
                                       error_key=self.error_key.get(arm), variance_wanted=seed == self.ctx.seeds[0])
        return self.done[key]


def _grids(cfg: Any) -> dict[str, list[float]]:
    return {a: [float(x) for x in cfg.arms[a].get("lrs", cfg.lrs)] for a in cfg.arms}


def _sweep(cfg: Any, ctx: RunContext, runs: Runs, metric: Any, metric_name: str) -> SweepResult:
    """Every arm's lr tuned on the tuning seeds (same grid, same extension rule), its choice run on the eval seeds."""
    return protocol_sweep(ctx, list(cfg.arms), _grids(cfg), runs, metric, metric_name=metric_name,
                          max_extensions=int(cfg.get("max_extensions", 2)))


def _eval_curves_plot(sweep: SweepResult, arms: list[str], key: str, path: Any, title: str, ylabel: str,
                      logy: bool = True) -> str:
    curves = {f"{a} lr={sweep.chosen(a):g}": [r[key] for r in sweep.eval_runs(a) if r.get(key)]
              for a in arms if sweep.chosen(a) is not None}
    return str(plot_curves(curves, path, title=title, xlabel="step", ylabel=ylabel, logy=logy))


def _tuning_plot(sweep: SweepResult, arms: list[str], path: Any, title: str, ylabel: str,
                 sign: float = 1.0) -> str:
    """Each arm's selection statistic (mean over tuning seeds) against lr, extensions included."""
    data = {}
    for a in arms:
        t = sweep.tuning(a)
        data[a] = {v: [sign * t.score(v) if math.isfinite(t.score(v)) else None] for v in t.grid}
    return str(plot_lr_sweep(data, path, title=title, ylabel=ylabel))


# ---- A3 ----------------------------------------------------------------------------------------------------------
def run_alpha_svrg(cfg: Any, ctx: RunContext) -> Measurement:
    runs = Runs(cfg, ctx, "a3")
    sweep = _sweep(cfg, ctx, runs, _final_loss, "full-pass train loss")
    arms = list(cfg.arms)
    first = {a: next((r for r in sweep.eval_runs(a) if r["seed"] == ctx.seeds[0] and r.get("variance")), None)
             for a in arms}
    s = AlphaSvrgSummary(tuning_seeds=list(ctx.tuning_seeds), eval_seeds=list(ctx.seeds),
                         arms={a: arm_summary(sweep, a) for a in arms},
                         variance_seed0={a: r["variance"] for a, r in first.items() if r})
    plots = {"train_loss": _eval_curves_plot(sweep, arms, "loss_curve", ctx.path("a3_train_loss.png"),
                                             "A3: full-pass train loss at each arm's tuned lr (eval seeds, band)",
                                             "train loss"),
             "lr_sweep": _tuning_plot(sweep, arms, ctx.path("a3_lr_sweep.png"),
                                      "A3: final train loss vs lr (mean over tuning seeds)", "final train loss")}
    if s.variance_seed0:
        plots["gradient_variance"] = str(plot_curves(
            {f"{a} lr={sweep.chosen(a):g}": [[(p["step"], p["total_variance"]) for p in v]]
             for a, v in s.variance_seed0.items()}, ctx.path("a3_gradient_variance.png"), logy=True,
            title=f"A3: total variance of each arm's gradient estimate (eval seed {ctx.seeds[0]}, tuned lr)",
            xlabel="step", ylabel="Σ_k Var(g_k)"))
    return Measurement(arms={"runs": sweep.runs}, summary=s, plots=plots, protocol=sweep.protocol.to_record())


# ---- A4 ----------------------------------------------------------------------------------------------------------
def _mean_error(r: Mapping[str, Any]) -> float | None:
    return None if r["diverged"] else r.get("mean_error")


def run_storm(cfg: Any, ctx: RunContext) -> Measurement:
    """P10: the estimator errors of both arms at every lr of one shared grid on the eval seeds (the claim), then
    the protocol's best-vs-best comparison of final train loss (a separate check)."""
    arms = list(cfg.arms)
    keys = {a: ("d" if cfg.arms[a].get("optimizer") == "storm" else "momentum_buffer") for a in arms}
    runs = Runs(cfg, ctx, "a4", keys)
    equal_lrs = [float(v) for v in cfg.equal_lrs]
    grid_runs = full_grid(ctx, arms, equal_lrs, runs)
    per_lr: dict[str, dict[str, list[float | None]]] = {}
    for lr in equal_lrs:
        entry: dict[str, list[float | None]] = {}
        for a in arms:
            mine = sorted((r for r in grid_runs if r["arm"] == a and r["lr"] == lr), key=lambda r: r["seed"])
            entry[a] = [_mean_error(r) for r in mine]
            entry[f"{a}_final_loss"] = [_final_loss(r) for r in mine]
        per_lr[f"{lr:g}"] = entry
    sweep = _sweep(cfg, ctx, runs, _final_loss, "full-pass train loss")
    s = StormSummary(tuning_seeds=list(ctx.tuning_seeds), eval_seeds=list(ctx.seeds),
                     arms={a: StormArm.extending(arm_summary(sweep, a),
                                                 mean_error=[_mean_error(r) for r in sweep.eval_runs(a)])
                           for a in arms},
                     equal_lr=per_lr)
    for r in grid_runs:
        r["phase"] = "equal-lr"
    plots = {"estimator_error": _eval_curves_plot(sweep, arms, "error_curve", ctx.path("a4_estimator_error.png"),
                                                  "A4: ||d_t - grad F(x_t)||^2 at each arm's tuned lr (eval seeds)",
                                                  "estimator error"),
             "train_loss": _eval_curves_plot(sweep, arms, "loss_curve", ctx.path("a4_train_loss.png"),
                                             "A4: full-pass train loss at each arm's tuned lr (eval seeds, band)",
                                             "train loss"),
             "error_vs_lr": str(plot_lr_sweep(
                 {a: {float(lr): v[a] for lr, v in per_lr.items()} for a in arms}, ctx.path("a4_error_vs_lr.png"),
                 title="A4: mean estimator error at equal lrs (eval seeds; diverged runs left out)",
                 ylabel="mean ||d_t - grad F||^2"))}
    return Measurement(arms={"runs": grid_runs + sweep.runs}, summary=s, plots=plots,
                       protocol=sweep.protocol.to_record())


# ---- A5 ----------------------------------------------------------------------------------------------------------
def _a5_metric(r: Mapping[str, Any]) -> float | None:
    """Clean arms: final full-pass train loss; noisy arms: minus the (clean-label) validation accuracy."""
    if r["diverged"]:
        return None
    return -float(r["val_acc"]) if r.get("label_noise") else r["final_train_loss"]


def loss_at(r: Mapping[str, Any], step: int) -> float | None:
    """The run's full-pass train loss after ``step`` updates (None when diverged or not measured there)."""
    if r["diverged"]:
        return None
    return next((v for s, v in r["loss_curve"] if s == step), None)


def run_cluster(cfg: Any, ctx: RunContext) -> Measurement:
    """Clean labels: a step claim (K=10 reaches K=1's final train loss in f*T steps). The lr is constant, so a run
    stopped at f*T is the run whose schedule ends at f*T: its loss is read off the T-run after f*T updates (the
    probe measures exactly there). Noisy labels: a loss claim on test accuracy, lr tuned on clean validation
    accuracy."""
    arms = list(cfg.arms)
    runner = Runs(cfg, ctx, "a5")

    def run(arm: str, lr: float, seed: int, label: str) -> dict[str, Any]:
        return {**runner(arm, lr, seed, label), "label_noise": float(cfg.arms[arm].get("label_noise", 0.0))}

    sweep = _sweep(cfg, ctx, run, _a5_metric, "train loss (clean arms) / minus val accuracy (noisy arms)")
    noisy = [a for a in arms if cfg.arms[a].get("label_noise")]
    claim = cfg.step_claim
    method, f = str(claim.method), float(claim.f)
    all_runs = list(sweep.runs)
    short, extra = _fraction_runs(cfg, ctx, sweep, run, method, f)
    all_runs += extra
    s = ClusterSummary(tuning_seeds=list(ctx.tuning_seeds), eval_seeds=list(ctx.seeds),
                       arms={a: arm_summary(sweep, a) for a in arms}, short={method: short},
                       test_acc={a: [r["test_acc"] for r in sweep.eval_runs(a)] for a in noisy})
    target = s.arms[str(claim.baseline)].mean
    if target is not None and short.fractions:
        fr = {float(k): v for k, v in short.fractions.items()}
        per_seed = [steps_to_target({g: (v[i] if v[i] is not None else math.inf) for g, v in fr.items()}, target)
                    for i in range(len(ctx.seeds))]
        short.ratio = ratio_estimate(per_seed)
    clean = [a for a in arms if a not in noisy]
    plots = {"train_loss": _eval_curves_plot(sweep, clean, "loss_curve", ctx.path("a5_train_loss.png"),
                                             "A5: full-pass train loss, clean labels, tuned lr (eval seeds, band)",
                                             "train loss"),
             "lr_sweep": _tuning_plot(sweep, noisy, ctx.path("a5_noisy_lr_sweep.png"),
                                      "A5: clean val accuracy vs lr, 30% label noise (mean over tuning seeds)",
                                      "val accuracy (%)", sign=-1.0)}
    protocol = sweep.protocol.to_record()
    protocol["step_claims"] = {method: {k: v for k, v in short.to_record().items() if k != "finals"}}
    return Measurement(arms={"runs": all_runs}, summary=s, plots=plots, protocol=protocol)


def _fraction_runs(cfg: Any, ctx: RunContext, sweep: SweepResult, run: Any, method: str,
                   f: float) -> tuple[ShortRuns, list[dict[str, Any]]]:
    """P8's f*T runs for a constant-lr arm: the candidates lr and 2*lr (the T-tuned lr and twice it) scored on the
    tuning seeds by the loss after f*T updates, the chosen one on the eval seeds; also the loss at the other
    measured fractions (the ratio estimate)."""
    lr = sweep.chosen(method)
    steps = int(next(r["steps"] for r in sweep.runs))
    if lr is None:
        return ShortRuns(f=f, lr=None, finals=[None] * len(ctx.seeds)), []
    f_step = round(f * steps)
    runs: list[dict[str, Any]] = []

    def at_fT(value: float, seed: int) -> float | None:
        r = run(method, value, seed, f"{ctx.claim_id} ({f:g}T candidate) {method} lr={value:g} seed {seed}")
        runs.append({"arm": method, "lr": value, "seed": seed, "phase": f"tune at {f:g}T", **r})
        return loss_at(r, f_step)

    choice = tune_arm(method, [lr, 2 * lr], ctx.tuning_seeds, at_fT, max_extensions=0)
    chosen = choice.chosen if choice.chosen is not None else lr
    ev_runs = []
    for seed in ctx.seeds:
        r = run(method, chosen, seed, f"{ctx.claim_id} (eval at {f:g}T) {method} lr={chosen:g} seed {seed}")
        ev_runs.append({"arm": method, "lr": chosen, "seed": seed, "phase": f"eval at {f:g}T", **r})
    fractions = sorted({*(float(g) for g in cfg.get("loss_at_fractions") or []), f, 1.0})
    by_fraction = {g: [loss_at(r, round(g * steps)) for r in ev_runs] for g in fractions}
    finals = by_fraction[f]
    ok = [v for v in finals if v is not None]
    out = ShortRuns(f=f, steps=f_step, T=steps, lr=chosen,
                    candidates={f"{x:g}": choice.score(x) for x in choice.grid},
                    finals=finals, mean=statistics.fmean(ok) if ok else None,
                    se=statistics.stdev(ok) / math.sqrt(len(ok)) if len(ok) > 1 else None,
                    diverged=len(finals) - len(ok),
                    fractions={f"{g:g}": v for g, v in by_fraction.items()})
    return out, runs + ev_runs
