"""Small statistics the verdict rules share: seed means, standard errors, first hitting times."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    vals = list(values)
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


def se_of_difference(a: Sequence[float], b: Sequence[float]) -> float:
    """Standard error of mean(a) - mean(b) for independent seeds (Welch): sqrt(s_a^2/n_a + s_b^2/n_b)."""
    _, sa = mean_sd(a)
    _, sb = mean_sd(b)
    return math.sqrt(sa * sa / len(a) + sb * sb / len(b))


def mean_curve(curves: Sequence[Sequence[Sequence[float]]]) -> list[tuple[float, float]]:
    """Pointwise mean over seeds of (x, y) curves, on the x values every seed has (diverged seeds end early)."""
    if not curves:
        return []
    common = set.intersection(*({float(p[0]) for p in c} for c in curves))
    out = []
    for x in sorted(common):
        ys = [float(p[1]) for c in curves for p in c if float(p[0]) == x and p[1] is not None]
        if len(ys) == len(curves):
            out.append((x, statistics.fmean(ys)))
    return out


def first_hit(curve: Sequence[tuple[float, float]], target: float) -> float | None:
    """The first x at which y <= target, or None when the curve never gets there."""
    for x, y in curve:
        if y <= target:
            return x
    return None


def best_arm(runs: Sequence[dict], arm: str, lr: float | None) -> tuple[dict, list[tuple[float, float]]]:
    """Best-vs-best bookkeeping for one arm: its seeds at the chosen lr (diverged runs excluded) as
    ``{lr, final_val_loss (seed mean), final_val_loss_sd, n, finals}``, plus its seed-mean val curve."""
    mine = [r for r in runs if r["arm"] == arm and r["lr"] == lr and not r["diverged"]]
    finals = [r["final_val_loss"] for r in mine]
    mean, sd = mean_sd(finals) if finals else (None, None)
    entry = {"lr": lr, "final_val_loss": mean, "final_val_loss_sd": sd, "n": len(finals), "finals": finals}
    return entry, mean_curve([r["val_curve"] for r in mine])


def grid_edges(summary: dict) -> dict[str, str]:
    """Arms whose best lr sits at an end of their grid (``summary["grid"][arm]`` keyed by lr, ``summary["best"]
    [arm]["lr"]``): tuning there is not conclusive, and a report should say so."""
    out = {}
    for arm, v in summary["best"].items():
        lrs = sorted(float(x) for x in summary.get("grid", {}).get(arm, {}))
        if v["lr"] is not None and len(lrs) > 1 and v["lr"] in (lrs[0], lrs[-1]):
            out[arm] = "low" if v["lr"] == lrs[0] else "high"
    return out
