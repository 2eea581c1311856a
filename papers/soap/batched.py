"""SOAP's step batched over parameters of equal shape: one bmm / batched QR where the reference loops over tensors.

A transformer has many tensors of the same shape (every block's q/k/v/out and MLP matrices), and SOAP's cost is
in their small dense matrices: the rotations Q^T G Q, the factor updates G G^T and the refresh (power step + QR).
:func:`soap_update_batched` stacks a bucket of equal-shape tensors and does that work with ``torch.bmm`` and
batched ``torch.linalg.qr``, then writes every tensor's state back. It computes what
:func:`papers.soap.optim._soap_update` computes, in the same operation order per tensor; batched BLAS/LAPACK
round differently from the per-matrix calls, so the two agree to fp32 (fp64) rounding, not bit for bit (tested in
tests/unit/test_soap_batched.py). The first call's eigh and empty tensors stay on the reference path.
One deliberate difference: the reference carries M to the original space and back every step (as the official
code does); the batched step does it only on refresh steps, when Q changes (otherwise the round trip is the
identity up to the rounding of Q's orthogonality).
"""

from __future__ import annotations

import torch

from papers.soap.layout import Layout, from_layout, to_layout
from papers.soap.preconditioned import Slot

__all__ = ["soap_update_batched"]


def _stack(ts: list[torch.Tensor], layout: Layout) -> torch.Tensor:
    return torch.stack([to_layout(t, layout) for t in ts])


def _unstack_into(dst: list[torch.Tensor], x: torch.Tensor, layout: Layout) -> None:
    for i, t in enumerate(dst):
        t.copy_(from_layout(x[i], t.shape, layout))


def _project(x: torch.Tensor, bases: list[torch.Tensor | None], *, back: bool) -> torch.Tensor:
    """The reference tensordot chain on a stack (B, *shape): each step contracts the leading data dim with a
    basis (``x_moved @ Q``, or ``@ Q^T`` going back) or moves it to the end for an identity side."""
    b = x.shape[0]
    for q in bases:
        x = x.movedim(1, -1)
        if q is not None:
            rest = x.shape[1:-1]
            x = torch.bmm(x.reshape(b, -1, x.shape[-1]), q.transpose(1, 2) if back else q).reshape(b, *rest, -1)
    return x


def _grams(g: torch.Tensor, idx: int) -> torch.Tensor:
    """G_(i) G_(i)^T for every tensor of the stack: the mode-``idx`` Gram matrices, (B, k, k)."""
    x = g.movedim(idx + 1, 1).reshape(g.shape[0], g.shape[idx + 1], -1)
    return torch.bmm(x, x.transpose(1, 2))


def _refresh(factors: list[torch.Tensor | None], bases: list[torch.Tensor | None], v: torch.Tensor,
             work_dtype: torch.dtype) -> torch.Tensor:
    """Batched ``_refresh_bases``: sort each Q's columns by diag(Q^T GG Q), permute V alike, Q <- qr(GG Q).Q."""
    b = v.shape[0]
    for ind, (factor, basis) in enumerate(zip(factors, bases, strict=True)):
        if factor is None:
            continue
        assert basis is not None
        m = factor.to(work_dtype)
        o = basis.to(work_dtype)
        k = m.shape[-1]
        est_eig = torch.diagonal(o.transpose(1, 2) @ m @ o, dim1=1, dim2=2)
        sort_idx = torch.argsort(est_eig, dim=-1, descending=True)
        shape = [b] + [1] * (v.ndim - 1)
        shape[ind + 1] = k
        v = torch.gather(v, ind + 1, sort_idx.view(shape).expand_as(v))
        q, _ = torch.linalg.qr(m @ torch.gather(o, 2, sort_idx[:, None, :].expand(b, k, k)))
        bases[ind] = q.to(factor.dtype)
    return v


def soap_update_batched(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    factors: list[list[Slot]],
    bases: list[list[Slot]],
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    shampoo_beta: float,
    eps: float,
    weight_decay: float,
    refresh: bool,
    layout: Layout,
    normalize_grads: bool,
    correct_bias: bool,
    work_dtype: torch.dtype,
) -> None:
    """One SOAP step on a bucket of non-empty tensors of one shape, dtype and step; arguments as in
    :func:`papers.soap.optim._soap_update`, one list entry per tensor (grads already in the state dtype)."""
    compute_dtype = exp_avgs[0].dtype
    sides = len(factors[0])
    ff = [torch.stack([f[i] for f in factors]) if isinstance(factors[0][i], torch.Tensor) else None  # type: ignore
          for i in range(sides)]
    qq = [torch.stack([q[i] for q in bases]) if isinstance(bases[0][i], torch.Tensor) else None  # type: ignore
          for i in range(sides)]
    rotated = any(q is not None for q in qq)

    g = _stack(grads, layout)
    theta = _stack([p if p.dtype == compute_dtype else p.to(compute_dtype) for p in params], layout)
    m = _stack(exp_avgs, layout)
    v = _stack(exp_avg_sqs, layout)

    # Adam in the eigenbasis.
    g_projected = _project(g, qq, back=False)
    m.mul_(beta1).add_(g_projected, alpha=1.0 - beta1)
    v.mul_(beta2).add_(g_projected.square(), alpha=1.0 - beta2)
    denom = v.sqrt().add_(eps)
    step_size = lr
    if correct_bias:
        bias_correction1 = 1.0 - beta1**step
        bias_correction2 = 1.0 - beta2**step
        step_size = step_size * (bias_correction2**0.5) / bias_correction1
    norm_grad = _project(m / denom, qq, back=True)
    if normalize_grads:
        dims = tuple(range(1, norm_grad.ndim))
        norm_grad = norm_grad / (1e-30 + torch.mean(norm_grad**2, dim=dims, keepdim=True) ** 0.5)
    theta.add_(norm_grad, alpha=-step_size)
    if weight_decay > 0.0:
        theta.add_(theta, alpha=-lr * weight_decay)
    _unstack_into(params, theta, layout)

    # Preconditioner update, as in the reference: M back to the original space with the old Q, factors from G,
    # optional refresh (which permutes V), M into the new basis. Without a refresh Q is unchanged and the round trip
    # is the identity up to rounding (Q orthogonal), so it is skipped: 2 of the step's 5 rotations.
    m_original = _project(m, qq, back=True) if rotated and refresh else None
    for i, factor in enumerate(ff):
        if factor is not None:
            factor.lerp_(_grams(g, i), 1.0 - shampoo_beta)
    if refresh:
        v = _refresh(ff, qq, v, work_dtype)
    if m_original is not None:
        m = _project(m_original, qq, back=False)
    _unstack_into(exp_avgs, m, layout)
    _unstack_into(exp_avg_sqs, v, layout)
    for i in range(sides):
        if ff[i] is not None:
            for j in range(len(params)):
                factors[j][i].copy_(ff[i][j])  # type: ignore[union-attr, index]
                bases[j][i] = qq[i][j].clone() if refresh else bases[j][i]  # type: ignore[index]
