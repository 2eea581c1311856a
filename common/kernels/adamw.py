"""AdamW (torch.optim.AdamW's maths, Loshchilov & Hutter 2019), the yardstick every other rule is timed against.

:func:`adamw_update` is the readable per-tensor definition; :func:`adamw_step` runs a list of tensors with the
implementation ``impl`` names (see :mod:`common.kernels.dispatch`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from common.kernels.dispatch import Operands, run, run_compiled, scalar_tensor

__all__ = ["STATE", "adamw_step", "adamw_update"]

STATE = ("exp_avg", "exp_avg_sq")


def adamw_update(
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
) -> None:
    """One AdamW step on one tensor, in place (torch's ``_single_tensor_adamw`` order, m as mul/add, not lerp).

    theta <- theta (1 - lr wd); m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2;
    theta <- theta - lr/bc1 m / (sqrt(v)/sqrt(bc2) + eps). State in the compute dtype (``exp_avg.dtype``).
    """
    compute_dtype = exp_avg.dtype
    if grad.dtype != compute_dtype:
        grad = grad.to(compute_dtype)
    theta = param if param.dtype == compute_dtype else param.to(compute_dtype)
    if weight_decay != 0:
        theta.mul_(1 - lr * weight_decay)
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    denom = (exp_avg_sq.sqrt() / math.sqrt(bias_correction2)).add_(eps)
    theta.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)
    if theta is not param:
        param.copy_(theta)


def _foreach(ops: Operands, step: int, *, lr: float, beta1: float, beta2: float, eps: float,
             weight_decay: float) -> None:
    params, grads, ms, vs = ops
    compute = ms[0].dtype  # type: ignore[index]
    grads = [g if g.dtype == compute else g.to(compute) for g in grads]  # type: ignore[union-attr]
    thetas = [p if p.dtype == compute else p.to(compute) for p in params]  # type: ignore[union-attr]
    if weight_decay != 0:
        torch._foreach_mul_(thetas, 1 - lr * weight_decay)
    torch._foreach_mul_(ms, beta1)
    torch._foreach_add_(ms, grads, alpha=1 - beta1)
    torch._foreach_mul_(vs, beta2)
    torch._foreach_addcmul_(vs, grads, grads, value=1 - beta2)
    denom = torch._foreach_sqrt(vs)
    torch._foreach_div_(denom, math.sqrt(1 - beta2**step))
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(thetas, ms, denom, value=-lr / (1 - beta1**step))
    if thetas[0] is not params[0]:  # type: ignore[index]
        torch._foreach_copy_(params, thetas)


def _fused(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, s: torch.Tensor) -> None:
    """One flat tensor, for torch.compile; s = (b1, 1-b1, b2, 1-b2, decay, eps, sqrt(bc2), -lr/bc1)."""
    g = g.to(m.dtype)
    theta = p.to(m.dtype) * s[4]
    m.copy_(m * s[0] + s[1] * g)
    v.copy_(v * s[2] + s[3] * g * g)
    p.copy_(theta + s[7] * (m / (v.sqrt() / s[6] + s[5])))


def scalars(step: int, *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float) -> list[float]:
    """The host-side scalars of one step, shared by the compiled and Triton implementations."""
    decay = 1 - lr * weight_decay if weight_decay != 0 else 1.0
    return [beta1, 1 - beta1, beta2, 1 - beta2, decay, eps, math.sqrt(1 - beta2**step), -lr / (1 - beta1**step)]


def adamw_step(
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
) -> None:
    """AdamW steps on many tensors (``steps[i]`` is tensor i's t after the increment) with implementation ``impl``."""
    hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)

    def reference(ops: Operands, step: int) -> None:
        for p, g, m, v in zip(*ops, strict=True):  # type: ignore[call-overload]
            adamw_update(p, g, m, v, step, **hp)

    def foreach(ops: Operands, step: int) -> None:
        _foreach(ops, step, **hp)

    def compiled(ops: Operands, step: int) -> None:
        s = scalar_tensor(scalars(step, **hp), ops[0][0].device)  # type: ignore[index]
        run_compiled("adamw", _fused, ops, s, foreach, step)

    def triton(ops: Operands, step: int) -> None:
        from common.kernels.triton_kernels.adamw import launch

        launch(ops, scalar_tensor(scalars(step, **hp), ops[0][0].device))  # type: ignore[index]

    run(impl, "adamw", [list(params), list(grads), list(exp_avgs), list(exp_avg_sqs)], steps,
        reference=reference, foreach=foreach, compiled=compiled, triton=triton)
