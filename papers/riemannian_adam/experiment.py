"""Claims R1 (train loss) and R2 (MAP): Poincaré embeddings of a WordNet closure trained with RSGD, RADAM,
RAMSGRAD and RADAGRAD (Bécigneul & Ganea 2019, §5, Figs. 2-3).

One experiment serves both claims (the runner shares the measurement when their configs are equal):

* every seed gets one burn-in (RSGD with the retraction, lr 0.03, negatives drawn from degree^0.75, 20 epochs by
  default), computed once and shared by every arm and learning rate of that seed;
* then each arm trains from the burn-in with uniform negatives for ``epochs`` epochs. A run is the function
  ``train_arm(arm, lr, seed) -> {final_train_loss, final_map, diverged, curve, ...}``;
* R1 tunes every arm's lr on the final full-closure train loss, R2 on the final MAP, both by the protocol
  (tuning seeds 1000, 1001, ...; bracketing with extensions; eval seeds 0, 1, 2, ...). The two sweeps share runs.

The train loss of the claim is the loss over every closure edge with negatives drawn once from a fixed seed,
measured after every epoch; MAP and mean rank are the reconstruction metrics of ``embedding.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from common.data.hierarchy import Hierarchy, balanced_tree
from common.data.wordnet import mammal_closure, noun_closure
from common.errors import ConfigError
from common.lit.fit import quiet_lightning
from common.optim.arms import require
from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_lr_sweep
from common.results.protocol import Protocol, evaluate_arm, tune_arm
from common.results.sweep import SweepResult, arm_summary
from papers.riemannian_adam.embedding import NegativeSampler, closure_loss, poincare_loss, reconstruction
from papers.riemannian_adam.manifolds import PoincareBall, tag_manifold
from papers.riemannian_adam.optim import RiemannianAdagrad, RiemannianAdam, RiemannianSGD
from papers.riemannian_adam.verdicts import EmbeddingArm, EmbeddingSummary, LossSweep, MapArm, MapSweep

OptimizerFactory = Any  # (params) -> torch.optim.Optimizer
DTYPES = {"float64": torch.float64, "float32": torch.float32}
DISK_LABELS = ("mammal.n.01", "placental.n.01", "carnivore.n.01", "primate.n.02", "rodent.n.01")


# ---------------------------------------------------------------- data and optimizers


def load_hierarchy(data: Mapping[str, Any]) -> Hierarchy:
    """``data.hierarchy``: "mammals" or "nouns" (WordNet from ``data.root`` or Debian's files) or "tree"
    (a complete tree with ``data.branching`` and ``data.depth``)."""
    kind = data.get("hierarchy")
    if kind == "mammals":
        return mammal_closure(data.get("root"))
    if kind == "nouns":
        return noun_closure(data.get("root"))
    if kind == "tree":
        return balanced_tree(int(data["branching"]), int(data["depth"]))
    raise ConfigError(f"data.hierarchy must be mammals, nouns or tree, got {kind!r}")


def optimizer_factory(arm: str, lr: float, spec: Mapping[str, Any], update: str) -> OptimizerFactory:
    """The arm's optimizer; the update rule (retraction or exp map) is the claim's setting, the same for all."""
    kind = spec.get("optimizer")
    where = f"arm {arm}"
    if kind == "rsgd":
        return lambda params: RiemannianSGD(params, lr=lr, update=update)
    if kind == "radam":
        require(spec, ["amsgrad", "betas", "eps", "semantics"], where)
        return lambda params: RiemannianAdam(params, lr=lr, betas=tuple(spec["betas"]), eps=float(spec["eps"]),
                                             amsgrad=bool(spec["amsgrad"]), semantics=str(spec["semantics"]),
                                             adaptivity=str(spec.get("adaptivity", "factor")), update=update)
    if kind == "radagrad":
        require(spec, ["eps"], where)
        return lambda params: RiemannianAdagrad(params, lr=lr, eps=float(spec["eps"]), update=update)
    raise ConfigError(f"{where}: unknown optimizer {kind!r}; valid: rsgd, radam, radagrad")


# ---------------------------------------------------------------- the Lightning module


class PoincareEmbedding(pl.LightningModule):
    """An embedding table on the Poincaré ball trained on closure edges with sampled negatives.

    Manual optimization: one Lightning batch is a block of ``steps_per_batch`` mini-batches of edge indices, and
    ``training_step`` takes one optimizer step per mini-batch (a B = 10 step costs well under a millisecond, less
    than Lightning's per-batch bookkeeping; the updates are the same as one Lightning batch per step). The
    negatives of a block are drawn at once from ``sampler`` (NumPy, seeded: same data order and negatives per seed
    for every arm). After each epoch the full-closure loss with the fixed negatives (and, every ``map_every``
    epochs, MAP and mean rank) is appended to ``curve``. A non-finite loss or embedding stops the run as diverged.
    """

    def __init__(self, h: Hierarchy, init: torch.Tensor, factory: OptimizerFactory, sampler: NegativeSampler,
                 eval_negatives: torch.Tensor, *, batch_size: int, loss_scale: float = 1.0, map_every: int = 1,
                 measure: bool = True) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.h, self.factory, self.sampler, self.batch_size = h, factory, sampler, batch_size
        self.emb = tag_manifold(torch.nn.Parameter(init.clone()), PoincareBall())
        self.register_buffer("edges", torch.from_numpy(h.edges), persistent=False)
        self.register_buffer("eval_negatives", eval_negatives, persistent=False)
        self.loss_scale, self.map_every, self.measure = loss_scale, map_every, measure
        self.curve: list[tuple[int, float, float | None, float | None]] = []  # (epoch, loss, map, mean rank)
        self.diverged: str | None = None
        self.steps = 0

    def configure_optimizers(self) -> torch.optim.Optimizer:
        self.optimizer = self.factory([self.emb])
        return self.optimizer

    def training_step(self, block: torch.Tensor, batch_idx: int) -> None:
        if self.diverged:
            return
        e = self.edges[block]
        negs = torch.from_numpy(self.sampler.sample(e[:, 0].cpu().numpy(), e[:, 1].cpu().numpy())).to(self.device)
        opt = self.optimizer
        for s in range(0, len(e), self.batch_size):
            sl = slice(s, s + self.batch_size)
            loss = poincare_loss(self.emb, e[sl, 0], e[sl, 1], negs[sl])
            if not torch.isfinite(loss):
                self.diverged = f"non-finite batch loss at epoch {self.current_epoch}, step {self.steps}"
                self.trainer.should_stop = True
                return
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss * self.loss_scale)
            opt.step()
            self.steps += 1

    def measure_now(self, epoch: int) -> None:
        emb = self.emb.detach()
        if not torch.isfinite(emb).all():
            self.diverged = f"non-finite embedding after epoch {epoch}"
            self.curve.append((epoch, math.inf, None, None))
            return
        loss = closure_loss(emb, self.edges, self.eval_negatives)
        rec = reconstruction(emb, self.h) if epoch % self.map_every == 0 or epoch == self.trainer.max_epochs else None
        self.curve.append((epoch, loss, None if rec is None else rec["map"], None if rec is None else rec["mean_rank"]))
        if not math.isfinite(loss):
            self.diverged = f"non-finite full-closure loss after epoch {epoch}"

    def on_train_start(self) -> None:
        if self.measure:
            self.measure_now(0)

    def on_train_epoch_end(self) -> None:
        if self.measure and not self.diverged:
            self.measure_now(self.current_epoch + 1)
        if self.diverged:
            self.trainer.should_stop = True


def train(h: Hierarchy, init: torch.Tensor, factory: OptimizerFactory, *, epochs: int, batch_size: int, k: int,
          power: float | None, seed: int, eval_negatives: torch.Tensor, trainer: Mapping[str, Any],
          loss_scale: float = 1.0, map_every: int = 1, measure: bool = True,
          steps_per_batch: int = 64) -> PoincareEmbedding:
    """One Lightning fit; the data order and the negatives depend on ``seed`` only (paired across arms). Every
    epoch visits every closure edge once in a fresh random order, in mini-batches of ``batch_size``."""
    rng = np.random.default_rng([seed, 0 if power is None else 1])
    module = PoincareEmbedding(h, init, factory, NegativeSampler(h, k, power, rng), eval_negatives,
                               batch_size=batch_size, loss_scale=loss_scale, map_every=map_every, measure=measure)
    order = torch.Generator().manual_seed(seed)
    loader = DataLoader(_Blocks(len(h.edges), batch_size * steps_per_batch, order), batch_size=None)
    settings: dict[str, Any] = {"max_epochs": epochs, "logger": False, "enable_checkpointing": False,
                                "enable_progress_bar": False, "enable_model_summary": False,
                                "num_sanity_val_steps": 0, "accelerator": "cpu", "devices": 1}
    settings.update(trainer)
    with quiet_lightning():
        pl.Trainer(**settings).fit(module, train_dataloaders=loader)
    return module


class _Blocks(torch.utils.data.IterableDataset):
    """Each epoch: a fresh permutation of the edges, cut into blocks of ``block`` indices."""

    def __init__(self, n: int, block: int, generator: torch.Generator) -> None:
        super().__init__()
        self.n, self.block, self.generator = n, block, generator

    def __iter__(self):  # type: ignore[override]
        perm = torch.randperm(self.n, generator=self.generator)
        return iter(perm.split(self.block))


# ---------------------------------------------------------------- the experiment


class Embeddings:
    """The claim's runs: one burn-in per seed, then ``train_arm(arm, lr, seed)``; each result computed once."""

    def __init__(self, cfg: Any, ctx: RunContext) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.h = load_hierarchy(cfg.data)
        self.dtype = DTYPES[str(cfg.dtype)]
        self.update = str(cfg.setting)
        if self.update not in ("retraction", "expmap"):
            raise ConfigError(f"setting must be retraction or expmap, got {self.update!r}")
        fixed = NegativeSampler(self.h, int(cfg.negatives), None, np.random.default_rng(int(cfg.eval_negatives_seed)))
        self.eval_negatives = torch.from_numpy(fixed.sample(self.h.edges[:, 0], self.h.edges[:, 1]))
        self.trainer = dict(ctx.trainer)
        self.burnins: dict[tuple[int, int], torch.Tensor] = {}
        self.results: dict[tuple[str, float, int], dict[str, Any]] = {}

    def burnin(self, seed: int, dim: int) -> torch.Tensor:
        key = (seed, dim)
        if key not in self.burnins:
            b = self.cfg.burnin
            gen = torch.Generator().manual_seed(seed)
            r = float(self.cfg.init_range)
            init = ((torch.rand(self.h.n, dim, generator=gen, dtype=torch.float64) * 2 - 1) * r).to(self.dtype)
            t0 = time.perf_counter()
            if int(b.epochs) > 0:
                lr, upd = float(b["lr"]), str(b["update"])
                m = train(self.h, init, lambda p: RiemannianSGD(p, lr=lr, update=upd), epochs=int(b.epochs),
                          batch_size=int(self.cfg.batch_size), k=int(self.cfg.negatives), power=float(b.power),
                          seed=seed, eval_negatives=self.eval_negatives, trainer=self.trainer,
                          loss_scale=float(self.cfg.loss_scale), measure=False)
                init = m.emb.detach().cpu().clone()
            self.burnins[key] = init
            self.ctx.say(f"[{self.ctx.claim_id}] burn-in seed {seed} (d={dim}): {b.epochs} epochs RSGD lr {b.lr} "
                         f"{b['update']}, degree^{b.power} negatives, {time.perf_counter() - t0:.1f} s")
        return self.burnins[key]

    def train_arm(self, arm: str, lr: float, seed: int, label: str = "") -> dict[str, Any]:
        key = (arm, float(lr), int(seed))
        if key in self.results:
            return self.results[key]
        cfg = self.cfg
        t0 = time.perf_counter()
        epochs = int(cfg.epochs)
        m = train(self.h, self.burnin(seed, int(cfg.dim)), optimizer_factory(arm, lr, cfg.arms[arm], self.update),
                  epochs=epochs, batch_size=int(cfg.batch_size), k=int(cfg.negatives), power=None, seed=seed,
                  eval_negatives=self.eval_negatives, trainer=self.trainer, loss_scale=float(cfg.loss_scale),
                  map_every=int(cfg.map_every))
        last = m.curve[-1]
        quarter = next((c[1] for c in m.curve if c[0] >= max(1, epochs // 4)), math.inf)
        v = m.optimizer.state[m.emb].get("exp_avg_sq")
        result = {
            "final_train_loss": last[1] if not m.diverged else math.inf,
            "final_map": last[2] if not m.diverged else None,
            "final_mean_rank": last[3] if not m.diverged else None,
            "loss_at_quarter": quarter, "quarter_epoch": max(1, epochs // 4),
            "diverged": m.diverged is not None, "divergence_reason": m.diverged,
            "curve": [list(c) for c in m.curve], "epochs_done": m.curve[-1][0],
            "v_shape": None if v is None else list(v.shape), "wall_s": time.perf_counter() - t0,
        }
        if not m.diverged:
            result["final_map_child"] = reconstruction(m.emb.detach(), self.h, orientation="child")["map"]
        self.results[key] = result
        self.ctx.say(f"[{label or arm}] loss {result['final_train_loss']:.4f}, MAP "
                     f"{result['final_map'] if result['final_map'] is None else round(result['final_map'], 4)}"
                     f"{' DIVERGED' if m.diverged else ''} ({result['wall_s']:.1f} s)")
        return result


def _loss_metric(r: Mapping[str, Any]) -> float | None:
    return None if r["diverged"] else r["final_train_loss"]


def _map_metric(r: Mapping[str, Any]) -> float | None:
    return None if r["diverged"] or r["final_map"] is None else -r["final_map"]


def _arm(sweep: SweepResult, arm: str) -> EmbeddingArm:
    """An arm's :class:`ArmSummary` with its eval runs' losses and MAPs, in seed order."""
    runs = sorted(sweep.eval_runs(arm), key=lambda r: r["seed"])
    return EmbeddingArm.extending(arm_summary(sweep, arm), quarter=[r["loss_at_quarter"] for r in runs],
                                  losses=[r["final_train_loss"] for r in runs],
                                  maps=[r["final_map"] for r in runs],
                                  map_child=[r.get("final_map_child") for r in runs])


def _loss_section(sweep: SweepResult, arms: list[str], ctx: RunContext) -> LossSweep:
    return LossSweep(tuning_seeds=list(ctx.tuning_seeds), eval_seeds=list(ctx.seeds),
                     arms={arm: _arm(sweep, arm) for arm in arms})


def _map_section(sweep: SweepResult, arms: list[str], ctx: RunContext) -> MapSweep:
    """R2 selects on -MAP (the protocol minimises); keep MAP readable beside it (``grid_map``)."""
    out: dict[str, MapArm] = {}
    for arm in arms:
        a = _arm(sweep, arm)
        out[arm] = MapArm.extending(a, grid_map={k: (-v if math.isfinite(v) else None) for k, v in a.grid.items()})
    return MapSweep(tuning_seeds=list(ctx.tuning_seeds), eval_seeds=list(ctx.seeds), arms=out)


def _pool_run(task: tuple[str, float, int]) -> tuple[tuple[str, float, int], dict[str, Any]]:
    """A worker's job: one run of the experiment the parent set up before forking."""
    torch.set_num_threads(int(_SHARED.cfg.threads))
    return task, _SHARED.train_arm(*task, label=f"{task[0]} lr={task[1]:g} seed {task[2]} (worker)")


def _pool_burnin(task: tuple[int, int]) -> tuple[tuple[int, int], torch.Tensor]:
    torch.set_num_threads(int(_SHARED.cfg.threads))
    return task, _SHARED.burnin(*task)


_SHARED: Embeddings = None  # type: ignore[assignment]  # the experiment forked workers inherit


def _prefetch(exp: Embeddings, tasks: list[tuple[str, float, int]], workers: int) -> None:
    """Run the tasks not yet done in ``workers`` forked processes (results land in ``exp``'s memo); with one worker,
    nothing happens here and the sweeps run every job in order. Results are identical either way: a run depends on
    its (arm, lr, seed) only."""
    todo = sorted({t for t in tasks if t not in exp.results})
    if workers <= 1 or len(todo) < 2:
        return
    import multiprocessing as mp

    global _SHARED
    _SHARED = exp
    seeds = sorted({(s, int(exp.cfg.dim)) for _, _, s in todo} - exp.burnins.keys())
    with mp.get_context("fork").Pool(min(workers, max(len(seeds), 1))) as pool:
        for key, emb in pool.imap_unordered(_pool_burnin, seeds):
            exp.burnins[key] = emb
    with mp.get_context("fork").Pool(min(workers, len(todo))) as pool:
        for key, result in pool.imap_unordered(_pool_run, todo):
            exp.results[key] = result


def _sweep(ctx: RunContext, exp: Embeddings, arms: list[str], grids: Mapping[str, list[float]], metric: Any,
           name: str, prefix: str, workers: int) -> SweepResult:
    """The protocol (common.results.protocol): tune every arm on the tuning seeds (bracketing with extensions),
    then run each arm's choice on the eval seeds; with workers > 1 the grid and the eval runs are computed in
    parallel beforehand. Every run is saved under the claim's runs folder (``reproduce --resume``)."""
    runs: list[dict[str, Any]] = []

    def point(arm: str, phase: str) -> Any:
        def go(value: float, seed: int) -> float | None:
            label = f"{ctx.claim_id} ({phase}, {name}) {arm} lr={value:g} seed {seed}"
            result = ctx.cached(f"{prefix}{arm}-lr{value:g}-s{seed}", lambda: exp.train_arm(arm, value, seed, label),
                                label)
            runs.append({"arm": arm, "lr": value, "seed": seed, "phase": phase, **result})
            m = metric(result)
            return float(m) if m is not None and math.isfinite(m) else None
        return go

    _prefetch(exp, [(a, lr, s) for a in arms for lr in grids[a] for s in ctx.tuning_seeds], workers)
    protocol = Protocol(list(ctx.tuning_seeds), list(ctx.seeds), name)
    for arm in arms:
        t = protocol.arms[arm] = tune_arm(arm, grids[arm], ctx.tuning_seeds, point(arm, "tune"),
                                          max_extensions=int(exp.cfg.max_extensions))
        ctx.say(f"[{ctx.claim_id}] {name}: {arm} lr {t.chosen} chosen over {t.grid} "
                f"({'bracketed' if t.bracketed else 'NOT bracketed'}; extensions {t.extensions})")
    _prefetch(exp, [(a, protocol.arms[a].chosen, s) for a in arms if protocol.arms[a].chosen is not None
                    for s in ctx.seeds], workers)
    for arm in arms:
        protocol.evals[arm] = evaluate_arm(arm, protocol.arms[arm].chosen, ctx.seeds, point(arm, "eval"))
    return SweepResult(runs, protocol)


def run_embedding(cfg: Any, ctx: RunContext) -> Measurement:
    """Both sweeps (R1 by loss, R2 by MAP) over shared runs, the summaries, plots and the protocol object."""
    threads = torch.get_num_threads()
    torch.set_num_threads(int(cfg.threads))
    try:
        exp = Embeddings(cfg, ctx)
        arms = list(cfg.arms)
        grids = {a: [float(x) for x in cfg.arms[a].grid] for a in arms}
        workers = int(cfg.get("workers", 1))
        ctx.say(f"[{ctx.claim_id}] {cfg.data.hierarchy}: {exp.h.n} nodes, {len(exp.h.edges)} closure edges; "
                f"setting {exp.update}; arms {arms}; {workers} worker(s)")
        by_loss = _sweep(ctx, exp, arms, grids, _loss_metric, "full-closure train loss", "loss-", workers)
        by_map = _sweep(ctx, exp, arms, grids, _map_metric, "negative MAP", "map-", workers)
        summary = EmbeddingSummary(hierarchy=str(cfg.data.hierarchy), nodes=exp.h.n, edges=len(exp.h.edges),
                                   setting=exp.update, epochs=int(cfg.epochs), judged=list(cfg.judged),
                                   r1=_loss_section(by_loss, arms, ctx), r2=_map_section(by_map, arms, ctx))
        plots = _plots(cfg, ctx, exp, by_loss, by_map, arms)
        protocol = by_loss.protocol.to_record()
        protocol["selection"] = ("R1: mean final full-closure train loss over tuning seeds; R2: mean final MAP over "
                                 "tuning seeds (the runs are shared)")
        protocol["arms_r2"] = by_map.protocol.to_record()["arms"]
        runs = {"loss_sweep": by_loss.runs, "map_sweep": by_map.runs}
        return Measurement(arms=runs, summary=summary, plots=plots, protocol=protocol)
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------- plots


def _band_plot(series: Mapping[str, list[list[tuple[float, float]]]], path: Any, *, title: str, ylabel: str,
               logy: bool) -> str:
    """Mean ± SE over seeds per arm (curves aligned on epochs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, curves in series.items():
        curves = [c for c in curves if c]
        if not curves:
            continue
        xs = sorted({x for c in curves for x, _ in c})
        grid = np.full((len(curves), len(xs)), np.nan)
        for i, c in enumerate(curves):
            for x, y in c:
                grid[i, xs.index(x)] = y if y is not None and math.isfinite(y) else np.nan
        with np.errstate(all="ignore"):
            mean = np.nanmean(grid, axis=0)
            se = np.nanstd(grid, axis=0, ddof=1) / np.sqrt(np.sum(~np.isnan(grid), axis=0)) if len(curves) > 1 \
                else np.zeros_like(mean)
        (line,) = ax.plot(xs, mean, label=label)
        ax.fill_between(xs, mean - se, mean + se, alpha=0.25, color=line.get_color())
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch (after burn-in)")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _plots(cfg: Any, ctx: RunContext, exp: Embeddings, by_loss: SweepResult, by_map: SweepResult,
           arms: list[str]) -> dict[str, str]:
    setting = exp.update
    loss_series, map_series = {}, {}
    for arm in arms:
        lr = by_loss.chosen(arm)
        if lr is not None:
            loss_series[f"{arm} lr={lr:g}"] = [[(c[0], c[1]) for c in r["curve"]] for r in by_loss.eval_runs(arm)]
        lr = by_map.chosen(arm)
        if lr is not None:
            map_series[f"{arm} lr={lr:g}"] = [[(c[0], c[2]) for c in r["curve"] if c[2] is not None]
                                              for r in by_map.eval_runs(arm)]
    plots = {
        "loss_curves": _band_plot(loss_series, ctx.path(f"loss_{setting}.png"), logy=True,
                                  title=f"Full-closure train loss ({setting}), eval seeds, mean ± SE",
                                  ylabel="train loss"),
        "map_curves": _band_plot(map_series, ctx.path(f"map_{setting}.png"), logy=False,
                                 title=f"MAP ({setting}) at each arm's MAP-tuned lr, mean ± SE", ylabel="MAP"),
    }
    sweep = {arm: {lr: vals for lr, vals in by_loss.tuning(arm).values.items()} for arm in arms}
    plots["lr_sweep"] = str(plot_lr_sweep(sweep, ctx.path(f"lr_sweep_{setting}.png"),
                                          title=f"Final train loss vs lr ({setting}; tuning seeds)",
                                          ylabel="final train loss"))
    disk = cfg.get("disk")
    if disk:
        plots["disk"] = _disk(cfg, ctx, exp, disk)
    return plots


def _disk(cfg: Any, ctx: RunContext, exp: Embeddings, disk: Mapping[str, Any]) -> str:
    """A 2-D embedding (RADAM) of the hierarchy drawn on the Poincaré disk."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, seed = exp.h, int(disk.get("seed", 0))
    init = exp.burnin(seed, 2)
    m = train(h, init, optimizer_factory(str(disk["arm"]), float(disk["lr"]), cfg.arms[str(disk["arm"])], exp.update),
              epochs=int(disk["epochs"]), batch_size=int(cfg.batch_size), k=int(cfg.negatives), power=None, seed=seed,
              eval_negatives=exp.eval_negatives, trainer=exp.trainer, measure=False)
    x = m.emb.detach().cpu().double().numpy()
    fig, ax = plt.subplots(figsize=(6.2, 6.2))
    ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="black", lw=0.8))
    for u, v in h.reduction():
        ax.plot([x[u, 0], x[v, 0]], [x[u, 1], x[v, 1]], color="0.6", lw=0.3, alpha=0.35, zorder=1)
    sc = ax.scatter(x[:, 0], x[:, 1], c=h.n_ancestors, cmap="viridis", s=6, zorder=2)
    for name in (*DISK_LABELS, h.names[int(h.roots[0])]):
        if name in h.index:
            i = h.index[name]
            ax.annotate(name.split(".")[0], (x[i, 0], x[i, 1]), fontsize=8, zorder=3)
    fig.colorbar(sc, ax=ax, fraction=0.04, label="depth (number of ancestors)")
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_title(f"{cfg.data.hierarchy} in the Poincaré disk (d=2, {disk['arm']} lr {disk['lr']}, "
                 f"{disk['epochs']} epochs)", fontsize=10)
    path = ctx.path(f"disk_{cfg.data.hierarchy}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)

