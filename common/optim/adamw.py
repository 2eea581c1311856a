"""AdamW on the shared kernels: the yardstick optimizer of ``reproduce bench`` and a baseline with ``impl=``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.kernels.adamw import adamw_step
from common.optim.base import CheckedOptimizer
from common.optim.precision import state_dtype
from common.optim.validation import ADAM_CHECKS, validate_group

__all__ = ["AdamW"]


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    return validate_group(group, ADAM_CHECKS)


class AdamW(CheckedOptimizer):
    """Decoupled Weight Decay Regularization (AdamW).

    Loshchilov & Hutter, ICLR 2019, https://arxiv.org/abs/1711.05101. The maths of ``torch.optim.AdamW`` (its
    ``_single_tensor_adamw``): theta <- theta (1 - lr wd); m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2;
    theta <- theta - lr/bc1 m / (sqrt(v)/sqrt(bc2) + eps), run by :mod:`common.kernels.adamw` with ``impl=``.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate, >= 0. Default 1e-3.
        betas: (beta1, beta2), each in [0, 1). Default (0.9, 0.999).
        eps: > 0. Default 1e-8.
        weight_decay: decoupled weight decay, >= 0. Default 1e-2.
        impl: "reference", "foreach", "compiled", "triton" or "auto"; None: :func:`common.kernels.default_impl`.

    Differences from torch.optim.AdamW: m is formed as b1 m + (1-b1) g (torch uses lerp, a few ulp apart); no
    amsgrad, maximize, capturable or differentiable; fp16/bf16 params keep fp32 state; ``step`` is a Python int.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        impl: str | None = None,
    ) -> None:
        self.impl = self._check_impl(impl)
        super().__init__(params, _validated({"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}))

    _validate_group = staticmethod(_validated)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimisation step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            params, grads, (ms, vs), steps = self._gather_moments(group, "exp_avg", "exp_avg_sq")
            if params:
                adamw_step(self.impl, params, grads, ms, vs, steps, lr=group["lr"], beta1=beta1, beta2=beta2,
                           eps=group["eps"], weight_decay=group["weight_decay"])
        return loss

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """After torch's load: an int ``step`` (torch.optim.AdamW saves a tensor) and fp32 state for bf16 params."""
        if "step" in saved:
            step = saved["step"]
            state["step"] = int(step.item() if isinstance(step, torch.Tensor) else step)
        for key in ("exp_avg", "exp_avg_sq"):
            value = saved.get(key)
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device=p.device, dtype=state_dtype(p.dtype), copy=True)
