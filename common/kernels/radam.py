"""RAdam's update rule (official code LiyuanLucasLiu/RAdam d9fd30a) in every implementation.

:func:`radam_update` is the readable per-tensor definition; :func:`radam_step` runs a list of tensors with the
implementation ``impl`` names (see :mod:`common.kernels.dispatch`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from common.kernels.dispatch import Operands, run, run_compiled, scalar_tensor
from common.optim.rectify import rectifier

__all__ = ["STATE", "radam_step", "radam_update"]

STATE = ("exp_avg", "exp_avg_sq")
SKIP, SGD, ADAPTIVE = 0, 1, 2  # what a step does to theta (moments always advance)


def radam_update(
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
    degenerated_to_sgd: bool,
    rectifier_override: float | None = None,
) -> None:
    """One RAdam step on one tensor, in place; the reference definition every variant must match.

    ``step`` is t *after* the increment (1 on the first call). The moments are held in the compute
    dtype (``exp_avg.dtype``); a low-precision ``param`` is updated in that dtype and copied back.
    ``rectifier_override`` replaces r_t on rectified steps only (test hook, see ``RAdam._force_rectifier``).
    """
    compute_dtype = exp_avg.dtype
    if grad.dtype != compute_dtype:
        grad = grad.to(compute_dtype)
    # Official order: v before m (the order does not matter, they are independent).
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)

    bias_correction1 = 1 - beta1**step
    r = rectifier(step, beta2)
    if r is None and not degenerated_to_sgd:
        return  # official default: no update and no weight decay while rho_t < 5

    theta = param if param.dtype == compute_dtype else param.to(compute_dtype)
    if weight_decay != 0:
        theta.mul_(1 - lr * weight_decay)  # decoupled, on the pre-update theta, only on updating steps
    if r is not None:
        if rectifier_override is not None:
            r = rectifier_override
        # eps is added to the un-corrected sqrt(v); sqrt(1 - beta2^t) is folded into the step size.
        step_size = lr * r * math.sqrt(1 - beta2**step) / bias_correction1
        theta.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps), value=-step_size)
    else:
        theta.add_(exp_avg, alpha=-lr / bias_correction1)  # SGD with bias-corrected momentum
    if theta is not param:
        param.copy_(theta)


def _plan(step: int, lr: float, beta1: float, beta2: float, weight_decay: float, degenerated_to_sgd: bool,
          rectifier_override: float | None) -> tuple[int, float]:
    """(mode, coefficient of the theta update) for this step, from the same scalars as the reference."""
    bias_correction1 = 1 - beta1**step
    r = rectifier(step, beta2)
    if r is None:
        return (SGD, -lr / bias_correction1) if degenerated_to_sgd else (SKIP, 0.0)
    if rectifier_override is not None:
        r = rectifier_override
    return ADAPTIVE, -(lr * r * math.sqrt(1 - beta2**step) / bias_correction1)


def _foreach(ops: Operands, step: int, *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
             degenerated_to_sgd: bool, rectifier_override: float | None) -> None:
    params, grads, ms, vs = ops
    compute = ms[0].dtype  # type: ignore[index]
    grads = [g if g.dtype == compute else g.to(compute) for g in grads]  # type: ignore[union-attr]
    torch._foreach_mul_(vs, beta2)
    torch._foreach_addcmul_(vs, grads, grads, value=1 - beta2)
    torch._foreach_mul_(ms, beta1)
    torch._foreach_add_(ms, grads, alpha=1 - beta1)
    mode, coef = _plan(step, lr, beta1, beta2, weight_decay, degenerated_to_sgd, rectifier_override)
    if mode == SKIP:
        return
    thetas = [p if p.dtype == compute else p.to(compute) for p in params]  # type: ignore[union-attr]
    if weight_decay != 0:
        torch._foreach_mul_(thetas, 1 - lr * weight_decay)
    if mode == ADAPTIVE:
        denom = torch._foreach_sqrt(vs)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(thetas, ms, denom, value=coef)
    else:
        torch._foreach_add_(thetas, ms, alpha=coef)
    if thetas[0] is not params[0]:  # type: ignore[index]
        torch._foreach_copy_(params, thetas)


def _fused(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, s: torch.Tensor) -> None:
    """The whole step on one flat tensor, for torch.compile; s = (b1, 1-b1, b2, 1-b2, decay, eps, adaptive coef,
    sgd coef). The mode is data (a skipped step has decay 1 and zero coefficients), so one graph serves every step."""
    g = g.to(m.dtype)
    v.copy_(v * s[2] + s[3] * g * g)
    m.copy_(m * s[0] + s[1] * g)
    p.copy_(p.to(m.dtype) * s[4] + s[6] * (m / (v.sqrt() + s[5])) + s[7] * m)


def radam_step(
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
    degenerated_to_sgd: bool,
    rectifier_override: float | None = None,
) -> None:
    """RAdam steps on many tensors (``steps[i]`` is tensor i's t after the increment) with implementation ``impl``."""
    hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
              degenerated_to_sgd=degenerated_to_sgd, rectifier_override=rectifier_override)

    def reference(ops: Operands, step: int) -> None:
        for p, g, m, v in zip(*ops, strict=True):  # type: ignore[call-overload]
            radam_update(p, g, m, v, step, **hp)

    def foreach(ops: Operands, step: int) -> None:
        _foreach(ops, step, **hp)

    def scal(step: int, device: torch.device) -> tuple[int, torch.Tensor]:
        mode, coef = _plan(step, lr, beta1, beta2, weight_decay, degenerated_to_sgd, rectifier_override)
        decay = 1 - lr * weight_decay if weight_decay != 0 and mode != SKIP else 1.0
        adaptive, sgd = (coef, 0.0) if mode == ADAPTIVE else (0.0, coef)
        return mode, scalar_tensor([beta1, 1 - beta1, beta2, 1 - beta2, decay, eps, adaptive, sgd], device)

    def compiled(ops: Operands, step: int) -> None:
        _, s = scal(step, ops[0][0].device)  # type: ignore[index]
        run_compiled("radam", _fused, ops, s, foreach, step)

    def triton(ops: Operands, step: int) -> None:
        from common.kernels.triton_kernels.radam import launch

        mode, s = scal(step, ops[0][0].device)  # type: ignore[index]
        launch(ops, s, mode)

    run(impl, "radam", [list(params), list(grads), list(exp_avgs), list(exp_avg_sqs)], steps,
        reference=reference, foreach=foreach, compiled=compiled, triton=triton)
