"""Sophia's update rule (Liuhong99/Sophia a7e1572, ``SophiaG``; the Hutchinson variant SophiaH) in every
implementation, and the Hessian EMA.

:func:`sophia_update` and :func:`hessian_ema` are the readable per-tensor definitions; :func:`sophia_step` and
:func:`hessian_ema_step` run lists of tensors with the implementation ``impl`` names (see
:mod:`common.kernels.dispatch`). The Hessian EMA runs every k steps, so its fused forms stop at foreach.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from common.kernels.dispatch import Operands, run, run_compiled, scalar_tensor

__all__ = ["DENOMINATOR_EPS", "STATE", "hessian_ema", "hessian_ema_step", "sophia_step", "sophia_update"]

# The official code's fixed additive constant in rho*bs*h + 1e-15 (not a hyperparameter there or here).
DENOMINATOR_EPS = 1e-15
STATE = ("exp_avg", "hessian")


def sophia_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    hessian: torch.Tensor,
    *,
    lr: float,
    beta1: float,
    rho: float,
    weight_decay: float,
    bs: float | None,
    maximize: bool,
) -> None:
    """One Sophia step on one tensor, in place; the reference definition every variant must match.

    ``bs`` set: SophiaG, theta <- theta - lr sign(m) min(|m| / (rho*bs*h + 1e-15), 1), the official operation order
    (``rho * bs`` is a Python float, so ``(rho, bs)`` pairs with the same product give bit-identical steps).
    ``bs=None``: SophiaH, denominator max(rho*h, 1e-15), so h <= 0 gives a full sign step.
    The state is held in the compute dtype (``exp_avg.dtype``); a low-precision ``param`` is updated in that dtype
    and copied back. ``grad`` is never written to.
    """
    compute_dtype = exp_avg.dtype
    if grad.dtype != compute_dtype:
        grad = grad.to(compute_dtype)
    if maximize:
        grad = -grad
    theta = param if param.dtype == compute_dtype else param.to(compute_dtype)

    theta.mul_(1 - lr * weight_decay)  # decoupled decay, every step, before the update (official: even for wd=0)
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)  # no bias correction
    if bs is not None:
        denom = rho * bs * hessian + DENOMINATOR_EPS
    else:
        denom = (rho * hessian).clamp_(min=DENOMINATOR_EPS)
    ratio = (exp_avg.abs() / denom).clamp_(max=1)
    theta.addcmul_(exp_avg.sign(), ratio, value=-lr)
    if theta is not param:
        param.copy_(theta)


def hessian_ema(hessian: torch.Tensor, estimate: torch.Tensor, *, beta2: float, square: bool) -> None:
    """h <- b2 h + (1-b2) e*e (SophiaG: ``estimate`` is the sampled-label gradient) or + (1-b2) e (SophiaH)."""
    if estimate.dtype != hessian.dtype:
        estimate = estimate.to(hessian.dtype)  # square in fp32 for low-precision params
    hessian.mul_(beta2)
    if square:
        hessian.addcmul_(estimate, estimate, value=1 - beta2)
    else:
        hessian.add_(estimate, alpha=1 - beta2)


def _foreach(ops: Operands, *, lr: float, beta1: float, rho: float, weight_decay: float, bs: float | None,
             maximize: bool) -> None:
    params, grads, ms, hs = ops
    compute = ms[0].dtype  # type: ignore[index]
    grads = [g if g.dtype == compute else g.to(compute) for g in grads]  # type: ignore[union-attr]
    if maximize:
        grads = torch._foreach_neg(grads)
    thetas = [p if p.dtype == compute else p.to(compute) for p in params]  # type: ignore[union-attr]
    torch._foreach_mul_(thetas, 1 - lr * weight_decay)
    torch._foreach_mul_(ms, beta1)
    torch._foreach_add_(ms, grads, alpha=1 - beta1)
    if bs is not None:
        denom = torch._foreach_mul(hs, rho * bs)  # type: ignore[arg-type]
        torch._foreach_add_(denom, DENOMINATOR_EPS)
    else:
        denom = torch._foreach_mul(hs, rho)  # type: ignore[arg-type]
        torch._foreach_clamp_min_(denom, DENOMINATOR_EPS)
    ratio = torch._foreach_abs(ms)  # type: ignore[arg-type]
    torch._foreach_div_(ratio, denom)
    torch._foreach_clamp_max_(ratio, 1)
    torch._foreach_addcmul_(thetas, torch._foreach_sign(ms), ratio, value=-lr)  # type: ignore[arg-type]
    if thetas[0] is not params[0]:  # type: ignore[index]
        torch._foreach_copy_(params, thetas)


def _fused(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, h: torch.Tensor, s: torch.Tensor, *,
           clamp: bool) -> None:
    """One flat tensor, for torch.compile; s = (decay, b1, 1-b1, rho*bs or rho, -lr, +-1 for maximize, eps)."""
    theta = p.to(m.dtype) * s[0]
    m.copy_(m * s[1] + s[2] * (g.to(m.dtype) * s[5]))
    denom = (s[3] * h).clamp_min(s[6]) if clamp else s[3] * h + s[6]
    p.copy_(theta + s[4] * (m.sign() * (m.abs() / denom).clamp_max(1)))


def sophia_step(
    impl: str,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: Sequence[torch.Tensor],
    hessians: Sequence[torch.Tensor],
    *,
    lr: float,
    beta1: float,
    rho: float,
    weight_decay: float,
    bs: float | None,
    maximize: bool,
) -> None:
    """Sophia steps on many tensors (SophiaG with ``bs``, SophiaH without) with implementation ``impl``."""
    hp = dict(lr=lr, beta1=beta1, rho=rho, weight_decay=weight_decay, bs=bs, maximize=maximize)
    factor = rho * bs if bs is not None else rho

    def reference(ops: Operands, step: int) -> None:
        for p, g, m, h in zip(*ops, strict=True):  # type: ignore[call-overload]
            sophia_update(p, g, m, h, **hp)  # type: ignore[arg-type]

    def foreach(ops: Operands, step: int) -> None:
        _foreach(ops, **hp)  # type: ignore[arg-type]

    def scal(device: torch.device) -> torch.Tensor:
        values = [1 - lr * weight_decay, beta1, 1 - beta1, factor, -lr, -1.0 if maximize else 1.0, DENOMINATOR_EPS]
        return scalar_tensor(values, device)

    def compiled(ops: Operands, step: int) -> None:
        run_compiled("sophia", _fused, ops, scal(ops[0][0].device), foreach, step, clamp=bs is None)  # type: ignore

    def triton(ops: Operands, step: int) -> None:
        from common.kernels.triton_kernels.sophia import launch

        launch(ops, scal(ops[0][0].device), clamp=bs is None)  # type: ignore[index]

    run(impl, "sophia", [list(params), list(grads), list(exp_avgs), list(hessians)], [0] * len(params),
        reference=reference, foreach=foreach, compiled=compiled, triton=triton)


def hessian_ema_step(impl: str, hessians: Sequence[torch.Tensor], estimates: Sequence[torch.Tensor], *,
                     beta2: float, square: bool) -> None:
    """:func:`hessian_ema` on many tensors: a loop for ``reference``, foreach for every other impl."""
    if impl == "reference" or not hessians:
        for h, e in zip(hessians, estimates, strict=True):
            hessian_ema(h, e, beta2=beta2, square=square)
        return
    for idx in _by_dtype(hessians, estimates):
        hs = [hessians[i] for i in idx]
        es = [estimates[i] if estimates[i].dtype == hs[0].dtype else estimates[i].to(hs[0].dtype) for i in idx]
        torch._foreach_mul_(hs, beta2)
        if square:
            torch._foreach_addcmul_(hs, es, es, value=1 - beta2)
        else:
            torch._foreach_add_(hs, es, alpha=1 - beta2)


def _by_dtype(hs: Sequence[torch.Tensor], es: Sequence[torch.Tensor]) -> list[list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, (h, e) in enumerate(zip(hs, es, strict=True)):
        groups.setdefault((h.device, h.dtype, e.dtype), []).append(i)
    return list(groups.values())
