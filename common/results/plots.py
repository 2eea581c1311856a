"""Matplotlib figures for records: curves per arm with seed bands, and LR sweeps."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

Curve = Sequence[Sequence[float]]  # [(x, y), ...]


def _finite(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None or not math.isfinite(v) else v for v in values], dtype=float)


def _stack(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """Align seed curves on their common x values (diverged seeds stop early and are padded with NaN)."""
    xs = sorted({float(p[0]) for c in curves for p in c})
    grid = np.full((len(curves), len(xs)), np.nan)
    index = {x: i for i, x in enumerate(xs)}
    for row, c in enumerate(curves):
        for p in c:
            grid[row, index[float(p[0])]] = np.nan if p[1] is None else p[1]
    return np.array(xs), grid


def _save(fig: plt.Figure, ax: plt.Axes, path: Path, *, title: str, xlabel: str, ylabel: str,
          logx: bool = False, logy: bool = False, legend_loc: str = "best") -> Path:
    """Label, scale, legend (only when something is labelled), write the PNG and free the figure."""
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=8, loc=legend_loc)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(arms: Mapping[str, Sequence[Curve]], path: str | Path, *, title: str, xlabel: str,
                ylabel: str, logy: bool = False, logx: bool = False) -> Path:
    """One line per arm (mean over seeds) with a min-max band over seeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, curves in arms.items():
        curves = [c for c in curves if len(c)]
        if not curves:
            continue
        x, grid = _stack(curves)
        with warnings.catch_warnings():  # all-NaN columns after a divergence are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, lo, hi = np.nanmean(grid, 0), np.nanmin(grid, 0), np.nanmax(grid, 0)
        (line,) = ax.plot(x, mean, label=f"{label} (n={len(curves)})")
        if len(curves) > 1:
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    return _save(fig, ax, path, title=title, xlabel=xlabel, ylabel=ylabel, logx=logx, logy=logy)


def plot_lr_sweep(sweep: Mapping[str, Mapping[float, Sequence[float | None]]], path: str | Path, *,
                  title: str, ylabel: str, failed_value: float | None = None) -> Path:
    """Final metric against learning rate per arm: mean over seeds with error bars (std).
    Runs marked failed (None) are drawn at ``failed_value`` when given, else left out."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, by_lr in sweep.items():
        lrs = sorted(by_lr)
        means, stds = [], []
        for lr in lrs:
            vals = [failed_value if v is None else v for v in by_lr[lr]]
            arr = _finite([v for v in vals if v is not None])
            arr = arr[np.isfinite(arr)]
            means.append(arr.mean() if arr.size else np.nan)
            stds.append(arr.std() if arr.size > 1 else 0.0)
        ax.errorbar(lrs, means, yerr=stds, marker="o", capsize=3, label=label)
    if failed_value is not None:
        ax.axhline(failed_value, color="grey", linestyle=":", linewidth=1, label="failed run")
    return _save(fig, ax, path, title=title, xlabel="learning rate", ylabel=ylabel, logx=True)


def plot_trajectories_2d(func: Callable[[np.ndarray, np.ndarray], np.ndarray],
                         paths: Mapping[str, Sequence[Sequence[float]]], path: str | Path, *, title: str,
                         bounds: tuple[float, float, float, float], optimum: tuple[float, float] | None = None,
                         start: tuple[float, float] | None = None) -> Path:
    """Optimizer paths over log-spaced contours of a 2-D test function (the toy-problem figures)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x0, x1, y0, y1 = bounds
    xs, ys = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    zs = func(xs, ys)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    ax.contour(xs, ys, np.log10(zs + 1e-12), levels=30, cmap="Greys", linewidths=0.6)
    for label, pts in paths.items():
        arr = np.asarray(pts, dtype=float)
        arr = arr[np.all(np.isfinite(arr), axis=1)]
        if arr.size:
            ax.plot(arr[:, 0], arr[:, 1], linewidth=1.5, label=label)
            ax.plot(arr[-1, 0], arr[-1, 1], marker="o", markersize=4, color=ax.lines[-1].get_color())
    if optimum is not None:
        ax.plot(*optimum, marker="*", markersize=14, color="gold", markeredgecolor="black", label="optimum")
    if start is not None:
        ax.plot(*start, marker="s", markersize=6, color="black", label="start")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    return _save(fig, ax, path, title=title, xlabel="x", ylabel="y")


def plot_performance_profile(ratios: Mapping[str, Mapping[str, float]], path: str | Path, *, title: str,
                             tau_max: float = 4.0) -> Path:
    """AlgoPerf-style performance profiles: for each method, the fraction of its problems whose ratio to the best
    method is <= tau, as a step function of tau (log x; +inf ratios never count)."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    taus = np.exp(np.linspace(0.0, math.log(tau_max), 200))
    for name, per in sorted(ratios.items()):
        r = np.array([v if math.isfinite(v) else np.inf for v in per.values()], dtype=float)
        if r.size == 0:
            continue
        ax.step(taus, [(r <= t).mean() for t in taus], where="post", label=name)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xscale("log")
    ticks = [t for t in (1, 1.25, 1.5, 2, 3, 4, 6, 8) if t <= tau_max]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    return _save(fig, ax, path, title=title, xlabel="tau (ratio to the best optimizer's steps to the target)",
                 ylabel="fraction of workloads within tau", legend_loc="lower right")
