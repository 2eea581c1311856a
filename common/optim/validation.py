"""Hyperparameter checks shared by every optimizer: one ValueError naming the argument."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch


def _is_real(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_real(name: str, value: object, *, low: float | None = None, high: float | None = None,
               low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """Return ``value`` as float if it is a finite real in the given interval, else raise ValueError."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if not _is_real(value):
        raise ValueError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)  # type: ignore[arg-type]
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if low is not None and (v < low or (v == low and not low_inclusive)):
        bracket = "[" if low_inclusive else "("
        raise ValueError(f"{name} must be in {bracket}{low}, {high if high is not None else 'inf'}, got {v}")
    if high is not None and (v > high or (v == high and not high_inclusive)):
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in [{low if low is not None else '-inf'}, {high}{bracket}, got {v}")
    return v


def check_lr(lr: object) -> float:
    return check_real("lr", lr, low=0.0)


def check_eps(eps: object, name: str = "eps") -> float:
    return check_real(name, eps, low=0.0, low_inclusive=False)


def check_weight_decay(weight_decay: object) -> float:
    return check_real("weight_decay", weight_decay, low=0.0)


def check_beta(name: str, beta: object) -> float:
    return check_real(name, beta, low=0.0, high=1.0, high_inclusive=False)


def check_betas(betas: object, n: int = 2) -> tuple[float, ...]:
    if not isinstance(betas, Sequence) or isinstance(betas, str) or len(betas) != n:
        raise ValueError(f"betas must be a sequence of {n} numbers in [0, 1), got {betas!r}")
    return tuple(check_beta(f"betas[{i}]", b) for i, b in enumerate(betas))


def check_choice(name: str, value: object, choices: Iterable[object]) -> object:
    options = list(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


def check_dense_grad(grad: torch.Tensor, optimizer_name: str) -> None:
    """Sparse gradients are not supported by any optimizer here: say so clearly."""
    if grad.is_sparse:
        raise RuntimeError(f"{optimizer_name} does not support sparse gradients; use a dense embedding "
                           "(sparse=False) or torch.optim.SparseAdam")


Check = Callable[[Any], Any]

# The four Adam-family hyperparameters, checked alike by every optimizer that takes them.
ADAM_CHECKS: Mapping[str, Check] = {
    "lr": check_lr, "betas": check_betas, "eps": check_eps, "weight_decay": check_weight_decay,
}


def bool_checks(*names: str) -> dict[str, Check]:
    """A bool check for each named flag."""
    return {name: (lambda v, name=name: check_bool(name, v)) for name in names}


def validate_group(group: Mapping[str, Any], checks: Mapping[str, Check]) -> dict[str, Any]:
    """``group`` with every hyperparameter that has a check checked (and normalised); others pass unchanged."""
    return {k: (checks[k](v) if k in checks else v) for k, v in group.items()}
