"""Claim C1: on Beale's function from (-2.5, -2.5), AdaBelief reaches the optimum (3, 0.5) where Adam and
SGD-momentum stall at the same step budget (the repo's `imgs/beale3.png`).

Every start is a separate problem, but the optimizers here are elementwise and the starts' losses are
summed, so one (starts x 2) tensor runs them all at once with exactly the per-start trajectories.
A plain loop, not Lightning: there is no data, model or validation, only an optimizer on a function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_lr_sweep, plot_trajectories_2d
from papers.adabelief.optimizers import optimizer_factory

BEALE_OPTIMUM = (3.0, 0.5)


def beale(x: Any, y: Any) -> Any:
    """Beale's function (torch or numpy); minimum 0 at (3, 0.5)."""
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


FUNCTIONS: dict[str, tuple[Callable[[Any, Any], Any], tuple[float, float]]] = {"beale": (beale, BEALE_OPTIMUM)}


def starts(center: tuple[float, float], jitter: float, seeds: list[int]) -> torch.Tensor:
    """One start per seed: ``center`` plus a seeded uniform perturbation in [-jitter, jitter]^2."""
    rows = []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        rows.append(torch.tensor(center, dtype=torch.float64) + (2 * torch.rand(2, generator=g,
                                                                                dtype=torch.float64) - 1) * jitter)
    return torch.stack(rows)


def run_trajectories(func: Callable, optimizer_factory_: Callable, start: torch.Tensor, steps: int,
                     record_every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Optimise every start for ``steps`` steps; returns the final points (starts x 2; NaN once a start
    diverged) and the paths (starts x points x 2)."""
    xy = start.clone().requires_grad_(True)
    opt = optimizer_factory_([xy])
    path = [xy.detach().clone()]
    for t in range(1, steps + 1):
        opt.zero_grad()
        loss = func(xy[:, 0], xy[:, 1]).sum()
        loss.backward()
        opt.step()
        if t % record_every == 0 or t == steps:
            path.append(xy.detach().clone())
    final = xy.detach().numpy().copy()
    return final, torch.stack(path, dim=1).numpy()


def distance(final: np.ndarray, optimum: tuple[float, float]) -> np.ndarray:
    d = np.hypot(final[:, 0] - optimum[0], final[:, 1] - optimum[1])
    return np.where(np.isfinite(d), d, np.inf)


def run_toy(cfg: Any, ctx: RunContext) -> Measurement:
    func, optimum = FUNCTIONS[str(cfg.function)]
    x0 = starts(tuple(cfg.start), float(cfg.jitter), ctx.seeds)
    runs: list[dict[str, Any]] = []
    paths: dict[tuple[str, float], np.ndarray] = {}
    jobs = [(arm, float(lr)) for arm in cfg.arms for lr in cfg.arms[arm].lrs]
    for i, (arm, lr) in enumerate(jobs, 1):
        final, path = run_trajectories(func, optimizer_factory(arm, lr, cfg.arms[arm]), x0, int(cfg.steps),
                                       record_every=max(1, int(cfg.steps) // 200))
        d = distance(final, optimum)
        paths[(arm, lr)] = path
        ctx.say(f"[{ctx.label(i, len(jobs), f'{arm} lr={lr:g}')}] {cfg.steps} steps, distance to optimum "
                f"mean {np.mean(d):.4g} over {len(d)} seeds")
        runs.append({"arm": arm, "lr": lr, "distance": [None if math.isinf(v) else float(v) for v in d],
                     "mean_distance": None if np.isinf(d).any() else float(np.mean(d)),
                     "final": final.tolist()})
    summary: dict[str, Any] = {"best": {}, "by_lr": {}, "optimum": list(optimum), "steps": int(cfg.steps)}
    for arm in cfg.arms:
        mine = [r for r in runs if r["arm"] == arm]
        summary["by_lr"][arm] = {f"{r['lr']:g}": r["mean_distance"] for r in mine}
        ok = [r for r in mine if r["mean_distance"] is not None]
        best = min(ok, key=lambda r: r["mean_distance"]) if ok else None
        summary["best"][arm] = {"lr": best["lr"] if best else None,
                                "distance": best["mean_distance"] if best else None,
                                "distance_std": float(np.std(best["distance"])) if best else None}
    shared = sorted(set(summary["by_lr"]["adabelief"]) & set(summary["by_lr"]["adam"]), key=float)
    wins = sum(1 for lr in shared if _lt(summary["by_lr"]["adabelief"][lr], summary["by_lr"]["adam"][lr]))
    summary["shared_lrs"], summary["adabelief_closer_at"] = len(shared), wins
    best_paths = {f"{arm} lr={summary['best'][arm]['lr']:g}": paths[(arm, summary["best"][arm]["lr"])][0]
                  for arm in cfg.arms if summary["best"][arm]["lr"] is not None}
    plots = {"trajectories": str(plot_trajectories_2d(
        lambda x, y: func(x, y), best_paths, ctx.path("c1_trajectories.png"),
        title=f"C1: {cfg.function} from {tuple(cfg.start)}, {cfg.steps} steps, best lr per arm (seed {ctx.seeds[0]})",
        bounds=tuple(cfg.plot_bounds), optimum=optimum, start=tuple(x0[0].tolist())))}
    plots["lr_sweep"] = str(plot_lr_sweep(
        {a: {r["lr"]: r["distance"] for r in runs if r["arm"] == a} for a in cfg.arms},
        ctx.path("c1_lr_sweep.png"), title="C1: distance to the optimum after the budget", ylabel="distance"))
    return Measurement(arms={"runs": runs}, summary=summary, plots=plots)


def _lt(a: float | None, b: float | None) -> bool:
    """a closer than b, where None is a diverged run (infinitely far)."""
    if a is None:
        return False
    return b is None or a < b
