"""Sophia in one Triton launch per bucket; mirrors :func:`common.kernels.sophia.sophia_update`."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from common.kernels.dispatch import Operands
from common.kernels.triton_kernels.launch import BLOCK, block_of, operand, tables, tl_dtype, to_param


@triton.jit
def _kernel(ptrs, n, numels, tensor_of, starts, s,
            P: tl.constexpr, G: tl.constexpr, S: tl.constexpr, CLAMP: tl.constexpr, BLOCK: tl.constexpr):
    t, offs, mask = block_of(tensor_of, starts, numels, BLOCK)
    p_ptr = operand(ptrs, n, 0, t, P)
    m_ptr = operand(ptrs, n, 2, t, S)
    g = tl.load(operand(ptrs, n, 1, t, G) + offs, mask=mask).to(S) * tl.load(s + 5).to(S)
    h = tl.load(operand(ptrs, n, 3, t, S) + offs, mask=mask)
    theta = tl.load(p_ptr + offs, mask=mask).to(S) * tl.load(s + 0).to(S)
    m = tl.load(m_ptr + offs, mask=mask) * tl.load(s + 1).to(S) + tl.load(s + 2).to(S) * g
    tl.store(m_ptr + offs, m, mask=mask)
    eps = tl.load(s + 6).to(S)
    if CLAMP:
        denom = tl.maximum(tl.load(s + 3).to(S) * h, eps)
    else:
        denom = tl.load(s + 3).to(S) * h + eps
    ratio = tl.minimum(tl.abs(m) / denom, 1.0)
    sign = tl.where(m > 0, 1.0, tl.where(m < 0, -1.0, 0.0)).to(S)
    theta = theta + tl.load(s + 4).to(S) * (sign * ratio)
    tl.store(p_ptr + offs, to_param(theta, P), mask=mask)


def launch(ops: Operands, s: torch.Tensor, *, clamp: bool) -> None:
    params, grads, ms, hs = ops
    tab = tables([params, grads, ms, hs])  # type: ignore[list-item]
    _kernel[(tab.blocks,)](tab.ptrs, tab.n, tab.numels, tab.tensor_of, tab.starts, s,
                           P=tl_dtype(params[0].dtype), G=tl_dtype(grads[0].dtype),  # type: ignore[index]
                           S=tl_dtype(ms[0].dtype), CLAMP=clamp, BLOCK=BLOCK)  # type: ignore[index]
