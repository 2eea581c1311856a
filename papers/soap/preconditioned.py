"""What SOAP and its Shampoo baseline share: the slot type of their Kronecker factors, the checks of the
hyperparameters both take, the warning for an eigh that needed float64, and the restore of a loaded state."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from common.optim.precision import state_dtype
from common.optim.validation import Check, check_betas, check_lr, check_real, check_weight_decay

__all__ = ["Slot", "cast_slots", "check_int", "check_shampoo_beta", "restore_state", "shared_checks",
           "warn_eigh_retries"]

# A factor (or basis, or root) slot is a square tensor, or ``[]`` where that side is the identity (SOAP's official
# layout, which Shampoo follows).
Slot = torch.Tensor | list


def check_int(name: str, value: object, low: int) -> int:
    """An int (not a bool) >= ``low``; the official SOAP code takes these as Python ints."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {type(value).__name__} {value!r}")
    return value


def check_shampoo_beta(value: object) -> float:
    """Negative means "use betas[1]" (SOAP's official rule, default -1); otherwise an EMA factor in [0, 1)."""
    v = check_real("shampoo_beta", value)
    if v >= 0:
        check_real("shampoo_beta", v, low=0.0, high=1.0, high_inclusive=False)
    return v


def shared_checks() -> dict[str, Check]:
    """The checks of the hyperparameters SOAP and Shampoo both take, alike (eps differs: each checks its own)."""
    return {
        "lr": check_lr,
        "betas": check_betas,
        "shampoo_beta": check_shampoo_beta,
        "weight_decay": check_weight_decay,
        "precondition_frequency": lambda v: check_int("precondition_frequency", v, 1),
        "max_precond_dim": lambda v: check_int("max_precond_dim", v, 0),
    }


def warn_eigh_retries(optimizer: str, work_dtype: torch.dtype, shape: torch.Size) -> None:
    """Say that an eigh of a factor failed in ``work_dtype`` and was retried in float64 (the state counts it)."""
    warnings.warn(
        f"{optimizer}: eigh of a Kronecker factor failed in {work_dtype} and was retried in float64 (parameter of "
        f"shape {tuple(shape)}); counted in state['eigh_retries']",
        RuntimeWarning,
        stacklevel=3,
    )


def cast_slots(slots: object, dtype: torch.dtype, device: torch.device) -> object:
    """Owned copies of the tensors in a list of slots in ``dtype``; ``[]`` placeholders and non-lists pass through."""
    if isinstance(slots, list):
        return [s.to(device=device, dtype=dtype, copy=True) if isinstance(s, torch.Tensor) else [] for s in slots]
    return slots


def restore_state(p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any], slot_keys: tuple[str, ...]) -> None:
    """After torch's load: int counters, the moments in the state dtype (float32 for bf16/fp16 params: torch casts
    every floating state tensor to the param dtype) and owned copies of the slot lists under ``slot_keys``."""
    dtype = state_dtype(p.dtype)
    for key in ("step", "eigh_retries"):
        if key in saved:
            state[key] = int(saved[key])
    for key in ("exp_avg", "exp_avg_sq"):
        value = saved.get(key)
        if isinstance(value, torch.Tensor):
            state[key] = value.to(device=p.device, dtype=dtype, copy=True)
    for key in slot_keys:
        if key in saved:
            state[key] = cast_slots(saved[key], dtype, p.device)
