"""Matplotlib figures for records: curves per arm with seed bands, and LR sweeps."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
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
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel("learning rate")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
