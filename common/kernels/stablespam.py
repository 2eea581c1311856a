"""Stable-SPAM's update rule (TianjinYellow/StableSPAM 6a66da1, ``stablespam.py``) in every implementation.

:func:`stablespam_update` is the readable per-tensor definition; :func:`stablespam_step` runs a list of tensors with
the implementation ``impl`` names (see :mod:`common.kernels.dispatch`).

Two per-tensor reductions come before the elementwise Adam step: AdaClip's max |g| and AdaGN's norm of the clipped
gradient, each feeding a scalar EMA held per tensor (0-d state tensors). foreach takes them with
``torch._foreach_max``/``_foreach_norm`` and keeps the scalar EMAs of a bucket as one vector; compiled reduces
inside each tensor's graph; Triton takes them with atomics into per-tensor buffers, then one small launch updates
the scalar EMAs, so no implementation syncs with the host.

``native`` (float32 and float64 on CPU) is ``stablespam.c`` beside this file, built at first use
(:func:`common.kernels.dispatch.native_library`): per tensor, max |g|, the clipped norm and the Adam step are three
vectorised loops with the scalar EMAs updated in between, one C call per bucket. Why: Inductor's CPU code for this
rule runs at about 3x fused AdamW per byte moved (``reproduce bench --shapes tiny``), the C loops at about 1x. Other
dtypes, or no C compiler: compiled runs (foreach if Inductor cannot run either).

MoRet's reset is split between this rule and the optimizer: ``zero_moments`` (fixed semantics) zeroes m, v and
amsgrad's max before the update; the official semantics' fresh zeros (stored after this step's update) are the
optimizer's job, as is every counter.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from common.kernels.dispatch import Operands, native_library, run, run_compiled, scalar_tensor

__all__ = ["Steps", "stablespam_step", "stablespam_update"]

Steps = tuple[int, int]  # (t of Adam's bias correction, t of AdaClip's and AdaGN's bias corrections)


def stablespam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    max_exp_avg_sq: torch.Tensor | None,
    m_max_t: torch.Tensor,
    m_norm_t: torch.Tensor,
    v_norm_t: torch.Tensor,
    steps: Steps,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    gamma1: float,
    gamma2: float,
    gamma3: float,
    scale: float,
    warmup: float,
    adaclip: bool,
    adagn: bool,
    zero_moments: bool,
    mutate_grad: bool,
    stats: dict[str, list[torch.Tensor]] | None = None,
) -> None:
    """One Stable-SPAM step on one tensor, in place (AdaClip, AdaGN, then Adam with MoRet's counters); the
    definition every variant must match.

    ``steps`` = (t, t_norm): t for Adam's bias correction (1 on a reset step), t_norm for AdaClip's and AdaGN's
    (official semantics: the same counter before its reset; fixed: a counter that never resets). ``scale`` is this
    step's cosine factor for gamma1 and beta1, ``warmup`` the post-reset update factor. The scalar EMAs
    (``m_max_t``, ``m_norm_t``, ``v_norm_t``, 0-d) are updated in place. The official code's two Python ``if``s
    (``mask.sum() > 0``, ``grad_norm > 0``) are ``torch.where`` (same values, no host sync). The state is held in
    ``exp_avg.dtype``; a low-precision ``param`` is updated in that dtype and copied back.
    """
    t, t_norm = steps
    dtype = exp_avg.dtype
    g = grad if grad.dtype == dtype else grad.to(dtype)
    theta = param if param.dtype == dtype else param.to(dtype)

    theta.mul_(1 - lr * weight_decay)  # decoupled decay first, unconditionally (x 1.0 is exact)

    # AdaClip: entries above the bias-corrected EMA of the tensor's max |g| are rescaled to it (sign and ratios kept)
    if adaclip:
        max_gradient = torch.max(g.abs())
        new_max = gamma3 * m_max_t + (1 - gamma3) * max_gradient
        m_max_hat = new_max / (1 - gamma3 ** t_norm)
        mask = g.abs() > m_max_hat
        g = torch.where(mask, g / max_gradient * m_max_hat, g)
        m_max_t.copy_(new_max)
        if mutate_grad:  # the official code writes the clipped values into p.grad
            grad.copy_(g)
        if stats is not None:
            stats["clipped"].append(mask.sum())
            stats["threshold"].append(m_max_hat)
    if stats is not None:
        stats["sq_clipped"].append(g.square().sum())

    # AdaGN: the tensor's gradient norm becomes m_hat / (sqrt(v_hat) + eps) of its norm EMAs
    if adagn:
        grad_norm = torch.norm(g)
        a = gamma1 * scale
        new_m = a * m_norm_t + (1 - a) * grad_norm
        new_v = gamma2 * v_norm_t + (1 - gamma2) * grad_norm**2
        m_norm_hat = new_m / (1 - a ** t_norm)
        v_norm_hat = new_v / (1 - gamma2 ** t_norm)
        c_norm_t = m_norm_hat / (torch.sqrt(v_norm_hat) + eps)
        g = torch.where(grad_norm > 0, g / grad_norm * c_norm_t, g)  # a zero gradient passes unchanged
        m_norm_t.copy_(new_m)
        v_norm_t.copy_(new_v)
    if stats is not None:
        stats["sq_out"].append(g.square().sum())

    if zero_moments:
        exp_avg.zero_()
        exp_avg_sq.zero_()
        if max_exp_avg_sq is not None:
            max_exp_avg_sq.zero_()

    beta1 = beta1 * scale  # the hidden beta1 decay (0.9 -> 0.45 over total_T with eta_min 0.5)
    bias_correction1 = 1 - beta1**t
    bias_correction2 = 1 - beta2**t
    exp_avg.mul_(beta1).add_(g, alpha=1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    s = exp_avg_sq
    if max_exp_avg_sq is not None:
        torch.max(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        s = max_exp_avg_sq
    denom = (s.sqrt() / math.sqrt(bias_correction2)).add_(eps)
    step_size = lr / bias_correction1
    if warmup != 1.0:
        step_size = step_size * warmup
    theta.add_(exp_avg / denom, alpha=-step_size)
    if theta is not param:
        param.copy_(theta)


# Indices into the per-bucket scalar vector of :func:`_plan`.
DECAY, G3, G3C, G3BC, A, AC, ABC, G2, G2C, G2BC, EPS, B1, B1C, B2, B2C, SQRT_BC2, STEP = range(17)


def _plan(steps: Steps, *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, gamma1: float,
          gamma2: float, gamma3: float, scale: float, warmup: float) -> list[float]:
    """The step's scalars, computed as the reference computes them (index names above)."""
    t, t_norm = steps
    a = gamma1 * scale
    b1 = beta1 * scale
    step_size = lr / (1 - b1**t)
    if warmup != 1.0:
        step_size = step_size * warmup
    return [1 - lr * weight_decay, gamma3, 1 - gamma3, 1 - gamma3**t_norm, a, 1 - a, 1 - a**t_norm,
            gamma2, 1 - gamma2, 1 - gamma2**t_norm, eps, b1, 1 - b1, beta2, 1 - beta2,
            math.sqrt(1 - beta2**t), -step_size]


def _foreach(ops: Operands, steps: Steps, *, adaclip: bool, adagn: bool, zero_moments: bool, mutate_grad: bool,
             stats: dict[str, list[torch.Tensor]] | None, hp: dict[str, Any]) -> None:
    """Multi-tensor form, bit-identical to the reference on CPU: the scalar EMAs of the bucket are one vector
    (elementwise float ops give the same bits on a vector as on 0-d tensors)."""
    params, grads, ms, vs, vmax, m_maxs, m_norms, v_norms = ops
    c = _plan(steps, **hp)
    compute = ms[0].dtype  # type: ignore[index]
    gs = [g if g.dtype == compute else g.to(compute) for g in grads]  # type: ignore[union-attr]
    thetas = [p if p.dtype == compute else p.to(compute) for p in params]  # type: ignore[union-attr]
    torch._foreach_mul_(thetas, c[DECAY])
    if adaclip:
        absg = torch._foreach_abs(gs)
        maxes = torch._foreach_max(absg)
        max_vec = torch.stack(maxes)
        new_max = c[G3] * torch.stack(m_maxs) + c[G3C] * max_vec  # type: ignore[arg-type]
        hats = (new_max / c[G3BC]).unbind()
        masks = [x > h for x, h in zip(absg, hats, strict=True)]
        gs = [torch.where(k, g / mx * h, g) for k, g, mx, h in zip(masks, gs, maxes, hats, strict=True)]
        torch._foreach_copy_(m_maxs, new_max.unbind())  # type: ignore[arg-type]
        if mutate_grad:
            torch._foreach_copy_(grads, gs)  # type: ignore[arg-type]
        if stats is not None:
            stats["clipped"].extend(k.sum() for k in masks)
            stats["threshold"].extend(hats)
    if stats is not None:
        stats["sq_clipped"].extend(g.square().sum() for g in gs)
    if adagn:
        norms = torch.stack(torch._foreach_norm(gs))
        new_m = c[A] * torch.stack(m_norms) + c[AC] * norms  # type: ignore[arg-type]
        new_v = c[G2] * torch.stack(v_norms) + c[G2C] * norms**2  # type: ignore[arg-type]
        factors = ((new_m / c[ABC]) / (torch.sqrt(new_v / c[G2BC]) + c[EPS])).unbind()
        gs = [torch.where(n > 0, g / n * f, g) for g, n, f in zip(gs, norms.unbind(), factors, strict=True)]
        torch._foreach_copy_(m_norms, new_m.unbind())  # type: ignore[arg-type]
        torch._foreach_copy_(v_norms, new_v.unbind())  # type: ignore[arg-type]
    if stats is not None:
        stats["sq_out"].extend(g.square().sum() for g in gs)
    if zero_moments:
        for buffers in (ms, vs, vmax):
            if buffers is not None:
                torch._foreach_zero_(buffers)
    torch._foreach_mul_(ms, c[B1])  # type: ignore[arg-type]
    torch._foreach_add_(ms, gs, alpha=c[B1C])  # type: ignore[arg-type]
    torch._foreach_mul_(vs, c[B2])  # type: ignore[arg-type]
    torch._foreach_addcmul_(vs, gs, gs, value=c[B2C])  # type: ignore[arg-type]
    s = vs
    if vmax is not None:
        torch._foreach_maximum_(vmax, vs)  # type: ignore[arg-type]
        s = vmax
    denom = torch._foreach_sqrt(s)  # type: ignore[arg-type]
    torch._foreach_div_(denom, c[SQRT_BC2])
    torch._foreach_add_(denom, c[EPS])
    torch._foreach_add_(thetas, torch._foreach_div(ms, denom), alpha=c[STEP])  # type: ignore[arg-type]
    if thetas[0] is not params[0]:  # type: ignore[index]
        torch._foreach_copy_(params, thetas)  # type: ignore[arg-type]


def _fused(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, vmax: torch.Tensor | None,
           m_max: torch.Tensor, m_norm: torch.Tensor, v_norm: torch.Tensor, c: torch.Tensor, *, adaclip: bool,
           adagn: bool, zero_moments: bool, mutate_grad: bool) -> None:
    """One flat tensor (the scalar EMAs as 1-element tensors), for torch.compile; ``c`` as :func:`_plan`."""
    theta = p.to(m.dtype) * c[DECAY]
    gc = g.to(m.dtype)
    if adaclip:
        mx = gc.abs().max()
        new_max = c[G3] * m_max + c[G3C] * mx
        hat = new_max / c[G3BC]
        gc = torch.where(gc.abs() > hat, gc / mx * hat, gc)
        m_max.copy_(new_max)
        if mutate_grad:
            g.copy_(gc)
    if adagn:
        n = torch.linalg.vector_norm(gc)
        new_m = c[A] * m_norm + c[AC] * n
        new_v = c[G2] * v_norm + c[G2C] * n * n
        factor = (new_m / c[ABC]) / (torch.sqrt(new_v / c[G2BC]) + c[EPS])
        gc = torch.where(n > 0, gc / n * factor, gc)
        m_norm.copy_(new_m)
        v_norm.copy_(new_v)
    m0 = torch.zeros_like(m) if zero_moments else m
    v0 = torch.zeros_like(v) if zero_moments else v
    m_new = m0 * c[B1] + c[B1C] * gc
    v_new = v0 * c[B2] + c[B2C] * gc * gc
    m.copy_(m_new)
    v.copy_(v_new)
    s = v_new
    if vmax is not None:
        s = torch.maximum(torch.zeros_like(vmax) if zero_moments else vmax, v_new)
        vmax.copy_(s)
    p.copy_(theta + c[STEP] * (m_new / (s.sqrt() / c[SQRT_BC2] + c[EPS])))


NATIVE_SOURCE = str(Path(__file__).with_suffix(".c"))
_ADACLIP, _ADAGN, _ZERO_MOMENTS, _MUTATE_GRAD, _AMSGRAD = 1, 2, 4, 8, 16  # stablespam.c's flags
_NATIVE_DTYPES = {torch.float32: "stablespam_f32", torch.float64: "stablespam_f64"}


def _native(ops: Operands, steps: Steps, *, adaclip: bool, adagn: bool, zero_moments: bool, mutate_grad: bool,
            hp: dict[str, Any]) -> bool:
    """One C call for a bucket of contiguous, non-empty float32 (or float64) tensors; False (nothing done) when the
    library cannot be built or the operands are of another or mixed dtypes."""
    params = ops[0]
    dtype = params[0].dtype  # type: ignore[index]
    if dtype not in _NATIVE_DTYPES or any(op[0].dtype != dtype for op in ops if op is not None):  # type: ignore[index]
        return False
    kernel = _native_kernel(dtype)
    if kernel is None:
        return False
    p, g, m, v, vmax, mm, mn, vn = ops
    table: list[int] = []
    for i, t in enumerate(p):  # type: ignore[arg-type]
        n = t.numel()
        full = (t, g[i], m[i], v[i]) if vmax is None else (t, g[i], m[i], v[i], vmax[i])  # type: ignore[index]
        scalar = (mm[i], mn[i], vn[i])  # type: ignore[index]
        if any(x.numel() != n for x in full) or any(x.numel() != 1 for x in scalar):  # C would run out of bounds
            raise ValueError(f"stablespam: tensor {i}'s grad or state does not have its param's {n} elements")
        table += (n, t.data_ptr(), g[i].data_ptr(), m[i].data_ptr(), v[i].data_ptr(),  # type: ignore[index]
                  0 if vmax is None else vmax[i].data_ptr(), *(x.data_ptr() for x in scalar))  # type: ignore[index]
    flags = ((_ADACLIP if adaclip else 0) | (_ADAGN if adagn else 0) | (_ZERO_MOMENTS if zero_moments else 0)
             | (_MUTATE_GRAD if mutate_grad else 0) | (_AMSGRAD if vmax is not None else 0))
    kernel(len(p), (ctypes.c_int64 * len(table))(*table), (ctypes.c_double * 17)(*_plan(steps, **hp)),  # type: ignore
           flags)
    return True


def _native_kernel(dtype: torch.dtype) -> Any:
    """stablespam.c's entry point for ``dtype`` (typed for ctypes), None if the library cannot be built."""
    lib = native_library(NATIVE_SOURCE)
    if lib is None:
        return None
    fn = getattr(lib, _NATIVE_DTYPES[dtype])  # the CDLL keeps this object: typed once
    if fn.argtypes is None:
        fn.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_double), ctypes.c_int]
        fn.restype = None
    return fn


def stablespam_step(
    impl: str,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: Sequence[torch.Tensor],
    exp_avg_sqs: Sequence[torch.Tensor],
    max_exp_avg_sqs: Sequence[torch.Tensor] | None,
    m_max_ts: Sequence[torch.Tensor],
    m_norm_ts: Sequence[torch.Tensor],
    v_norm_ts: Sequence[torch.Tensor],
    steps: Sequence[Steps],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    gamma1: float,
    gamma2: float,
    gamma3: float,
    scale: float,
    warmup: float,
    adaclip: bool,
    adagn: bool,
    zero_moments: bool,
    mutate_grad: bool,
    stats: dict[str, list[torch.Tensor]] | None = None,
) -> None:
    """Stable-SPAM steps on many tensors with implementation ``impl`` (``max_exp_avg_sqs`` iff amsgrad).

    Empty tensors are skipped: they have nothing to update and AdaClip's max over them is undefined. ``stats``
    (the optimizer's ``track_stats``) is collected by the reference and foreach only, so a step that needs it runs
    foreach for compiled, native or triton.
    """
    hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, gamma1=gamma1, gamma2=gamma2,
              gamma3=gamma3, scale=scale, warmup=warmup)
    flags = dict(adaclip=adaclip, adagn=adagn, zero_moments=zero_moments, mutate_grad=mutate_grad)

    def reference(ops: Operands, step: Steps) -> None:  # type: ignore[type-arg]
        p, g, m, v, vmax, mm, mn, vn = ops
        for i in range(len(p)):  # type: ignore[arg-type]
            stablespam_update(p[i], g[i], m[i], v[i], None if vmax is None else vmax[i], mm[i], mn[i],  # type: ignore
                              vn[i], step, stats=stats, **flags, **hp)  # type: ignore[index, arg-type]

    def foreach(ops: Operands, step: Steps) -> None:  # type: ignore[type-arg]
        _foreach(ops, step, stats=stats, hp=hp, **flags)

    def compiled(ops: Operands, step: Steps) -> None:  # type: ignore[type-arg]
        c = scalar_tensor(_plan(step, **hp), ops[0][0].device)  # type: ignore[index]
        run_compiled("stablespam", _fused, ops, c, foreach, step, **flags)  # type: ignore[arg-type]

    def native(ops: Operands, step: Steps) -> None:  # type: ignore[type-arg]
        if not _native(ops, step, hp=hp, **flags):
            compiled(ops, step)

    def triton(ops: Operands, step: Steps) -> None:  # type: ignore[type-arg]
        from common.kernels.triton_kernels.stablespam import launch

        launch(ops, scalar_tensor(_plan(step, **hp), ops[0][0].device), **flags)  # type: ignore[index]

    keep = [i for i, p in enumerate(params) if p.numel() > 0]
    lists = [params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, m_max_ts, m_norm_ts, v_norm_ts]
    operands = [None if op is None else [op[i] for i in keep] for op in lists]
    run(impl, "stablespam", operands, [steps[i] for i in keep], reference=reference, foreach=foreach,  # type: ignore
        compiled=compiled, triton=triton, native=native,
        fused=stats is None)  # type: ignore[arg-type]
