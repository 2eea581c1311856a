"""SPAM's update rule (TianjinYellow/SPAM-Optimizer e8185fb, ``SPAM.py``) in every implementation.

:func:`spam_update` is the readable per-tensor definition; :func:`spam_step` runs a list of tensors with the
implementation ``impl`` names (see :mod:`common.kernels.dispatch`). SPAM is elementwise: the spike clip compares
each g^2 with threshold * v of the same entry, so the fused implementations are one pass over memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from common.kernels.dispatch import Operands, run, run_compiled, scalar_tensor

__all__ = ["STATE", "spam_step", "spam_update"]

STATE = ("exp_avg", "exp_avg_sq")


def spam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    correct_bias: bool,
    threshold: float,
    clip: bool,
    reset: bool,
    warmup: float,
    mutate_grad: bool,
    stats: dict[str, list[torch.Tensor]] | None = None,
) -> None:
    """One SPAM step on one tensor, in place; the definition every variant must match.

    ``step`` is t *after* the increment. ``reset`` zeroes m and v before the step (t is not reset, so bias
    correction is ~1 afterwards); ``clip`` says whether spike clipping is active this step; ``warmup`` is the
    post-reset cosine factor on the update (not on the weight decay). The state is held in ``exp_avg.dtype``.
    """
    dtype = exp_avg.dtype
    g = grad if grad.dtype == dtype else grad.to(dtype)
    theta = param if param.dtype == dtype else param.to(dtype)
    if reset:
        exp_avg.zero_()
        exp_avg_sq.zero_()

    if clip and threshold != 0:
        bound = threshold * exp_avg_sq  # the un-corrected, pre-update v
        mask = g**2 > bound
        g = torch.where(mask, g.sign() * torch.sqrt(bound), g)
        if mutate_grad:
            grad.copy_(g)
        if stats is not None:
            stats["clipped"].append(mask.sum())
    if stats is not None:
        stats["sq_out"].append(g.square().sum())

    exp_avg.mul_(beta1).add_(g, alpha=1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
    denom = exp_avg_sq.sqrt().add_(eps)  # Hugging Face AdamW's eps placement
    step_size = lr
    if correct_bias:
        step_size = step_size * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
    theta.addcdiv_(exp_avg, denom, value=-step_size * warmup)
    if weight_decay > 0.0:
        theta.add_(theta, alpha=-lr * weight_decay)  # after the update, not scaled by the warmup
    if theta is not param:
        param.copy_(theta)


def _plan(step: int, *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, correct_bias: bool,
          threshold: float, warmup: float) -> list[float]:
    """(threshold, b1, 1-b1, b2, 1-b2, eps, update coefficient, decay coefficient) as the reference computes them."""
    step_size = lr
    if correct_bias:
        step_size = step_size * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
    decay = -lr * weight_decay if weight_decay > 0.0 else 0.0
    return [threshold, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps, -step_size * warmup, decay]


def _foreach(ops: Operands, step: int, *, clip: bool, reset: bool, mutate_grad: bool,
             stats: dict[str, list[torch.Tensor]] | None, **hp: float | bool) -> None:
    params, grads, ms, vs = ops
    threshold, b1, _, b2, _, eps, update, decay = _plan(step, **hp)  # type: ignore[arg-type]
    compute = ms[0].dtype  # type: ignore[index]
    gs = [g if g.dtype == compute else g.to(compute) for g in grads]  # type: ignore[union-attr]
    thetas = [p if p.dtype == compute else p.to(compute) for p in params]  # type: ignore[union-attr]
    if reset:
        torch._foreach_zero_(ms)  # type: ignore[arg-type]
        torch._foreach_zero_(vs)  # type: ignore[arg-type]
    if clip:
        bounds = torch._foreach_mul(vs, threshold)  # type: ignore[arg-type]
        squares = torch._foreach_pow(gs, 2)
        masks = [sq > b for sq, b in zip(squares, bounds, strict=True)]
        spiked = torch._foreach_mul(torch._foreach_sign(gs), torch._foreach_sqrt(bounds))
        gs = [torch.where(k, s, g) for k, s, g in zip(masks, spiked, gs, strict=True)]
        if mutate_grad:
            torch._foreach_copy_(grads, gs)  # type: ignore[arg-type]
        if stats is not None:
            stats["clipped"].extend(k.sum() for k in masks)
    if stats is not None:
        stats["sq_out"].extend(g.square().sum() for g in gs)
    torch._foreach_mul_(ms, b1)  # type: ignore[arg-type]
    torch._foreach_add_(ms, gs, alpha=1.0 - b1)  # type: ignore[arg-type]
    torch._foreach_mul_(vs, b2)  # type: ignore[arg-type]
    torch._foreach_addcmul_(vs, gs, gs, value=1.0 - b2)  # type: ignore[arg-type]
    denom = torch._foreach_sqrt(vs)  # type: ignore[arg-type]
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(thetas, ms, denom, value=update)  # type: ignore[arg-type]
    if decay != 0.0:
        torch._foreach_add_(thetas, thetas, alpha=decay)
    if thetas[0] is not params[0]:  # type: ignore[index]
        torch._foreach_copy_(params, thetas)  # type: ignore[arg-type]


def _fused(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, c: torch.Tensor, *, clip: bool,
           reset: bool, mutate_grad: bool) -> None:
    """One flat tensor, for torch.compile; ``c`` as :func:`_plan` returns it."""
    theta = p.to(m.dtype)
    gc = g.to(m.dtype)
    m0 = torch.zeros_like(m) if reset else m
    v0 = torch.zeros_like(v) if reset else v
    if clip:
        bound = c[0] * v0
        gc = torch.where(gc * gc > bound, gc.sign() * bound.sqrt(), gc)
        if mutate_grad:
            g.copy_(gc)
    m_new = m0 * c[1] + c[2] * gc
    v_new = v0 * c[3] + c[4] * gc * gc
    m.copy_(m_new)
    v.copy_(v_new)
    theta = theta + c[6] * (m_new / (v_new.sqrt() + c[5]))
    p.copy_(theta + c[7] * theta)


def spam_step(
    impl: str,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: Sequence[torch.Tensor],
    exp_avg_sqs: Sequence[torch.Tensor],
    steps: Sequence[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    correct_bias: bool,
    threshold: float,
    clip: bool,
    reset: bool,
    warmup: float,
    mutate_grad: bool,
    stats: dict[str, list[torch.Tensor]] | None = None,
) -> None:
    """SPAM steps on many tensors with implementation ``impl``. ``stats`` (the optimizer's ``track_stats``) is
    collected by the reference and foreach only, so a step that needs it runs foreach for compiled or triton."""
    hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias,
              threshold=threshold, warmup=warmup)
    clip = clip and threshold != 0

    def reference(ops: Operands, step: int) -> None:
        p, g, m, v = ops
        for i in range(len(p)):  # type: ignore[arg-type]
            spam_update(p[i], g[i], m[i], v[i], step, clip=clip, reset=reset, mutate_grad=mutate_grad,  # type: ignore
                        stats=stats, **hp)  # type: ignore[arg-type]

    def foreach(ops: Operands, step: int) -> None:
        _foreach(ops, step, clip=clip, reset=reset, mutate_grad=mutate_grad, stats=stats, **hp)

    def compiled(ops: Operands, step: int) -> None:
        c = scalar_tensor(_plan(step, **hp), ops[0][0].device)  # type: ignore[arg-type, index]
        run_compiled("spam", _fused, ops, c, foreach, step, clip=clip, reset=reset, mutate_grad=mutate_grad)

    def triton(ops: Operands, step: int) -> None:
        from common.kernels.triton_kernels.spam import launch

        launch(ops, scalar_tensor(_plan(step, **hp), ops[0][0].device), clip=clip, reset=reset,  # type: ignore
               mutate_grad=mutate_grad)

    operands = [list(params), list(grads), list(exp_avgs), list(exp_avg_sqs)]
    run(impl, "spam", operands, steps, reference=reference, foreach=foreach, compiled=compiled, triton=triton,
        fused=stats is None)
