"""Parameter groups the LM papers share: weight decay on matrices only (nanoGPT's ``configure_optimizers``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn


def decay_split(weight_decay: float) -> Callable[[nn.Module], list[dict[str, Any]]]:
    """``model -> [{params: >=2-D tensors, weight_decay}, {params: biases, norms, weight_decay: 0}]``.
    Tied weights appear once (``named_parameters`` de-duplicates)."""

    def groups(model: nn.Module) -> list[dict[str, Any]]:
        decay = [p for _, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
        other = [p for _, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]

    return groups
