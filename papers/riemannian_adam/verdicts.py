"""The verdict rules of R1 and R2, applied to the experiment's summary (thresholds live here, once).

Both rules add the protocol's requirements to the ones written for this paper: a qualifying difference must also
be significant in the paired one-sided t-test over eval seeds (p < 0.05), and the protocol's caps apply (a win
over an unbracketed RSGD, or a loss of an unbracketed method, is inconclusive; a winner that diverged on an eval
seed is at most partially reproduced; fewer than 2 tuning or 3 eval seeds is inconclusive).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.results.judges import finish
from common.results.protocol import paired_se, paired_test
from common.results.summary import Summary
from common.results.sweep import ArmSummary, TunedSummary
from common.results.verdict import CONTRADICTED, INCONCLUSIVE, NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict

BASELINE = "rsgd"
METHODS = ("radam", "ramsgrad")
R1_REL_GAP = 0.01  # a loss gap must exceed 1% of RSGD's loss (and 2 SE)
R2_RETR_MARGIN, R2_RETR_CONTRA = 0.01, 0.03  # retraction: RADAM within 0.01 of RSGD's MAP; 0.03 below contradicts


@dataclass
class EmbeddingArm(ArmSummary):
    """A tuned arm with its eval seeds' runs (sorted by seed): train loss at epoch T/4 (``quarter``) and at T
    (``losses``), final MAP (``maps``) and child-orientation MAP (``map_child``). A diverged run's losses are inf
    in a fresh run (None in a record) and its MAPs None."""

    quarter: list[float | None]
    losses: list[float | None]
    maps: list[float | None]
    map_child: list[float | None]


@dataclass
class MapArm(EmbeddingArm):
    """An arm tuned on -MAP (R2), with its tuning scores as MAP again (``grid_map``: lr -> mean MAP)."""

    grid_map: dict[str, float | None]


@dataclass
class LossSweep(TunedSummary):
    """R1's sweep: every arm tuned on the final full-closure train loss."""

    arms: dict[str, EmbeddingArm]


@dataclass
class MapSweep(TunedSummary):
    """R2's sweep over the same runs: every arm tuned on the final MAP."""

    arms: dict[str, MapArm]


@dataclass
class EmbeddingSummary(Summary):
    """The one measurement R1 and R2 share: the hierarchy (nodes, closure edges), the update (``setting``:
    retraction or expmap), epochs after the burn-in, the arms the claims judge, and each claim's sweep."""

    hierarchy: str
    nodes: int
    edges: int
    setting: str
    epochs: int
    judged: list[str]
    r1: LossSweep
    r2: MapSweep


def _finite(xs: Sequence[Any]) -> list[float]:
    return [math.inf if x is None or not math.isfinite(float(x)) else float(x) for x in xs]


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[float | None, float]:
    """mean(a - b) and its SE over the pairs where both are finite."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if not pairs:
        return None, math.inf
    return statistics.fmean(x - y for x, y in pairs), paired_se([x for x, _ in pairs], [y for _, y in pairs])


def _missing(section: TunedSummary, arms: Sequence[str]) -> list[str]:
    return [a for a in arms if section.arms[a].lr is None]


def _capped(status: str, checks: dict[str, Any], reasons: list[str], section: TunedSummary,
            winner: str | None) -> Verdict:
    """The protocol's caps over both methods: the unbracketed one (if any) stands for "the method"."""
    method = next((m for m in METHODS if not section.arms[m].bracketed), METHODS[0])
    return finish(status, checks, reasons, section, method, [BASELINE], winner=winner)


def judge_loss(summary: EmbeddingSummary) -> Verdict:
    s = summary.r1
    if _missing(s, (BASELINE, *METHODS)):
        return Verdict(INCONCLUSIVE, {}, [f"{', '.join(_missing(s, (BASELINE, *METHODS)))} diverged at every lr"])
    base = _finite(s.arms[BASELINE].losses)
    l_base = statistics.fmean([x for x in base if math.isfinite(x)] or [math.inf])
    checks: dict[str, Any] = {}
    reasons: list[str] = []
    qualifies, worse = {}, {}
    for m in METHODS:
        mine = _finite(s.arms[m].losses)
        diff, se = _paired(base, mine)  # Delta = L_RSGD - L_m > 0 when the method is lower
        test = paired_test(mine, base)
        delta = -math.inf if diff is None else diff
        need = max(2 * se, R1_REL_GAP * l_base)
        qualifies[m] = delta > need and test.significant
        worse[m] = delta < -2 * se and test.significant_opposite
        checks[f"{m}_lower"] = qualifies[m]
        reasons.append(f"{m}: L_RSGD - L = {delta:+.4f} (SE {se:.4f}, needs > {need:.4f}), paired p = "
                       f"{'n/a' if test.p is None else f'{test.p:.3g}'}: {'qualifies' if qualifies[m] else 'no'}")
    q_base = statistics.fmean(_finite(s.arms[BASELINE].quarter))
    q_radam = statistics.fmean(_finite(s.arms["radam"].quarter))
    sooner = q_radam < q_base
    checks["radam_lower_at_T/4"] = sooner
    reasons.append(f"at epoch T/4 ({summary.epochs // 4 or 1}): RADAM {q_radam:.4f} vs RSGD {q_base:.4f}")
    both = all(qualifies.values())
    if all(worse.values()):
        status = CONTRADICTED
    elif both and sooner:
        status = REPRODUCED
    elif any(qualifies.values()):
        status = PARTIAL
    else:
        status = NOT_REPRODUCED
    winner = next((m for m in METHODS if qualifies[m]), None)
    return _capped(status, checks, reasons, s, winner)


def judge_map(summary: EmbeddingSummary) -> Verdict:
    s = summary.r2
    arms = (BASELINE, "radam")
    if _missing(s, arms):
        return Verdict(INCONCLUSIVE, {}, [f"{', '.join(_missing(s, arms))} diverged at every lr"])
    radam = [-x for x in _finite([None if v is None else -v for v in s.arms["radam"].maps])]
    base = [-x for x in _finite([None if v is None else -v for v in s.arms[BASELINE].maps])]
    diff, se = _paired(radam, base)  # MAP_RADAM - MAP_RSGD
    if diff is None:
        return Verdict(INCONCLUSIVE, {}, ["no eval seed where both RADAM and RSGD finished"])
    test = paired_test(base, radam)  # "RSGD's MAP is lower than RADAM's"
    reasons = [f"MAP_RADAM - MAP_RSGD = {diff:+.4f} (SE {se:.4f}), paired one-sided p = "
               f"{'n/a' if test.p is None else f'{test.p:.3g}'} ({summary.setting})"]
    if summary.setting == "retraction":
        ok = diff >= -max(R2_RETR_MARGIN, 2 * se)
        checks: dict[str, Any] = {"radam_within_margin": ok}
        status = REPRODUCED if ok else CONTRADICTED if diff < -max(R2_RETR_CONTRA, 2 * se) else NOT_REPRODUCED
    else:
        higher = diff > 2 * se and test.significant
        checks = {"radam_higher": higher}
        status = (REPRODUCED if higher else PARTIAL if diff > 0 else CONTRADICTED if diff < -2 * se
                  else NOT_REPRODUCED)
    return _capped(status, checks, reasons, s, "radam" if status in (REPRODUCED, PARTIAL) else None)


def loss_test_record(summary: EmbeddingSummary) -> dict[str, Any] | None:
    s = summary.r1
    if _missing(s, (BASELINE, *METHODS)):
        return None
    base = _finite(s.arms[BASELINE].losses)
    return {"kind": "paired-t", "per_method": {m: paired_test(_finite(s.arms[m].losses), base).to_record()
                                               for m in METHODS}}


def map_test_record(summary: EmbeddingSummary) -> dict[str, Any] | None:
    s = summary.r2
    if _missing(s, (BASELINE, "radam")):
        return None
    neg = {a: _finite([None if v is None else -v for v in s.arms[a].maps]) for a in (BASELINE, "radam")}
    return paired_test(neg["radam"], neg[BASELINE]).to_record() | {"metric": "negative MAP (radam - rsgd)"}


def _arm(arm: str, a: EmbeddingArm, values: Sequence[float | None]) -> str:
    """An arm's eval-seed mean ± sd of ``values`` (its losses or MAPs) at its lr."""
    vals = [v for v in _finite(values) if math.isfinite(v)]
    if a.lr is None or not vals:
        return f"{arm} diverged"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    edge = "" if a.bracketed else " (lr not bracketed)"
    return f"{arm} {statistics.fmean(vals):.4f}±{sd:.4f}@{a.lr:g}{edge}"


def headline_loss(summary: EmbeddingSummary) -> str:
    s = summary.r1
    return (f"final train loss ({summary.setting}, {summary.hierarchy}, {summary.epochs} epochs): "
            + ", ".join(_arm(name, a, a.losses) for name, a in s.arms.items()))


def headline_map(summary: EmbeddingSummary) -> str:
    s = summary.r2
    return (f"final MAP ({summary.setting}, {summary.hierarchy}, {summary.epochs} epochs): "
            + ", ".join(_arm(name, a, a.maps) for name, a in s.arms.items()))
