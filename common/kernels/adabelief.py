"""AdaBelief's update rule (adabelief-pytorch 0.2.1) in every implementation.

:func:`adabelief_update` is the readable per-tensor definition; :func:`adabelief_step` runs a list of tensors with
the implementation ``impl`` names (see :mod:`common.kernels.dispatch`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from common.kernels.dispatch import Operands, run, run_compiled, scalar_tensor
from common.optim.rectify import rectified_step_size

__all__ = ["STATE", "adabelief_step", "adabelief_update"]

STATE = ("exp_avg", "exp_avg_var", "max_exp_avg_var")


def adabelief_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_var: torch.Tensor,
    max_exp_avg_var: torch.Tensor | None,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    weight_decouple: bool,
    fixed_decay: bool,
    rectify: bool,
    degenerated_to_sgd: bool,
) -> None:
    """One AdaBelief 0.2.1 step on one tensor, in place; the reference definition every variant must match.

    ``step`` is t *after* the increment (1 on the first call). ``max_exp_avg_var`` is given iff amsgrad is on.
    The state is held in the compute dtype (``exp_avg.dtype``); a low-precision ``param`` is updated in that dtype and
    copied back. ``grad`` is never written to. Every expression follows the package's operation order,
    so float64 results are bit-identical to it (the parity tests check equality, not a tolerance).
    """
    compute_dtype = exp_avg.dtype
    if grad.dtype != compute_dtype:
        grad = grad.to(compute_dtype)
    theta = param if param.dtype == compute_dtype else param.to(compute_dtype)

    # 1. Weight decay first (adabelief-pytorch 0.2.x's order, the version followed).
    if weight_decouple:
        if weight_decay != 0:  # the package multiplies by 1.0 here, which is exact
            theta.mul_((1.0 - weight_decay) if fixed_decay else (1.0 - lr * weight_decay))
    elif weight_decay != 0:
        grad = grad.add(theta, alpha=weight_decay)  # coupled L2; the package writes this into p.grad, we do not

    # 2. Moments. The residual uses the *updated* m; eps is added into s in place and accumulates.
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    residual = grad - exp_avg
    exp_avg_var.mul_(beta2).addcmul_(residual, residual, value=1 - beta2)
    exp_avg_var.add_(eps)
    if max_exp_avg_var is not None:
        torch.maximum(max_exp_avg_var, exp_avg_var, out=max_exp_avg_var)

    # 3. Update.
    if not rectify:
        s = exp_avg_var if max_exp_avg_var is None else max_exp_avg_var
        denom = (s.sqrt() / math.sqrt(bias_correction2)).add_(eps)  # eps a second time, outside the sqrt
        theta.addcdiv_(exp_avg, denom, value=-(lr / bias_correction1))
    else:
        step_size = rectified_step_size(step, beta1, beta2)  # r_t sqrt(bc2)/bc1, None while rho_t < 5
        if step_size is not None:
            # 0.2.1 quirk: the rectified denominator is built from exp_avg_var even with amsgrad (max ignored).
            theta.addcdiv_(exp_avg, exp_avg_var.sqrt().add_(eps), value=-step_size * lr)
        elif degenerated_to_sgd:
            theta.add_(exp_avg, alpha=-(1.0 / bias_correction1) * lr)  # SGD with bias-corrected momentum
        # else: no update this step (the weight decay above has been applied all the same)
    if theta is not param:
        param.copy_(theta)


def _plan(step: int, *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
          weight_decouple: bool, fixed_decay: bool, rectify: bool, degenerated_to_sgd: bool) -> list[float]:
    """(decay, coupled wd, b1, 1-b1, b2, 1-b2, eps, sqrt(bc2) or 1, adaptive coef, sgd coef), from the reference's
    scalars. Exactly one of the two coefficients is non-zero, or neither on a skipped step."""
    bias_correction1 = 1 - beta1**step
    decay, coupled = 1.0, 0.0
    if weight_decouple:
        if weight_decay != 0:
            decay = (1.0 - weight_decay) if fixed_decay else (1.0 - lr * weight_decay)
    else:
        coupled = weight_decay
    sqrt_bc2, adaptive, sgd = 1.0, 0.0, 0.0
    if not rectify:
        sqrt_bc2, adaptive = math.sqrt(1 - beta2**step), -(lr / bias_correction1)
    else:
        step_size = rectified_step_size(step, beta1, beta2)
        if step_size is not None:
            adaptive = -step_size * lr
        elif degenerated_to_sgd:
            sgd = -(1.0 / bias_correction1) * lr
    return [decay, coupled, beta1, 1 - beta1, beta2, 1 - beta2, eps, sqrt_bc2, adaptive, sgd]


def _foreach(ops: Operands, step: int, *, use_max: bool, **hp: float | bool) -> None:
    params, grads, ms, ss, smax = ops
    decay, coupled, b1, _, b2, _, eps, sqrt_bc2, adaptive, sgd = _plan(step, **hp)  # type: ignore[arg-type]
    compute = ms[0].dtype  # type: ignore[index]
    grads = [g if g.dtype == compute else g.to(compute) for g in grads]  # type: ignore[union-attr]
    thetas = [p if p.dtype == compute else p.to(compute) for p in params]  # type: ignore[union-attr]
    if decay != 1.0:
        torch._foreach_mul_(thetas, decay)
    if coupled != 0:
        grads = torch._foreach_add(grads, thetas, alpha=coupled)
    torch._foreach_mul_(ms, b1)
    torch._foreach_add_(ms, grads, alpha=1 - b1)
    residual = torch._foreach_sub(grads, ms)
    torch._foreach_mul_(ss, b2)
    torch._foreach_addcmul_(ss, residual, residual, value=1 - b2)
    torch._foreach_add_(ss, eps)
    if smax is not None:
        torch._foreach_maximum_(smax, ss)
    if adaptive != 0.0:
        denom = torch._foreach_sqrt(smax if use_max else ss)  # type: ignore[arg-type]
        if sqrt_bc2 != 1.0:
            torch._foreach_div_(denom, sqrt_bc2)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(thetas, ms, denom, value=adaptive)
    elif sgd != 0.0:
        torch._foreach_add_(thetas, ms, alpha=sgd)
    if thetas[0] is not params[0]:  # type: ignore[index]
        torch._foreach_copy_(params, thetas)


def _fused(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, s: torch.Tensor, smax: torch.Tensor | None,
           c: torch.Tensor, *, use_max: bool) -> None:
    """One flat tensor, for torch.compile; ``c`` as :func:`_plan` returns it."""
    theta = p.to(m.dtype)
    g = g.to(m.dtype) + c[1] * theta
    theta = theta * c[0]
    m.copy_(m * c[2] + c[3] * g)
    r = g - m
    s.copy_(s * c[4] + c[5] * r * r + c[6])
    if smax is not None:
        smax.copy_(torch.maximum(smax, s))
    denom = (smax if use_max and smax is not None else s).sqrt() / c[7] + c[6]
    p.copy_(theta + c[8] * (m / denom) + c[9] * m)


def adabelief_step(
    impl: str,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: Sequence[torch.Tensor],
    exp_avg_vars: Sequence[torch.Tensor],
    max_exp_avg_vars: Sequence[torch.Tensor] | None,
    steps: Sequence[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    weight_decouple: bool,
    fixed_decay: bool,
    rectify: bool,
    degenerated_to_sgd: bool,
) -> None:
    """AdaBelief steps on many tensors (``max_exp_avg_vars`` iff amsgrad) with implementation ``impl``."""
    hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, weight_decouple=weight_decouple,
              fixed_decay=fixed_decay, rectify=rectify, degenerated_to_sgd=degenerated_to_sgd)
    use_max = max_exp_avg_vars is not None and not rectify  # 0.2.1: rectified steps ignore the max

    def reference(ops: Operands, step: int) -> None:
        p, g, m, s, smax = ops
        for i in range(len(p)):  # type: ignore[arg-type]
            adabelief_update(p[i], g[i], m[i], s[i], None if smax is None else smax[i], step, **hp)  # type: ignore

    def foreach(ops: Operands, step: int) -> None:
        _foreach(ops, step, use_max=use_max, **hp)

    def compiled(ops: Operands, step: int) -> None:
        c = scalar_tensor(_plan(step, **hp), ops[0][0].device)  # type: ignore[arg-type, index]
        run_compiled("adabelief", _fused, ops, c, foreach, step, use_max=use_max)

    def triton(ops: Operands, step: int) -> None:
        from common.kernels.triton_kernels.adabelief import launch

        launch(ops, scalar_tensor(_plan(step, **hp), ops[0][0].device), use_max=use_max)  # type: ignore

    operands = [list(params), list(grads), list(exp_avgs), list(exp_avg_vars),
                None if max_exp_avg_vars is None else list(max_exp_avg_vars)]
    run(impl, "adabelief", operands, steps, reference=reference, foreach=foreach, compiled=compiled, triton=triton)
