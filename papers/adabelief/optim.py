"""AdaBelief with the semantics of the authors' released package, adabelief-pytorch 0.2.1.

The maths lives once, in :func:`common.kernels.adabelief.adabelief_update` (one tensor at a time, the readable
definition); the foreach, compiled and Triton implementations beside it are chosen with ``impl=`` and tested against it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.kernels.adabelief import adabelief_step
from common.kernels.adabelief import adabelief_update as _adabelief_update  # noqa: F401  (the reference)
from common.optim.base import CheckedOptimizer
from common.optim.precision import state_dtype
from common.optim.validation import (
    ADAM_CHECKS,
    Check,
    bool_checks,
    validate_group,
)

__all__ = ["PACKAGE_DEFAULT", "PAPER_CIFAR", "AdaBelief"]

# The paper's CIFAR runs (in-repo copies with 0.0.5 behaviour): coupled L2, no rectification, eps 1e-8.
PAPER_CIFAR: dict[str, Any] = dict(
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=5e-4,
    weight_decouple=False,
    rectify=False,
    amsgrad=False,
    fixed_decay=False,
    degenerated_to_sgd=True,
)

# adabelief-pytorch 0.2.1's constructor defaults (what a script passing only lr/betas/wd/eps silently gets).
PACKAGE_DEFAULT: dict[str, Any] = dict(
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-16,
    weight_decay=0.0,
    amsgrad=False,
    weight_decouple=True,
    fixed_decay=False,
    rectify=True,
    degenerated_to_sgd=True,
)

_STATE_TENSORS = ("exp_avg", "exp_avg_var", "max_exp_avg_var")
_FLAGS = ("amsgrad", "weight_decouple", "fixed_decay", "rectify", "degenerated_to_sgd")


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    """Check (and normalise) whichever hyperparameters ``group`` sets; the error names the argument."""
    checks: dict[str, Check] = {
        **ADAM_CHECKS,
        **bool_checks(*_FLAGS),
    }
    return validate_group(group, checks)


class AdaBelief(CheckedOptimizer):
    """AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients.

    Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris, Duncan, NeurIPS 2020, https://arxiv.org/abs/2010.07468.
    Follows the released package ``adabelief-pytorch==0.2.1`` (``adabelief_pytorch/AdaBelief.py``), frozen in
    https://github.com/juntang-zhuang/Adabelief-Optimizer at commit 2855178 under
    ``pypi_packages/adabelief_pytorch0.2.1``, including its defaults (:data:`PACKAGE_DEFAULT`).

    Each step, in this order (t counted from 1, bc_i = 1 - b_i^t):
        1. weight decay: theta <- theta (1 - lr wd) if ``weight_decouple`` (theta (1 - wd) with ``fixed_decay``),
           else g <- g + wd theta (coupled L2);
        2. m <- b1 m + (1-b1) g;  s <- b2 s + (1-b2) (g - m)^2 + eps  (the new m; eps accumulates in s);
           with ``amsgrad``: s_max <- max(s_max, s);
        3. without ``rectify``: theta <- theta - lr/bc1 m / (sqrt(s)/sqrt(bc2) + eps), s_max in place of s with
           amsgrad; with ``rectify``, RAdam's rule (:mod:`common.optim.rectify`): if rho_t >= 5,
           theta <- theta - lr r_t sqrt(bc2)/bc1 m / (sqrt(s) + eps), always s, never s_max (0.2.1 quirk:
           amsgrad does not affect rectified steps); else theta <- theta - lr/bc1 m if ``degenerated_to_sgd``,
           else no update.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate, >= 0. Default 1e-3.
        betas: (beta1, beta2), each in [0, 1). Default (0.9, 0.999).
        eps: > 0. Added to s every step (steady state ~ eps/(1-b2)) and again outside the sqrt, so sqrt(s) is
            floored near sqrt(eps/(1-b2)): 1e-8 makes AdaBelief SGD-like on low-variance coordinates, 1e-16 (the
            default) Adam-like (README: "eps_AdaBelief ~ eps_Adam^2"). Default 1e-16.
        weight_decay: >= 0. Default 0.
        amsgrad: keep the running max of s and divide by it (non-rectified steps only). Default False.
        weight_decouple: decoupled (AdamW-style) decay instead of L2 added to the gradient. Default True.
        fixed_decay: with ``weight_decouple``, decay by wd instead of lr wd per step; inert otherwise. Default False.
        rectify: RAdam's variance rectification. Default True.
        degenerated_to_sgd: with ``rectify``, take a bias-corrected SGD-momentum step while rho_t < 5 instead of
            none; inert otherwise. Default True.
        impl: implementation of the update, see :mod:`common.kernels` ("reference", "foreach", "compiled",
            "triton" or "auto"). Default None: :func:`common.kernels.default_impl`, i.e. "auto" (Triton on CUDA,
            foreach elsewhere; foreach is bit-identical to the reference on CPU).

    Paper vs package defaults: the paper's CIFAR runs (:data:`PAPER_CIFAR`) used in-repo copies with 0.0.5
    behaviour: eps 1e-8, coupled L2 decay 5e-4, rectify and amsgrad off. 0.2.1 defaults to eps 1e-16, decoupled
    decay and rectify on, which the repo's current scripts get silently (they pass only lr, betas, wd, eps). The
    README says rectification was never used for the paper's results. Configs should set every option.

    Deviations from adabelief-pytorch 0.2.1 (theta and the state are otherwise identical to it):
        * coupled decay is added to a copy of the gradient; the package adds it into ``p.grad`` in place, which
          corrupts gradient-norm logging after ``step()``.
        * precision: fp16 *and bf16* params are computed in fp32 with fp32 state (0.2.1 upcasts fp16 only and
          runs bf16 in bf16, where (g - m)^2 underflows and eps=1e-16 rounds away, issues #31, #40).
          ``load_state_dict`` keeps that state fp32 (torch would cast it to the param dtype).
        * no step-size cache: 0.2.1 keeps a 10-slot ``buffer`` of (step, rho_t, step_size) in each param group
          (and shares one list between groups with default betas). We recompute these scalars every step, so
          param groups hold hyperparameters only; a ``buffer`` in a loaded 0.2.1 checkpoint is dropped.
        * every option can be set per param group (0.2.1 keeps ``weight_decouple``, ``fixed_decay``, ``rectify``
          and ``degenerated_to_sgd`` as optimizer-wide attributes).
        * ``state["step"]`` is a Python int, as in 0.2.1: exact, no device sync, and it round-trips.
        * stricter checks: eps must be > 0 (0.2.1 accepts 0, which divides 0 by 0 on zero-gradient coordinates),
          flags must be bools, weight_decay must be >= 0; sparse gradients and complex params raise RuntimeError.
        * no ``print_change_log`` and no prints.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-16,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        weight_decouple: bool = True,
        fixed_decay: bool = False,
        rectify: bool = True,
        degenerated_to_sgd: bool = True,
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
                "amsgrad": amsgrad,
                "weight_decouple": weight_decouple,
                "fixed_decay": fixed_decay,
                "rectify": rectify,
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
            optional = ("max_exp_avg_var",) if group["amsgrad"] else ()
            params, grads, (exp_avgs, exp_avg_vars, *max_vars), steps = self._gather_moments(
                group, "exp_avg", "exp_avg_var", *optional)
            if params:
                adabelief_step(
                    self.impl,
                    params,
                    grads,
                    exp_avgs,
                    exp_avg_vars,
                    max_vars[0] if max_vars else None,
                    steps,
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    weight_decouple=group["weight_decouple"],
                    fixed_decay=group["fixed_decay"],
                    rectify=group["rectify"],
                    degenerated_to_sgd=group["degenerated_to_sgd"],
                )
        return loss

    _foreign_group_keys = ("buffer",)

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """After torch's load: restore fp32 state for fp16/bf16 params and an int ``step``.

        Also accepts an adabelief-pytorch 0.2.1 checkpoint: its ``buffer`` cache is dropped, and the options it keeps
        as attributes rather than in the groups are taken from this optimizer's current groups.
        """
        if "step" in saved:
            state["step"] = int(saved["step"])
        for key in _STATE_TENSORS:
            value = saved.get(key)
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device=p.device, dtype=state_dtype(p.dtype))
