"""MARS's update rule (AGI-Arena/MARS 4831e28, ``mars.py``) in every implementation.

:func:`mars_update` is the readable per-tensor definition (all four ``mars_type`` rules and the AdamW branch);
:func:`mars_step` runs a list of tensors with the implementation ``impl`` names (see :mod:`common.kernels.dispatch`).
The elementwise rules (MARS-AdamW, MARS-Lion, MARS-SGD and the AdamW branch) have fused implementations;
MARS-Shampoo on 2-D tensors (Newton-Schulz) is not elementwise and always runs the reference.

The per-tensor clip of c needs ||c|| per tensor: foreach takes it with ``torch._foreach_norm``, Triton with a first
launch that accumulates every tensor's sum of squares with atomics; neither syncs with the host.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from common.kernels.dispatch import Operands, run, run_compiled, scalar_tensor
from common.optim.newton_schulz import newton_schulz5

__all__ = ["ELEMENTWISE_TYPES", "STATE", "mars_step", "mars_update"]

STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "last_grad")
ELEMENTWISE_TYPES = ("adamw", "lion", "sgd")
_TYPE_CODE = {"adamw": 0, "lion": 1, "sgd": 2}


def _adam_denominator(
    exp_avg_sq: torch.Tensor,
    max_exp_avg_sq: torch.Tensor | None,
    step: int,
    beta1: float,
    beta2: float,
    eps: float,
) -> torch.Tensor:
    """(sqrt(v / bc2) + eps) * bc1, the official form: m / denom is torch AdamW's m_hat / (sqrt(v_hat) + eps)."""
    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    if max_exp_avg_sq is not None:
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        exp_avg_sq = max_exp_avg_sq
    return exp_avg_sq.sqrt().mul(1 / math.sqrt(bias_correction2)).add(eps).mul(bias_correction1)


def mars_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    max_exp_avg_sq: torch.Tensor | None,
    last_grad: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    gamma: float,
    mars_type: str,
    clip_c: bool,
    use_mars: bool,
    lr_1d_factor: float,
    betas_1d: tuple[float, float],
    weight_decay_1d: float,
    ns_dtype: torch.dtype = torch.bfloat16,
) -> None:
    """One MARS step on one tensor, in place; the reference definition every variant must match.

    ``step`` is t *after* the increment (1 on the first call). ``use_mars`` selects the MARS branch (2-D tensors, or
    every tensor with ``optimize_1d``); otherwise the tensor takes the AdamW branch with the ``*_1d`` settings and the
    raw gradient. ``last_grad`` is the gradient the correction subtracts (zeros at t=1); it is only read, and neither
    is ``grad``: recording the next ``last_grad`` is the caller's job. ``max_exp_avg_sq`` is given iff amsgrad is on.
    The state is held in the compute dtype (``exp_avg.dtype``); a low-precision ``param`` is updated in that dtype and
    copied back. ``ns_dtype`` is the dtype of the Newton-Schulz iteration (mars_type "shampoo" on 2-D tensors).
    """
    compute_dtype = exp_avg.dtype
    if grad.dtype != compute_dtype:
        grad = grad.to(compute_dtype)
    theta = param if param.dtype == compute_dtype else param.to(compute_dtype)

    if use_mars:
        # Scaled gradient correction, written as the official code writes it.
        c = (grad - last_grad).mul(gamma * (beta1 / (1.0 - beta1))).add(grad)
        if clip_c:
            # Official: `if ||c|| > 1: c = c / ||c||` (a host sync per tensor). Dividing by max(||c||, 1) gives the
            # same bits (a division by exactly 1.0 is exact) without the sync.
            c = c.div(torch.linalg.vector_norm(c).clamp_min(1.0))
        exp_avg.mul_(beta1).add_(c, alpha=1.0 - beta1)
        is_2d = grad.ndim == 2
        if mars_type == "adamw" or (mars_type == "shampoo" and not is_2d):
            exp_avg_sq.mul_(beta2).addcmul_(c, c, value=1.0 - beta2)  # v from the clipped c, not from g
            direction = exp_avg.div(_adam_denominator(exp_avg_sq, max_exp_avg_sq, step, beta1, beta2, eps))
        elif mars_type == "lion":
            direction = exp_avg.sign()
        elif mars_type == "sgd":
            direction = exp_avg
        else:  # shampoo on a 2-D tensor: NS5 of the bias-uncorrected m / (1 - beta1), Muon's shape factor
            rows, cols = grad.shape
            factor = max(1.0, rows / cols) ** 0.5 if cols else 1.0
            direction = newton_schulz5(exp_avg.mul(1.0 / (1.0 - beta1)), eps=eps, dtype=ns_dtype).mul(factor)
        # Decoupled decay on the pre-update theta: theta <- theta - lr (wd theta + direction).
        theta.add_(torch.mul(theta, weight_decay).add_(direction), alpha=-lr)
    else:
        beta1_1d, beta2_1d = betas_1d
        exp_avg.mul_(beta1_1d).add_(grad, alpha=1.0 - beta1_1d)
        exp_avg_sq.mul_(beta2_1d).addcmul_(grad, grad, value=1.0 - beta2_1d)
        direction = exp_avg.div(_adam_denominator(exp_avg_sq, max_exp_avg_sq, step, beta1_1d, beta2_1d, eps))
        theta.add_(torch.mul(theta, weight_decay_1d).add_(direction), alpha=-lr * lr_1d_factor)
    if theta is not param:
        param.copy_(theta)


def _scalars(step: int, *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
             gamma: float) -> list[float]:
    """(b1, 1-b1, b2, 1-b2, correction scale, 1/sqrt(bc2), eps, bc1, wd, -lr) as the reference computes them."""
    return [beta1, 1.0 - beta1, beta2, 1.0 - beta2, gamma * (beta1 / (1.0 - beta1)),
            1 / math.sqrt(1.0 - beta2**step), eps, 1.0 - beta1**step, weight_decay, -lr]


def _foreach(ops: Operands, step: int, *, kind: str, correct: bool, clip: bool, record: bool, lr: float,
             beta1: float, beta2: float, eps: float, weight_decay: float, gamma: float) -> None:
    params, grads, ms, vs, vmax, lasts = ops
    compute = ms[0].dtype  # type: ignore[index]
    raw = grads
    grads = [g if g.dtype == compute else g.to(compute) for g in grads]  # type: ignore[union-attr]
    thetas = [p if p.dtype == compute else p.to(compute) for p in params]  # type: ignore[union-attr]
    if correct:
        c = torch._foreach_sub(grads, lasts)  # type: ignore[arg-type]
        torch._foreach_mul_(c, gamma * (beta1 / (1.0 - beta1)))
        torch._foreach_add_(c, grads)
        if clip:
            norms = torch._foreach_norm(c)
            torch._foreach_clamp_min_(norms, 1.0)
            torch._foreach_div_(c, norms)
    else:
        c = grads
    torch._foreach_mul_(ms, beta1)
    torch._foreach_add_(ms, c, alpha=1.0 - beta1)
    if kind == "adamw":
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, c, c, value=1.0 - beta2)
        v = vs
        if vmax is not None:
            torch._foreach_maximum_(vmax, vs)
            v = vmax
        denom = torch._foreach_sqrt(v)  # type: ignore[arg-type]
        torch._foreach_mul_(denom, 1 / math.sqrt(1.0 - beta2**step))
        torch._foreach_add_(denom, eps)
        torch._foreach_mul_(denom, 1.0 - beta1**step)
        direction = torch._foreach_div(ms, denom)  # type: ignore[arg-type]
    elif kind == "lion":
        direction = torch._foreach_sign(ms)  # type: ignore[arg-type]
    else:
        direction = ms
    update = torch._foreach_mul(thetas, weight_decay)
    torch._foreach_add_(update, direction)  # type: ignore[arg-type]
    torch._foreach_add_(thetas, update, alpha=-lr)
    if thetas[0] is not params[0]:  # type: ignore[index]
        torch._foreach_copy_(params, thetas)
    if record:
        torch._foreach_copy_(lasts, raw)  # type: ignore[arg-type]


def _fused(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, vmax: torch.Tensor | None,
           last: torch.Tensor, s: torch.Tensor, *, kind: int, correct: bool, clip: bool, record: bool) -> None:
    """One flat tensor, for torch.compile; ``s`` as :func:`_scalars` returns it."""
    theta = p.to(m.dtype)
    gc = g.to(m.dtype)
    c = (gc - last) * s[4] + gc if correct else gc
    if clip:
        c = c / torch.linalg.vector_norm(c).clamp_min(1.0)
    m.copy_(m * s[0] + s[1] * c)
    if kind == 0:
        v.copy_(v * s[2] + s[3] * c * c)
        vv = v
        if vmax is not None:
            vmax.copy_(torch.maximum(vmax, v))
            vv = vmax
        direction = m / ((vv.sqrt() * s[5] + s[6]) * s[7])
    elif kind == 1:
        direction = m.sign()
    else:
        direction = m
    p.copy_(theta + s[9] * (theta * s[8] + direction))
    if record:
        last.copy_(g)


def mars_step(
    impl: str,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: Sequence[torch.Tensor],
    exp_avg_sqs: Sequence[torch.Tensor],
    max_exp_avg_sqs: Sequence[torch.Tensor] | None,
    last_grads: Sequence[torch.Tensor],
    steps: Sequence[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    gamma: float,
    mars_type: str,
    clip_c: bool,
    use_mars: bool,
    record_last_grad: bool,
) -> None:
    """MARS steps on many tensors of one branch with implementation ``impl``.

    ``use_mars=True``: the MARS branch with ``mars_type`` in :data:`ELEMENTWISE_TYPES`; ``use_mars=False``: the AdamW
    branch, where the caller passes the ``*_1d`` settings as ``betas``/``weight_decay`` and ``lr * lr_1d_factor`` as
    ``lr``. ``record_last_grad`` copies each grad into ``last_grads`` after the step (approximate mode).
    """
    if use_mars and mars_type not in ELEMENTWISE_TYPES:
        raise ValueError(f"mars_step runs the elementwise rules {ELEMENTWISE_TYPES}, got mars_type={mars_type!r}")
    kind = mars_type if use_mars else "adamw"
    hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, gamma=gamma)
    flags = dict(correct=use_mars, clip=use_mars and clip_c, record=record_last_grad)
    ref_hp = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, gamma=gamma,
                  mars_type=mars_type, clip_c=clip_c, use_mars=use_mars, lr_1d_factor=1.0,
                  betas_1d=(beta1, beta2), weight_decay_1d=weight_decay)

    def reference(ops: Operands, step: int) -> None:
        p, g, m, v, vmax, last = ops
        for i in range(len(p)):  # type: ignore[arg-type]
            mars_update(p[i], g[i], m[i], v[i], None if vmax is None else vmax[i], last[i], step,  # type: ignore
                        **ref_hp)  # type: ignore[arg-type]
            if record_last_grad:
                last[i].copy_(g[i])  # type: ignore[index]

    def foreach(ops: Operands, step: int) -> None:
        _foreach(ops, step, kind=kind, **flags, **hp)

    def compiled(ops: Operands, step: int) -> None:
        s = scalar_tensor(_scalars(step, **hp), ops[0][0].device)  # type: ignore[index]
        run_compiled("mars", _fused, ops, s, foreach, step, kind=_TYPE_CODE[kind], **flags)

    def triton(ops: Operands, step: int) -> None:
        from common.kernels.triton_kernels.mars import launch

        launch(ops, scalar_tensor(_scalars(step, **hp), ops[0][0].device), kind=_TYPE_CODE[kind],  # type: ignore
               **flags)

    operands = [list(params), list(grads), list(exp_avgs), list(exp_avg_sqs),
                None if max_exp_avg_sqs is None else list(max_exp_avg_sqs), list(last_grads)]
    run(impl, "mars", operands, steps, reference=reference, foreach=foreach, compiled=compiled, triton=triton)
