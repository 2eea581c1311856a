"""AdaBelief in one Triton launch per bucket; mirrors :func:`common.kernels.adabelief.adabelief_update`."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from common.kernels.dispatch import Operands
from common.kernels.triton_kernels.launch import BLOCK, block_of, operand, tables, tl_dtype, to_param


@triton.jit
def _kernel(ptrs, n, numels, tensor_of, starts, c,
            P: tl.constexpr, G: tl.constexpr, S: tl.constexpr, HAS_MAX: tl.constexpr, USE_MAX: tl.constexpr,
            BLOCK: tl.constexpr):
    t, offs, mask = block_of(tensor_of, starts, numels, BLOCK)
    p_ptr = operand(ptrs, n, 0, t, P)
    m_ptr = operand(ptrs, n, 2, t, S)
    s_ptr = operand(ptrs, n, 3, t, S)
    theta = tl.load(p_ptr + offs, mask=mask).to(S)
    g = tl.load(operand(ptrs, n, 1, t, G) + offs, mask=mask).to(S) + tl.load(c + 1).to(S) * theta
    theta = theta * tl.load(c + 0).to(S)
    m = tl.load(m_ptr + offs, mask=mask) * tl.load(c + 2).to(S) + tl.load(c + 3).to(S) * g
    r = g - m
    eps = tl.load(c + 6).to(S)
    s = tl.load(s_ptr + offs, mask=mask) * tl.load(c + 4).to(S) + tl.load(c + 5).to(S) * r * r + eps
    tl.store(m_ptr + offs, m, mask=mask)
    tl.store(s_ptr + offs, s, mask=mask)
    d = s
    if HAS_MAX:
        x_ptr = operand(ptrs, n, 4, t, S)
        smax = tl.maximum(tl.load(x_ptr + offs, mask=mask), s)
        tl.store(x_ptr + offs, smax, mask=mask)
        if USE_MAX:
            d = smax
    denom = tl.sqrt(d) / tl.load(c + 7).to(S) + eps
    theta = theta + tl.load(c + 8).to(S) * (m / denom) + tl.load(c + 9).to(S) * m
    tl.store(p_ptr + offs, to_param(theta, P), mask=mask)


def launch(ops: Operands, c: torch.Tensor, *, use_max: bool) -> None:
    params, grads, ms, ss, smax = ops
    has_max = smax is not None
    tab = tables([params, grads, ms, ss] + ([smax] if has_max else []))  # type: ignore[list-item, operator]
    _kernel[(tab.blocks,)](tab.ptrs, tab.n, tab.numels, tab.tensor_of, tab.starts, c,
                           P=tl_dtype(params[0].dtype), G=tl_dtype(grads[0].dtype),  # type: ignore[index]
                           S=tl_dtype(ms[0].dtype), HAS_MAX=has_max, USE_MAX=use_max,  # type: ignore[index]
                           BLOCK=BLOCK)
