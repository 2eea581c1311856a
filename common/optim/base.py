"""The plumbing every optimizer here shares, so each paper's file holds only its maths and state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from common.optim.validation import check_dense_grad


class CheckedOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` that validates every param group (defaults and later groups alike, so a
    bad ``lr`` in a group fails as early as a bad default), evaluates closures with gradients enabled, and
    hands ``step`` only parameters with a dense, real gradient (one clear error otherwise)."""

    @staticmethod
    def _validate_group(group: dict[str, Any]) -> dict[str, Any]:
        """Return the group with its hyperparameters checked; subclasses bind their validator here."""
        return group

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(self._validate_group(param_group) if isinstance(param_group, dict) else param_group)

    @staticmethod
    def _evaluate(closure: Callable[[], float] | None) -> float | None:
        """The loss from ``closure`` (re-evaluating the model under enable_grad), or None without one."""
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()

    def _params_with_grad(self, group: dict[str, Any]) -> Iterator[torch.Tensor]:
        """The group's parameters that have a gradient; sparse gradients and complex params raise."""
        name = type(self).__name__
        for p in group["params"]:
            if p.grad is None:
                continue
            check_dense_grad(p.grad, name)
            if p.is_complex():
                raise RuntimeError(f"{name} does not support complex parameters; use torch.view_as_real")
            yield p
