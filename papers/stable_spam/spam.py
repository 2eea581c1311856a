"""SPAM (Spike-Aware Adam with Momentum Reset) with the semantics of the authors' ``SPAM.py``.

The per-tensor rule lives once, in :mod:`common.kernels.spam` (the readable reference definition and its foreach,
compiled and Triton implementations, chosen by ``impl=``); this module holds the counters and schedules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.kernels.spam import spam_step
from common.optim.base import CheckedOptimizer
from common.optim.precision import state_dtype
from common.optim.validation import (
    ADAM_CHECKS,
    Check,
    check_bool,
    check_real,
    validate_group,
)
from papers.stable_spam.common_checks import (
    check_nonnegative_int,
    check_optional_positive_int,
    cosine_warmup_factor,
)

__all__ = ["SPAM"]

_STATE_TENSORS = ("exp_avg", "exp_avg_sq")


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Check] = {
        **ADAM_CHECKS,
        "correct_bias": lambda v: check_bool("correct_bias", v),
        "threshold": lambda v: check_real("threshold", v, low=0.0),
        "DeltaT": lambda v: check_optional_positive_int("DeltaT", v, zero_means_none=True),
        "grad_accu_steps": lambda v: check_nonnegative_int("grad_accu_steps", v),
        "mutate_grad": lambda v: check_bool("mutate_grad", v),
        "density": lambda v: _check_density(v),
    }
    return validate_group(group, checks)


def _check_density(v: Any) -> float:
    d = check_real("density", v, low=0.0, high=1.0, low_inclusive=False)
    if d != 1.0:
        raise ValueError(f"density must be 1.0 (dense SPAM); sparse density masks are not implemented, got {d}")
    return d


class SPAM(CheckedOptimizer):
    """SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM Training.

    Huang, Zhu, Jin, Liu, Wang, Liu, ICLR 2025, https://arxiv.org/abs/2501.06842. Follows ``galore_torch/SPAM.py``
    (class ``AdamW``, exported as SPAM) in https://github.com/TianjinYellow/SPAM-Optimizer at e8185fb (2025-03-12).

    Each step (``total_step`` counted from 0 before the step, ``current_step`` = steps since the last reset):
        1. if (total_step + 1) % DeltaT == 0: m <- 0, v <- 0 (t is *not* reset, so bias correction is ~1);
        2. spike clipping, when threshold != 0, total_step + 1 >= grad_accu_steps and
           (total_step + 1) % DeltaT >= grad_accu_steps: entries with g^2 > threshold v become sign(g) sqrt(threshold v)
           (v before this step's update);
        3. m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2;
           theta <- theta - w lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps) (Hugging Face AdamW's eps),
           w = 1 - 0.99 (1 + cos(pi cs / (N + 1))) / 2 while cs = current_step < N, else 1;
        4. theta <- theta - lr wd theta (after the update, not scaled by w);
        5. total_step += 1, current_step += 1, and current_step <- 0 when the *next* step resets, so the reset step
           itself runs at w = 0.01.
    ``current_step`` starts at N + 1: no warmup at the start of training.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: >= 0. Default 1e-3.
        betas: Default (0.9, 0.999).
        eps: > 0. Default 1e-6.
        weight_decay: >= 0. Default 0.
        correct_bias: Adam's bias correction. Default True.
        warmup_steps: N, the post-reset warmup length. Default 150 (the paper).
        threshold: spike threshold theta (0 turns clipping off). Default 5000.
        DeltaT: reset period; None (or 0) turns resets off. Default 500.
        grad_accu_steps: steps after the start and after each reset without clipping. Default 20.
        warmup_from_lr_schedule: reproduce the open launcher bug (SPAM-Optimizer#6): ``torchrun_main.py`` passes
            the LR warmup length (``lr_warmup_steps``) as N, so with DeltaT = 500 and a 1000-step LR warmup the
            post-reset warmup never completes. Default False (N = ``warmup_steps``, as the paper).
        lr_warmup_steps: the LR schedule's warmup length; required when ``warmup_from_lr_schedule``.
        mutate_grad: write clipped values into ``p.grad`` as the official code does. Default False.
        impl: implementation of the per-tensor rule, see :mod:`common.kernels`. Default None:
            :func:`common.kernels.default_impl`, i.e. "auto" (Triton on CUDA, foreach elsewhere). A step with
            ``track_stats`` runs foreach when compiled or triton is chosen.
        track_stats: ``self.stats`` after each step: ``grad_norm_in``, ``grad_norm_out`` (after clipping),
            ``clip_fraction``. Default False.

    Deviations from the official code: ``total_step`` and ``current_step`` live in ``self.state`` under string
    keys (as the official) and round-trip; clipping never writes into ``p.grad`` unless ``mutate_grad``; fp16/bf16
    params get fp32 state; density masks (``density < 1``, the official's sparse variant) are not implemented:
    ``density`` must be 1.0, which the official runs through a boolean gather with the same result.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
        warmup_steps: int = 150,
        threshold: float = 5000,
        DeltaT: int | None = 500,  # noqa: N803 (the official name)
        grad_accu_steps: int = 20,
        *,
        warmup_from_lr_schedule: bool = False,
        lr_warmup_steps: int | None = None,
        mutate_grad: bool = False,
        impl: str | None = None,
        track_stats: bool = False,
    ) -> None:
        defaults = _validated(dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias,
                                   threshold=threshold, DeltaT=DeltaT, grad_accu_steps=grad_accu_steps,
                                   mutate_grad=mutate_grad))
        self.warmup_from_lr_schedule = check_bool("warmup_from_lr_schedule", warmup_from_lr_schedule)
        if warmup_from_lr_schedule:
            if lr_warmup_steps is None:
                raise ValueError("lr_warmup_steps is required when warmup_from_lr_schedule=True")
            warmup_steps = lr_warmup_steps
        self.warmup_steps = check_nonnegative_int("warmup_steps", warmup_steps)
        self.impl = self._check_impl(impl)
        self.track_stats = check_bool("track_stats", track_stats)
        self.stats: dict[str, torch.Tensor] = {}
        super().__init__(params, defaults)
        self.state["total_step"] = 0
        self.state["current_step"] = self.warmup_steps + 1

    _validate_group = staticmethod(_validated)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimisation step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._evaluate(closure)
        total, current = int(self.state["total_step"]), int(self.state["current_step"])
        warmup = cosine_warmup_factor(current, self.warmup_steps)
        stats: dict[str, list[torch.Tensor]] | None = None
        numel = 0
        if self.track_stats:
            stats = {k: [] for k in ("sq_in", "sq_out", "clipped")}
        for group in self.param_groups:
            gap, accu = group["DeltaT"], group["grad_accu_steps"]
            reset = gap is not None and (total + 1) % gap == 0
            clip = (total + 1) >= accu and (gap is None or (total + 1) % gap >= accu)
            beta1, beta2 = group["betas"]
            params, grads, (exp_avgs, exp_avg_sqs), steps = self._gather_moments(group, "exp_avg", "exp_avg_sq")
            if stats is not None:
                stats["sq_in"].extend(g.to(m.dtype).square().sum() for g, m in zip(grads, exp_avgs, strict=True))
                numel += sum(p.numel() for p in params)
            if params:
                spam_step(
                    self.impl, params, grads, exp_avgs, exp_avg_sqs, steps, lr=group["lr"], beta1=beta1, beta2=beta2,
                    eps=group["eps"], weight_decay=group["weight_decay"], correct_bias=group["correct_bias"],
                    threshold=group["threshold"], clip=clip, reset=reset, warmup=warmup,
                    mutate_grad=group["mutate_grad"], stats=stats)
        total += 1
        current += 1
        gap = self.param_groups[0]["DeltaT"]
        if gap is not None and (total + 1) % gap == 0:
            current = 0
        self.state["total_step"], self.state["current_step"] = total, current
        if stats is not None and stats["sq_in"]:
            total = {k: torch.stack(vs).double().sum() if vs else torch.zeros((), dtype=torch.float64)
                     for k, vs in stats.items()}
            self.stats = {"grad_norm_in": total["sq_in"].sqrt(), "grad_norm_out": total["sq_out"].sqrt(),
                          "clip_fraction": total["clipped"] / numel}
        return loss

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        if "step" in saved:
            state["step"] = int(saved["step"])
        for key in _STATE_TENSORS:
            value = saved.get(key)
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device=p.device, dtype=state_dtype(p.dtype))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for key in ("total_step", "current_step"):
            if key in state_dict["state"]:
                self.state[key] = int(state_dict["state"][key])
