"""torch.optim baselines built from a preset section, so every paper names its baseline the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

OptimizerFactory = Callable[[Iterable[Any]], torch.optim.Optimizer]


def baseline_factory(kind: str, lr: float, spec: Mapping[str, Any]) -> OptimizerFactory | None:
    """Adam (decoupled weight decay, i.e. AdamW, when weight_decay > 0) or SGD-momentum (L2 decay);
    None for a kind that is not a torch.optim baseline."""
    betas = tuple(spec.get("betas", (0.9, 0.999)))
    eps = float(spec.get("eps", 1e-8))
    wd = float(spec.get("weight_decay", 0.0))
    if kind in ("adam", "adamw"):
        return lambda params: torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if kind == "sgd":
        momentum = float(spec.get("momentum", 0.9))
        return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)
    return None
