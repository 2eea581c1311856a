"""RAdam in one Triton launch per bucket; mirrors :func:`common.kernels.radam.radam_update`."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from common.kernels.dispatch import Operands
from common.kernels.triton_kernels.launch import BLOCK, block_of, operand, tables, tl_dtype, to_param


@triton.jit
def _kernel(ptrs, n, numels, tensor_of, starts, scal,
            P: tl.constexpr, G: tl.constexpr, S: tl.constexpr, MODE: tl.constexpr, BLOCK: tl.constexpr):
    t, offs, mask = block_of(tensor_of, starts, numels, BLOCK)
    p_ptr = operand(ptrs, n, 0, t, P)
    m_ptr = operand(ptrs, n, 2, t, S)
    v_ptr = operand(ptrs, n, 3, t, S)
    g = tl.load(operand(ptrs, n, 1, t, G) + offs, mask=mask).to(S)
    m = tl.load(m_ptr + offs, mask=mask)
    v = tl.load(v_ptr + offs, mask=mask)
    b1 = tl.load(scal + 0).to(S)
    one_minus_b1 = tl.load(scal + 1).to(S)
    b2 = tl.load(scal + 2).to(S)
    one_minus_b2 = tl.load(scal + 3).to(S)
    v = v * b2 + one_minus_b2 * g * g
    m = m * b1 + one_minus_b1 * g
    tl.store(v_ptr + offs, v, mask=mask)
    tl.store(m_ptr + offs, m, mask=mask)
    if MODE != 0:
        decay = tl.load(scal + 4).to(S)
        theta = tl.load(p_ptr + offs, mask=mask).to(S) * decay
        if MODE == 2:
            eps = tl.load(scal + 5).to(S)
            theta = theta + tl.load(scal + 6).to(S) * (m / (tl.sqrt(v) + eps))
        else:
            theta = theta + tl.load(scal + 7).to(S) * m
        tl.store(p_ptr + offs, to_param(theta, P), mask=mask)


def launch(ops: Operands, scal: torch.Tensor, mode: int) -> None:
    params, grads, ms, vs = ops
    tab = tables([params, grads, ms, vs])  # type: ignore[list-item]
    _kernel[(tab.blocks,)](tab.ptrs, tab.n, tab.numels, tab.tensor_of, tab.starts, scal,
                           P=tl_dtype(params[0].dtype), G=tl_dtype(grads[0].dtype),  # type: ignore[index]
                           S=tl_dtype(ms[0].dtype), MODE=mode, BLOCK=BLOCK)  # type: ignore[index]
