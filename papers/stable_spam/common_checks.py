"""Validators and schedules StableSPAM and SPAM share (one ValueError naming the argument)."""

from __future__ import annotations

import math

from common.optim.validation import check_real


def check_optional_positive_int(name: str, value: object, *, zero_means_none: bool = False) -> int | None:
    """None (off), or a positive int; ``zero_means_none`` accepts the official ``0`` for "off"."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (value == 0 and not zero_means_none):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return value or None


def check_nonnegative_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def check_unit(name: str, value: object) -> float:
    """A decay rate in [0, 1)."""
    return check_real(name, value, low=0.0, high=1.0, high_inclusive=False)


def cosine_warmup_factor(current_step: int, warmup_steps: int) -> float:
    """SPAM's post-reset warmup: 1 - 0.99 (1 + cos(pi cs / (N + 1))) / 2 for cs < N (0.01 at cs = 0), else 1."""
    if current_step < warmup_steps:
        return 1.0 - 0.99 * (1.0 + math.cos(math.pi * current_step / (warmup_steps + 1))) / 2.0
    return 1.0


def cosine_scale(n: int, total_T: int | None, eta_min: float, *, periodic: bool) -> float:
    """Stable-SPAM's schedule for gamma1 and beta1: ``CosineAnnealingLR(T_max = total_T + 1)`` stepped with epoch n,
    in its closed form eta_min + (1 - eta_min)(1 + cos(pi n / (total_T + 1))) / 2. The official closed form is
    periodic (back to 1 at 2 (total_T + 1)); ``periodic=False`` holds it at eta_min after total_T + 1."""
    if total_T is None:
        return 1.0
    if not periodic:
        n = min(n, total_T + 1)
    return eta_min + (1.0 - eta_min) * (1 + math.cos(math.pi * n / (total_T + 1))) / 2
