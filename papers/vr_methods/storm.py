"""STORM: Momentum-Based Variance Reduction in Non-Convex SGD (Cutkosky & Orabona, NeurIPS 2019), exact form."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.optim.base import CheckedOptimizer
from common.optim.other_point import all_params, params_holding, record_grads, swapped_in
from common.optim.validation import (
    Check,
    check_lr,
    check_real,
    check_weight_decay,
    validate_group,
)

__all__ = ["STORM"]


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Check] = {
        "lr": check_lr,
        "a": lambda v: check_real("a", v, low=0.0, high=1.0, low_inclusive=False),
        "weight_decay": check_weight_decay,
    }
    return validate_group(group, checks)


class STORM(CheckedOptimizer):
    """Momentum-Based Variance Reduction in Non-Convex SGD (Cutkosky & Orabona, NeurIPS 2019, arXiv:1905.10018).

    No official code is followed; this is the paper's exact two-gradient recursion with constant (lr, a)::

        d_1 = g(x_1; xi_1)
        d_t = g(x_t; xi_t) + (1 - a) (d_{t-1} - g(x_{t-1}; xi_t))     # both gradients on the SAME sample xi_t
        x_{t+1} = x_t - lr d_t

    with g(x; xi) = grad f(x; xi) + weight_decay x (coupled L2, so the correction sees the regularizer at both
    points). a = 1 is SGD; MARS with gamma = 1, exact gradients, no clip and the identity preconditioner is this
    recursion with a = 1 - beta1 (tested against the MARS formula in ``tests/unit/test_vr_storm.py``).

    The second gradient g(x_{t-1}; xi_t) needs the previous parameters, kept in state (``prev_param``). Two ways:

    * a closure (re-evaluates the loss on the step's batch): ``step(closure)`` calls it at x_{t-1} (swapped in) and
      then at x_t, so one call does the whole exact step;
    * a manual loop (Lightning ``training_step``): ``with opt.previous_params(): grads = autograd.grad(loss(batch),
      params)``, ``opt.record_previous_grad(grads)``, then the usual backward and ``opt.step()``.

    From the second step on, :meth:`step` raises RuntimeError if g(x_{t-1}; xi_t) was not recorded for it.

    Args:
        params: parameters or param groups.
        lr: constant step size eta, >= 0. Default 1e-2.
        a: momentum parameter in (0, 1]; 1 - a weights the previous estimate. Default 0.1.
        weight_decay: coupled L2 coefficient, >= 0. Default 0.

    State per parameter: ``step`` (int), ``d`` (the estimator d_t), ``prev_param`` (x_t, the next step's x_{t-1}),
    ``prev_grad`` and ``prev_grad_step`` (g(x_{t-1}; xi_t) and the step it was recorded for).

    Deviations from the paper: constant lr and a (the paper's adaptive eta_t = k / (w + sum ||g||^2)^(1/3),
    a_t = c eta_{t-1}^2 is not implemented) [the adaptive schedule is unverified here].
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, a: float = 0.1, weight_decay: float = 0.0) -> None:
        super().__init__(params, _validated({"lr": lr, "a": a, "weight_decay": weight_decay}))

    _validate_group = staticmethod(_validated)

    def _all_params(self) -> list[torch.Tensor]:
        return all_params(self)

    def has_previous(self) -> bool:
        return bool(params_holding(self, "prev_param"))

    def previous_params(self) -> contextlib.AbstractContextManager[None]:
        """Swap x_{t-1} into the parameters for the body (the gradient on this step's batch there), then back."""
        return swapped_in(self, "prev_param")

    def record_previous_grad(self, grads: Sequence[torch.Tensor | None] | None = None) -> None:
        """Record g(x_{t-1}; xi_t) for the coming step: ``grads`` in param-group order, or (None) each ``p.grad``."""
        record_grads(self, grads, point_key="prev_param", grad_key="prev_grad", step_key="prev_grad_step",
                     step_of="step")

    def _recorded(self) -> bool:
        """Whether g(x_{t-1}; xi_t) was recorded for the coming step of every parameter that has a previous point."""
        states = [self.state[p] for p in self._all_params() if "prev_param" in self.state.get(p, {})]
        return bool(states) and all(st.get("prev_grad_step") == st["step"] for st in states)

    def _previous_grad_from(self, closure: Callable[[], float]) -> None:
        """Evaluate ``closure`` at x_{t-1} and record the gradients it leaves. A closure that computes nothing (e.g.
        Lightning's no-op closure under manual optimization) leaves no gradient: the grads are restored and the
        step later raises, rather than recording g(x_t) as g(x_{t-1})."""
        params = self._all_params()
        saved = [p.grad for p in params]
        for p in params:
            p.grad = None
        with torch.enable_grad(), self.previous_params():
            closure()
        if all(p.grad is None for p in params):
            for p, g in zip(params, saved, strict=True):
                p.grad = g
            return
        self.record_previous_grad()

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One STORM step; with ``closure`` both gradients are computed here (see the class docstring)."""
        if closure is not None and self.has_previous() and not self._recorded():
            self._previous_grad_from(closure)
        loss = self._evaluate(closure)
        with torch.no_grad():
            for group in self.param_groups:
                lr, keep, wd = group["lr"], 1.0 - group["a"], group["weight_decay"]
                for p in self._params_with_grad(group):
                    state = self.state[p]
                    g = p.grad if wd == 0 else p.grad.add(p, alpha=wd)
                    if "d" not in state:
                        state["step"] = 0
                        state["d"] = g.detach().clone(memory_format=torch.preserve_format)
                        state["prev_param"] = torch.empty_like(p)
                    else:
                        if state.get("prev_grad_step") != state["step"]:
                            raise RuntimeError(
                                "STORM: g(x_{t-1}; xi_t) was not recorded for this step; pass a closure to step() or "
                                "call record_previous_grad() inside previous_params() first (see the STORM docstring)")
                        prev = state["prev_grad"]
                        if wd != 0:
                            prev = prev.add(state["prev_param"], alpha=wd)
                        d = state["d"]
                        d.sub_(prev).mul_(keep).add_(g)
                    state["step"] += 1
                    state["prev_param"].copy_(p)
                    p.add_(state["d"], alpha=-lr)
        return loss

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        for key in ("step", "prev_grad_step"):
            if key in saved:
                state[key] = int(saved[key])
        for key in ("d", "prev_param", "prev_grad"):
            if isinstance(saved.get(key), torch.Tensor):
                state[key] = saved[key].to(device=p.device, dtype=p.dtype, copy=True)
