"""Claim A2 (Defazio & Bottou's diagnostic): the variance SVRG removes shrinks as networks deepen. Plain SGD
trains ReLU MLPs of growing depth; at fixed fractions of every epoch, 32 random probe minibatches measure the
total variance of the SVRG estimate g_B(theta) - g_B(theta~) + mu~ against that of the SGD estimate g_B(theta),
with theta~ the snapshot taken at the start of the epoch and mu~ its full gradient.

A diagnostic, not a training comparison: no LR tuning (the paper's fixed SGD settings; the claim is about the
variance, not the best loss), so the record's protocol object is "no tuning". Plain loops over in-memory tensors;
the snapshot gradients use ``torch.func.functional_call`` on the snapshot weights, so the training model is never
touched by a probe.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call

from common.data.seeding import generator_for
from common.data.vision import image_datamodule
from common.errors import ConfigError
from common.lit.seed import seed_all
from common.models.mlp import mlp
from common.optim.full_gradient import full_gradient
from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves
from common.results.protocol import no_tuning
from papers.vr_methods.variance import variance_metrics


def _flat(grads: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


def probe_ratio(model: torch.nn.Module, snapshot: dict[str, torch.Tensor], mu: torch.Tensor, x: torch.Tensor,
                y: torch.Tensor, probes: int, batch: int, gen: torch.Generator) -> dict[str, Any]:
    """Variance metrics of the SGD and SVRG estimates over ``probes`` random minibatches, and their ratios."""
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    snap = [snapshot[n].detach().requires_grad_(True) for n in names]
    sgd, svrg = [], []
    for _ in range(probes):
        idx = torch.randint(0, len(y), (batch,), generator=gen)
        g = _flat(list(torch.autograd.grad(F.cross_entropy(model(x[idx]), y[idx]), params)))
        out = functional_call(model, dict(zip(names, snap, strict=True)), (x[idx],))
        gs = _flat(list(torch.autograd.grad(F.cross_entropy(out, y[idx]), snap)))
        sgd.append(g)
        svrg.append(g - gs + mu)
    m_sgd, m_svrg = variance_metrics(torch.stack(sgd)), variance_metrics(torch.stack(svrg))
    return {"sgd": m_sgd, "svrg": m_svrg,
            "ratio": m_svrg["total_variance"] / m_sgd["total_variance"] if m_sgd["total_variance"] > 0 else None}


def he_init_(model: torch.nn.Module) -> None:
    """He (Kaiming-normal, fan-in, ReLU gain) weights and zero biases: the depth-8 net trains at lr 0.05 (torch's
    default Linear init shrinks the signal ~2.4x per ReLU layer, and the deep nets then barely move)."""
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)


def train_depth(x: torch.Tensor, y: torch.Tensor, depth: int, cfg: Any, seed: int) -> list[dict[str, Any]]:
    """Plain SGD for ``cfg.epochs`` epochs; a snapshot at every epoch start; probes at ``cfg.fractions``."""
    seed_all(seed)
    model = mlp(x[0].numel(), [int(cfg.width)] * depth, int(y.max()) + 1)
    if str(cfg.get("init", "he")) == "he":
        he_init_(model)
    opt = torch.optim.SGD(model.parameters(), lr=float(cfg.lr))
    batch, n = int(cfg.batch_size), len(y)
    steps = n // batch  # drop the last partial batch, so every step has the same size
    probe_at = sorted({max(0, min(steps - 1, round(float(f) * steps) - 1)) for f in cfg.fractions})
    probe_gen = generator_for(seed, 0xD15)
    chunk = int(cfg.get("full_batch_size", 2000))
    out = []
    for epoch in range(int(cfg.epochs)):
        params = list(model.parameters())
        mu, _ = full_gradient(params, lambda b: F.cross_entropy(model(b[0]), b[1]),
                              ((x[i:i + chunk], y[i:i + chunk]) for i in range(0, n, chunk)))
        mu_flat = _flat(mu)
        snapshot = {k: v.detach().clone() for k, v in model.named_parameters()}
        perm = torch.randperm(n, generator=generator_for(seed, epoch))
        for step in range(steps):
            if step in probe_at:
                r = probe_ratio(model, snapshot, mu_flat, x, y, int(cfg.probes), batch, probe_gen)
                out.append({"epoch": epoch, "fraction": (step + 1) / steps, "step": step, **r})
            idx = perm[step * batch:(step + 1) * batch]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return out


def run_depth(cfg: Any, ctx: RunContext) -> Measurement:
    if cfg.get("model_family"):
        raise ConfigError(f"model_family {list(cfg.model_family)} (dvr's CIFAR networks) is documented, not built in "
                          "this version: the ratio diagnostic runs ReLU MLPs (depths)")
    dm = image_datamodule(str(cfg.data.get("dataset", "fashion_mnist")), batch_size=int(cfg.batch_size),
                          root=cfg.data.get("root"), val_size=int(cfg.data.val_size), subset=cfg.data.get("subset"),
                          balanced=bool(cfg.data.get("balanced", False)))
    dm.setup("fit")
    train = dm._dataset("train")
    x, y = train.__getitems__(list(range(len(train))))
    runs = []
    depths = [int(d) for d in cfg.depths]
    total = len(depths) * len(ctx.seeds)
    i = 0
    for depth in depths:
        for seed in ctx.seeds:
            i += 1
            ctx.say(ctx.label(i, total, f"depth {depth} seed {seed}"))
            t = time.perf_counter()
            probes = train_depth(x, y, depth, cfg, seed)
            runs.append({"arm": f"depth{depth}", "depth": depth, "seed": seed, "probes": probes,
                         "wall_s": time.perf_counter() - t, "diverged": False})
    summary = summarize(runs, depths, int(cfg.epochs) - 1)
    return Measurement(arms={"runs": runs}, summary=summary, plots=_plots(runs, depths, ctx),
                       protocol=no_tuning("a diagnostic at the paper's fixed SGD settings (lr 0.05): the variance "
                                          "ratio of two estimators along one SGD trajectory, no arms to tune"))


def summarize(runs: list[dict[str, Any]], depths: list[int], epoch: int) -> dict[str, Any]:
    """Seed-mean ratio per depth at every probe point of ``epoch`` (the verdict reads the last point)."""
    s: dict[str, Any] = {"epoch": epoch, "ratio": {}, "ratio_sd": {}, "by_fraction": {}}
    for depth in depths:
        mine = [r for r in runs if r["depth"] == depth]
        table: dict[str, list[float]] = {}
        for r in mine:
            for p in r["probes"]:
                if p["epoch"] == epoch and p["ratio"] is not None:
                    table.setdefault(f"{p['fraction']:.2f}", []).append(p["ratio"])
        s["by_fraction"][str(depth)] = {k: statistics.fmean(v) for k, v in sorted(table.items())}
        last = [next(p["ratio"] for p in reversed(r["probes"]) if p["epoch"] == epoch) for r in mine]
        last = [v for v in last if v is not None]
        s["ratio"][str(depth)] = statistics.fmean(last) if last else None
        s["ratio_sd"][str(depth)] = statistics.stdev(last) if len(last) > 1 else 0.0
    vals = [s["ratio"][str(d)] for d in depths]
    s["depths"] = depths
    s["monotone"] = all(a is not None and b is not None and a <= b for a, b in zip(vals, vals[1:], strict=False))
    return s


def _plots(runs: list[dict[str, Any]], depths: list[int], ctx: RunContext) -> dict[str, str]:
    curves = {}
    for depth in depths:
        curves[f"depth {depth}"] = [[(p["epoch"] + p["fraction"], p["ratio"]) for p in r["probes"]]
                                    for r in runs if r["depth"] == depth]
    plots = {"ratio_curves": str(plot_curves(
        curves, ctx.path("a2_ratio_curves.png"), logy=True,
        title="A2: SVRG / SGD gradient variance through training (snapshot each epoch; seed band)",
        xlabel="epoch (probes at fixed fractions)", ylabel="variance ratio"))}
    last_epoch = max(p["epoch"] for r in runs for p in r["probes"])
    fractions = sorted({p["fraction"] for r in runs for p in r["probes"]})
    seeds = sorted({r["seed"] for r in runs})
    by_depth = {}
    for f in fractions:  # one curve per seed across depths, so the band is over seeds
        by_depth[f"{100 * f:.0f}% of epoch {last_epoch}"] = [
            [(r["depth"], next(p["ratio"] for p in r["probes"] if p["epoch"] == last_epoch and p["fraction"] == f))
             for r in sorted((r for r in runs if r["seed"] == seed), key=lambda r: r["depth"])] for seed in seeds]
    plots["ratio_by_depth"] = str(plot_curves(
        by_depth, ctx.path("a2_ratio_by_depth.png"), logy=True,
        title="A2: variance ratio by depth (SVRG / SGD, last epoch; seed band)",
        xlabel="hidden layers (width 256)", ylabel="variance ratio"))
    return plots
