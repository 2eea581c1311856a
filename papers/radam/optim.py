"""RAdam with the semantics of the authors' released code (LiyuanLucasLiu/RAdam, commit d9fd30a).

The maths lives once, in :func:`common.kernels.radam.radam_update` (one tensor at a time, the readable definition);
the foreach, compiled and Triton implementations beside it are chosen with ``impl=`` and tested against it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.kernels.radam import radam_step
from common.optim.base import CheckedOptimizer
from common.optim.precision import state_dtype
from common.optim.rectify import RHO_THRESHOLD, rectifier, rho_t
from common.optim.validation import (
    ADAM_CHECKS,
    Check,
    check_bool,
    validate_group,
)

__all__ = ["RHO_THRESHOLD", "RAdam", "rectifier", "rho_t"]

def _validated(group: dict[str, Any]) -> dict[str, Any]:
    """Check (and normalise) whichever hyperparameters ``group`` sets; the error names the argument."""
    checks: dict[str, Check] = {
        **ADAM_CHECKS,
        "degenerated_to_sgd": lambda v: check_bool("degenerated_to_sgd", v),
    }
    return validate_group(group, checks)


class RAdam(CheckedOptimizer):
    """On the Variance of the Adaptive Learning Rate and Beyond.

    Liu, Jiang, He, Chen, Liu, Gao, Han, ICLR 2020, https://arxiv.org/abs/1908.03265.
    Follows the authors' ``radam/radam.py::RAdam`` at https://github.com/LiyuanLucasLiu/RAdam,
    commit d9fd30a (2021-07-31, "set the degenerate_to_sgd as False"), including its defaults.

    Each step: v <- b2 v + (1-b2) g^2; m <- b1 m + (1-b1) g; t <- t+1; rho_t as in :func:`rho_t`.
    If rho_t >= 5: theta <- theta (1 - lr wd), then
    theta <- theta - lr r_t sqrt(1-b2^t)/(1-b1^t) m/(sqrt(v)+eps).
    Else, if ``degenerated_to_sgd``: theta <- theta (1 - lr wd), then theta <- theta - lr/(1-b1^t) m.
    Else: theta is left untouched (no update, no weight decay); m, v and t still advance.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate, >= 0. Default 1e-3.
        betas: (beta1, beta2), each in [0, 1). Default (0.9, 0.999).
        eps: > 0, added to the *un-bias-corrected* sqrt(v). Default 1e-8.
        weight_decay: decoupled weight decay, >= 0, applied as theta (1 - lr wd) on updating steps. Default 0.
        degenerated_to_sgd: while rho_t < 5, take an SGD step with bias-corrected momentum instead of
            skipping the step. Default False, as in the official code at d9fd30a (its SGD-momentum steps
            diverge on unnormalised inputs). With the default and beta2=0.999 the first five steps leave the
            parameters unchanged. Presets should always set it explicitly.
        impl: implementation of the update, see :mod:`common.kernels` ("reference", "foreach", "compiled",
            "triton" or "auto"). Default None: :func:`common.kernels.default_impl`, i.e. "auto" (Triton on CUDA,
            foreach elsewhere; foreach is bit-identical to the reference on CPU).

    Paper vs official code (we follow the code):
        * threshold: the paper (Alg. 2) rectifies when rho_t > 4, i.e. from t=5 at beta2=0.999; the code
          uses rho_t >= 5, so t=6 is the first adaptive step (torch.optim.RAdam: rho_t > 5, also t=6).
        * un-rectified phase: the paper always takes the SGD-momentum step; the code skips it by default.
        * weight decay: decoupled in both, but the code applies it only on steps that update theta, whereas
          ``torch.optim.RAdam(decoupled_weight_decay=True)`` decays on every step. The two agree when
          ``degenerated_to_sgd=True`` (every step updates).
        * the paper's adaptive term sqrt((1-b2^t)/v) has no eps; the code's denominator is sqrt(v)+eps.

    Deviations from the official code:
        * no step-size cache: the code keeps a 10-slot ``buffer`` of (step, rho_t, step_size) in each
          param group; we recompute these cheap scalars every step, so param groups hold hyperparameters only
          and nothing stale can be serialised.
        * precision: the code does all maths on ``p.data.float()``, silently downcasting fp64 to fp32.
          We compute fp16/bf16 params in fp32 and keep fp32 and fp64 params in their own dtype,
          which is what lets float64 parity reach 1e-10.
        * state dtype: ``exp_avg`` / ``exp_avg_sq`` are fp32 for fp16/bf16 params and the param dtype
          otherwise. ``load_state_dict`` restores this policy (torch would cast them to the param dtype;
          the official code undoes that with ``type_as`` each step, after the precision is already lost).
        * ``state["step"]`` is a Python int (as in the official code): exact at any step count, no
          device sync, and it round-trips through ``state_dict``. A tensor step from a
          ``torch.optim.RAdam`` checkpoint is converted on load.
        * sparse gradients raise RuntimeError, as in the official code; complex params raise RuntimeError
          too (the official ``.float()`` would silently drop the imaginary part).
    """

    # Test-only hook: when set, replaces r_t on rectified steps (the test of the reduction to Adam).
    # It does not change which steps are rectified. Never set it outside tests.
    _force_rectifier: float | None = None

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        degenerated_to_sgd: bool = False,
        *,
        impl: str | None = None,
    ) -> None:
        self.impl = self._check_impl(impl)
        defaults = _validated(
            {
                "lr": lr,
                "betas": betas,
                "eps": eps,
                "weight_decay": weight_decay,
                "degenerated_to_sgd": degenerated_to_sgd,
            }
        )
        super().__init__(params, defaults)

    _validate_group = staticmethod(_validated)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimisation step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._evaluate(closure)

        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            params, grads, (exp_avgs, exp_avg_sqs), steps = self._gather_moments(group, "exp_avg", "exp_avg_sq")
            if params:
                radam_step(
                    self.impl,
                    params,
                    grads,
                    exp_avgs,
                    exp_avg_sqs,
                    steps,
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    degenerated_to_sgd=group["degenerated_to_sgd"],
                    rectifier_override=self._force_rectifier,
                )
        return loss

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """After torch's load: undo torch's cast of the moments to the param dtype (bf16 keeps fp32)."""
        if "step" in saved:
            state["step"] = int(saved["step"])
        for key in ("exp_avg", "exp_avg_sq"):
            value = saved.get(key)
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device=p.device, dtype=state_dtype(p.dtype))
