"""AdaBelief's verdict rules (spec §6), applied to a run's summary. Thresholds live here, once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from common.results.verdict import CONTRADICTED, NOT_REPRODUCED, PARTIAL, REPRODUCED, Verdict

C1_REACHED = 0.1
C1_FACTOR = 0.5
C1_WINS = 4
C2_SPEED_FACTOR = 1.1
C2_SGD_SLACK_PP = 0.2
C2_CONTRA_ACC_PP = 0.5
C2_CONTRA_SPEED = 1.25


def _d(s: Mapping[str, Any], arm: str) -> float:
    v = s["best"][arm]["distance"]
    return math.inf if v is None else v


def judge_toy(s: Mapping[str, Any]) -> Verdict:
    ab, rival = _d(s, "adabelief"), min(_d(s, "adam"), _d(s, "sgd"))
    reached = ab < C1_REACHED and ab <= C1_FACTOR * rival
    closer = ab < rival
    wins = s["adabelief_closer_at"] >= C1_WINS
    checks = {"reaches_optimum_and_halves_rivals": reached, "closer_than_rivals": closer,
              f"closer_than_adam_at_{C1_WINS}_of_{s['shared_lrs']}_lrs": wins}
    reasons = [f"best distance AdaBelief {ab:.4g} vs min(Adam, SGD) {rival:.4g}; reached (< {C1_REACHED} and "
               f"<= {C1_FACTOR}x rivals): {reached}",
               f"AdaBelief closer than Adam at {s['adabelief_closer_at']} of {s['shared_lrs']} shared lrs"]
    if ab > 2 * rival:
        return Verdict(CONTRADICTED, checks, reasons)
    status = REPRODUCED if reached else PARTIAL if closer or wins else NOT_REPRODUCED
    return Verdict(status, checks, reasons)


def headline_toy(s: Mapping[str, Any]) -> str:
    parts = []
    for arm in ("adabelief", "adam", "sgd"):
        b = s["best"][arm]
        parts.append(f"{arm} {'diverged' if b['distance'] is None else format(b['distance'], '.3g')}"
                     f"@{b['lr'] if b['lr'] is not None else '-'}")
    return (f"distance to optimum after {s['steps']} steps: " + ", ".join(parts)
            + f"; AdaBelief closer than Adam at {s['adabelief_closer_at']}/{s['shared_lrs']} lrs")


def judge_generalization(s: Mapping[str, Any]) -> Verdict:
    b = s["best"]
    ab, adam, sgd = b["adabelief"], b["adam"], b["sgd"]
    if None in (ab["test_acc"], adam["test_acc"], sgd["test_acc"], ab["train_loss_at_speed"],
                adam["train_loss_at_speed"]):
        return Verdict("inconclusive", {}, ["an arm failed at every learning rate"])
    fast = ab["train_loss_at_speed"] <= C2_SPEED_FACTOR * adam["train_loss_at_speed"]
    target = max(adam["test_acc"], sgd["test_acc"] - C2_SGD_SLACK_PP)
    general = ab["test_acc"] >= target
    reasons = [f"(a) train loss at {s['speed_at']:.0%} of steps: AdaBelief {ab['train_loss_at_speed']:.4f} <= "
               f"{C2_SPEED_FACTOR} x Adam {adam['train_loss_at_speed']:.4f}: {fast}",
               f"(b) test acc AdaBelief {ab['test_acc']:.2f}% >= max(Adam {adam['test_acc']:.2f}%, SGD "
               f"{sgd['test_acc']:.2f}% - {C2_SGD_SLACK_PP} pp): {general}"]
    checks = {"a_fast_as_adam": fast, "b_generalizes_like_sgd": general}
    if (ab["test_acc"] < adam["test_acc"] - C2_CONTRA_ACC_PP
            and ab["train_loss_at_speed"] > C2_CONTRA_SPEED * adam["train_loss_at_speed"]):
        return Verdict(CONTRADICTED, checks, reasons)
    status = REPRODUCED if fast and general else PARTIAL if fast or general else NOT_REPRODUCED
    return Verdict(status, checks, reasons)


def headline_generalization(s: Mapping[str, Any]) -> str:
    parts = []
    for arm, v in s["best"].items():
        if v["test_acc"] is None:
            parts.append(f"{arm} failed")
        else:
            speed = v["train_loss_at_speed"]
            parts.append(f"{arm} {v['test_acc']:.2f}±{v['test_acc_std']:.2f}%@{v['lr']:g} "
                         f"(loss@{s['speed_at']:.0%} {'n/a' if speed is None else format(speed, '.3f')})")
    return "test acc (n per arm = seeds): " + ", ".join(parts)
