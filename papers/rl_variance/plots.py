"""Bar charts for B3 (bias and variance per aggregator); curves come from common.results.plots."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_bars(left: Mapping[str, tuple[float, float]], right: Mapping[str, tuple[float, float]], path: str | Path,
              *, titles: tuple[str, str], suptitle: str, logy_right: bool = True) -> Path:
    """Two bar panels sharing the arm names; each value is (height, error bar)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, data, title in zip(axes, (left, right), titles, strict=True):
        names = list(data)
        ax.bar(range(len(names)), [data[n][0] for n in names], yerr=[data[n][1] for n in names], capsize=3,
               color="tab:blue")
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    if logy_right:
        axes[1].set_yscale("log")
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
