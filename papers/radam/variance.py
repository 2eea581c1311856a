"""Claim C1 (Fig. 9): the adaptive learning rate's variance is large early; rectification flattens it.

Simulates many independent gradient streams g_t ~ N(mu, 1), keeps Adam's second moment v_t, and
measures over trajectories Var[psi_t] with psi_t = 1/sqrt(v_hat_t) (Adam's adaptive LR), and
Var[r_t * psi_t] (RAdam's rectified one, defined from t >= 6 when rho_t >= 5). The metric is the ratio
of the mean variance in an early window to the mean variance in a late window.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves
from common.results.protocol import no_tuning
from papers.radam.optim import rectifier
from papers.radam.verdicts import MuRatios, VarianceSummary


def simulate_variance(mus: list[float], beta2: float, trajectories: int, steps: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Var over trajectories of psi_t and r_t*psi_t for t=1..steps, one row per mu (float64).

    Rectified entries are NaN where RAdam does not rectify (rho_t < 5)."""
    gen = torch.Generator().manual_seed(seed)
    mu = torch.tensor(mus, dtype=torch.float64).unsqueeze(1)
    v = torch.zeros(len(mus), trajectories, dtype=torch.float64)
    var_adam = np.empty((len(mus), steps))
    var_rect = np.full((len(mus), steps), np.nan)
    for t in range(1, steps + 1):
        g = mu + torch.randn(len(mus), trajectories, generator=gen, dtype=torch.float64)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        psi = (v / (1 - beta2**t)).rsqrt()
        var = psi.var(dim=1).numpy()
        var_adam[:, t - 1] = var
        r = rectifier(t, beta2)
        if r is not None:
            var_rect[:, t - 1] = r * r * var
    return var_adam, var_rect


def window_ratio(var: np.ndarray, early: tuple[int, int], late: tuple[int, int]) -> np.ndarray:
    """Mean variance over t in [early] divided by the mean over t in [late] (t is 1-based, inclusive)."""
    e = np.nanmean(var[..., early[0] - 1: early[1]], axis=-1)
    l_ = np.nanmean(var[..., late[0] - 1: late[1]], axis=-1)
    return e / l_


def _log_points(steps: int, n: int = 160) -> np.ndarray:
    return np.unique(np.geomspace(1, steps, n).astype(int))


def run_variance(cfg: Any, ctx: RunContext) -> Measurement:
    """Run the simulation for every seed; summarise the early/late ratios per mu."""
    mus = [float(m) for m in cfg.mus]
    early, late = tuple(cfg.early), tuple(cfg.late)
    points = _log_points(int(cfg.steps))
    arms: dict[str, Any] = {"adam": {}, "rectified": {}}
    ratios = {"adam": [], "rectified": []}
    for i, seed in enumerate(ctx.seeds, 1):
        ctx.say(f"[{ctx.label(i, len(ctx.seeds), f'simulation seed {seed}')}] {len(mus)} mu x "
                f"{cfg.trajectories} trajectories x {cfg.steps} steps")
        va, vr = simulate_variance(mus, float(cfg.beta2), int(cfg.trajectories), int(cfg.steps), seed)
        for name, var in (("adam", va), ("rectified", vr)):
            ratios[name].append(window_ratio(var, early, late))
            for j, mu in enumerate(mus):
                curve = [(int(t), float(var[j, t - 1])) for t in points if math.isfinite(var[j, t - 1])]
                arms[name].setdefault(f"mu={mu:g}", []).append({"seed": seed, "var_curve": curve})
    per_mu = {}
    for j, mu in enumerate(mus):
        a = np.array([r[j] for r in ratios["adam"]])
        r = np.array([r[j] for r in ratios["rectified"]])
        per_mu[f"{mu:g}"] = MuRatios(adam_ratio=float(a.mean()), adam_ratio_std=float(a.std()),
                                     rectified_ratio=float(r.mean()), rectified_ratio_std=float(r.std()), n=len(a))
    summary = VarianceSummary.of(mus, list(early), list(late), per_mu)
    plots = {}
    for name in ("adam", "rectified"):
        curves = {k: [s["var_curve"] for s in seeds] for k, seeds in arms[name].items()}
        label = "Var[1/sqrt(v_hat_t)]" if name == "adam" else "Var[r_t / sqrt(v_hat_t)]"
        plots[f"variance_{name}"] = str(plot_curves(
            curves, ctx.path(f"c1_variance_{name}.png"), title=f"C1: {label} over {cfg.trajectories} "
            f"trajectories (beta2={cfg.beta2})", xlabel="step t", ylabel="variance", logx=True, logy=True))
    why = ("a simulation of Adam's second-moment estimate on synthetic gradient streams: no optimizer is run on a "
           "model and no learning rate or other knob is chosen; the verdict reads exact early/late variance ratios")
    return Measurement(arms=arms, summary=summary, plots=plots, protocol=no_tuning(why))
