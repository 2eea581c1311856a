"""Claim C1: on Beale's function from (-2.5, -2.5), AdaBelief reaches the optimum (3, 0.5) where Adam and
SGD-momentum stall at the same step budget (the repo's `imgs/beale3.png`).

Every start is a separate problem, but the optimizers here are elementwise and the starts' losses are
summed, so one (starts x 2) tensor runs them all at once with exactly the per-start trajectories.
A plain loop, not Lightning: there is no data, model or validation, only an optimizer on a function.

On the tuning-and-evidence protocol: each arm's lr is chosen on the tuning seeds' starts (bracketing, at most two
extensions per edge), the choice runs on the eval seeds' starts, and AdaBelief is compared with its closest rival
by a paired test over those starts. Equal-lr runs of AdaBelief and Adam on the eval starts are a separate check.
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
from common.results.protocol import Protocol, evaluate_arm, tune_arm
from common.results.sweep import SweepResult, arm_summary
from papers.adabelief.optimizers import optimizer_factory
from papers.adabelief.verdicts import ToySummary

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


class _Toy:
    """One (arm, lr) on a whole seed set at once (the starts of one phase), per-seed distance to the optimum."""

    def __init__(self, cfg: Any, func: Callable, optimum: tuple[float, float]) -> None:
        self.cfg, self.func, self.optimum = cfg, func, optimum
        self.results: dict[tuple[str, float, tuple[int, ...]], dict[str, Any]] = {}
        self.paths: dict[tuple[str, float, tuple[int, ...]], np.ndarray] = {}

    def get(self, arm: str, lr: float, seeds: list[int], phase: str) -> dict[str, Any]:
        key = (arm, float(lr), tuple(seeds))
        if key not in self.results:
            x0 = starts(tuple(self.cfg.start), float(self.cfg.jitter), seeds)
            final, path = run_trajectories(self.func, optimizer_factory(arm, lr, self.cfg.arms[arm]), x0,
                                           int(self.cfg.steps), record_every=max(1, int(self.cfg.steps) // 200))
            d = distance(final, self.optimum)
            self.paths[key] = path
            self.results[key] = {"arm": arm, "lr": float(lr), "seeds": list(seeds), "phase": phase,
                                 "distance": [None if math.isinf(v) else float(v) for v in d],
                                 "mean_distance": None if np.isinf(d).any() else float(np.mean(d)),
                                 "final": final.tolist(), "start": x0.tolist()}
        return self.results[key]

    def point(self, arm: str, seeds: list[int], phase: str) -> Callable[[float, int], float | None]:
        return lambda lr, seed: self.get(arm, lr, seeds, phase)["distance"][seeds.index(seed)]


def run_toy(cfg: Any, ctx: RunContext) -> Measurement:
    func, optimum = FUNCTIONS[str(cfg.function)]
    toy = _Toy(cfg, func, optimum)
    tune, ev = list(ctx.tuning_seeds), list(ctx.seeds)
    protocol = Protocol(tune, ev, "distance to the optimum")
    for arm in cfg.arms:
        t = tune_arm(arm, [float(x) for x in cfg.arms[arm].lrs], tune, toy.point(arm, tune, "tune"),
                     max_extensions=int(cfg.get("max_extensions", 2)))
        protocol.arms[arm] = t
        ctx.say(f"[{ctx.claim_id}] {arm}: lr {t.chosen} chosen over {t.grid} "
                f"({'bracketed' if t.bracketed else 'NOT bracketed'}; extensions {t.extensions}; scores "
                + ", ".join(f"{v:g}: {t.score(v):.4g}" for v in t.grid) + ")")
    for arm in cfg.arms:
        protocol.evals[arm] = evaluate_arm(arm, protocol.arms[arm].chosen, ev, toy.point(arm, ev, "eval"))
    # Equal-lr comparison (reported as a check, on the eval starts): AdaBelief vs Adam at every lr both ran.
    shared = sorted(set(protocol.arms["adabelief"].grid) & set(protocol.arms["adam"].grid))
    by_lr = {a: {f"{lr:g}": toy.get(a, lr, ev, "equal-lr")["mean_distance"] for lr in shared}
             for a in ("adabelief", "adam")}
    wins = sum(1 for lr in shared if _lt(by_lr["adabelief"][f"{lr:g}"], by_lr["adam"][f"{lr:g}"]))
    runs = list(toy.results.values())
    sweep = SweepResult(runs, protocol)
    summary = ToySummary(tuning_seeds=tune, eval_seeds=ev, arms={a: arm_summary(sweep, a) for a in cfg.arms},
                         optimum=list(optimum), steps=int(cfg.steps), equal_lr=by_lr, shared_lrs=len(shared),
                         adabelief_closer_at=wins)
    best_paths = {f"{arm} lr={protocol.arms[arm].chosen:g}": toy.paths[(arm, protocol.arms[arm].chosen, tuple(ev))][0]
                  for arm in cfg.arms if protocol.arms[arm].chosen is not None}
    x0 = starts(tuple(cfg.start), float(cfg.jitter), ev)
    plots = {"trajectories": str(plot_trajectories_2d(
        lambda x, y: func(x, y), best_paths, ctx.path("c1_trajectories.png"),
        title=f"C1: {cfg.function} from {tuple(cfg.start)}, {cfg.steps} steps, chosen lr per arm (seed {ev[0]})",
        bounds=tuple(cfg.plot_bounds), optimum=optimum, start=tuple(x0[0].tolist())))}
    plots["lr_sweep"] = str(plot_lr_sweep(
        {a: {r["lr"]: r["distance"] for r in runs if r["arm"] == a and r["phase"] == "tune"} for a in cfg.arms},
        ctx.path("c1_lr_sweep.png"), title="C1: distance to the optimum after the budget (tuning starts)",
        ylabel="distance"))
    return Measurement(arms={"runs": runs}, summary=summary, plots=plots, protocol=protocol.to_record())


def _lt(a: float | None, b: float | None) -> bool:
    """a closer than b, where None is a diverged run (infinitely far)."""
    if a is None:
        return False
    return b is None or a < b
