"""SPAM in one Triton launch per bucket (the spike clip is elementwise); mirrors
:func:`common.kernels.spam.spam_update`."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from common.kernels.dispatch import Operands
from common.kernels.triton_kernels.launch import BLOCK, block_of, operand, tables, tl_dtype, to_param


@triton.jit
def _kernel(ptrs, n, numels, tensor_of, starts, c,
            P: tl.constexpr, G: tl.constexpr, S: tl.constexpr, CLIP: tl.constexpr, RESET: tl.constexpr,
            MUTATE: tl.constexpr, BLOCK: tl.constexpr):
    t, offs, mask = block_of(tensor_of, starts, numels, BLOCK)
    p_ptr = operand(ptrs, n, 0, t, P)
    g_ptr = operand(ptrs, n, 1, t, G)
    m_ptr = operand(ptrs, n, 2, t, S)
    v_ptr = operand(ptrs, n, 3, t, S)
    g = tl.load(g_ptr + offs, mask=mask).to(S)
    theta = tl.load(p_ptr + offs, mask=mask).to(S)
    if RESET:
        m = tl.zeros([BLOCK], dtype=S)
        v = tl.zeros([BLOCK], dtype=S)
    else:
        m = tl.load(m_ptr + offs, mask=mask)
        v = tl.load(v_ptr + offs, mask=mask)
    if CLIP:
        bound = tl.load(c + 0).to(S) * v
        sign = tl.where(g > 0, 1.0, tl.where(g < 0, -1.0, 0.0)).to(S)
        g = tl.where(g * g > bound, sign * tl.sqrt(bound), g)
        if MUTATE:
            tl.store(g_ptr + offs, to_param(g, G), mask=mask)
    m = m * tl.load(c + 1).to(S) + tl.load(c + 2).to(S) * g
    v = v * tl.load(c + 3).to(S) + tl.load(c + 4).to(S) * g * g
    tl.store(m_ptr + offs, m, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)
    theta = theta + tl.load(c + 6).to(S) * (m / (tl.sqrt(v) + tl.load(c + 5).to(S)))
    theta = theta + tl.load(c + 7).to(S) * theta
    tl.store(p_ptr + offs, to_param(theta, P), mask=mask)


def launch(ops: Operands, c: torch.Tensor, *, clip: bool, reset: bool, mutate_grad: bool) -> None:
    params, grads, ms, vs = ops
    tab = tables([params, grads, ms, vs])  # type: ignore[list-item]
    _kernel[(tab.blocks,)](tab.ptrs, tab.n, tab.numels, tab.tensor_of, tab.starts, c,
                           P=tl_dtype(params[0].dtype), G=tl_dtype(grads[0].dtype),  # type: ignore[index]
                           S=tl_dtype(ms[0].dtype), CLIP=clip, RESET=reset, MUTATE=mutate_grad,  # type: ignore
                           BLOCK=BLOCK)
