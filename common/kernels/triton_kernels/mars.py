"""MARS in Triton: an optional norm launch (per-tensor sum of squares of c, by atomics) and one update launch, each
covering the whole bucket; mirrors :func:`common.kernels.mars.mars_update`."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from common.kernels.dispatch import Operands
from common.kernels.triton_kernels.launch import BLOCK, block_of, operand, tables, tl_dtype, to_param

# Operand order in the pointer table.
_P, _G, _M, _V, _LAST, _VMAX = 0, 1, 2, 3, 4, 5


@triton.jit
def _correction(ptrs, n, t, offs, mask, s, G: tl.constexpr, S: tl.constexpr, CORRECT: tl.constexpr):
    g = tl.load(operand(ptrs, n, 1, t, G) + offs, mask=mask).to(S)
    if CORRECT:
        last = tl.load(operand(ptrs, n, 4, t, S) + offs, mask=mask)
        c = (g - last) * tl.load(s + 4).to(S) + g
    else:
        c = g
    return g, c


@triton.jit
def _norm_kernel(ptrs, n, numels, tensor_of, starts, s, sumsq,
                 G: tl.constexpr, S: tl.constexpr, BLOCK: tl.constexpr):
    t, offs, mask = block_of(tensor_of, starts, numels, BLOCK)
    _, c = _correction(ptrs, n, t, offs, mask, s, G, S, True)
    c = tl.where(mask, c, 0.0)
    tl.atomic_add(sumsq + t, tl.sum(c * c, axis=0))


@triton.jit
def _kernel(ptrs, n, numels, tensor_of, starts, s, sumsq,
            P: tl.constexpr, G: tl.constexpr, S: tl.constexpr, KIND: tl.constexpr, CORRECT: tl.constexpr,
            CLIP: tl.constexpr, RECORD: tl.constexpr, HAS_MAX: tl.constexpr, BLOCK: tl.constexpr):
    t, offs, mask = block_of(tensor_of, starts, numels, BLOCK)
    p_ptr = operand(ptrs, n, 0, t, P)
    m_ptr = operand(ptrs, n, 2, t, S)
    g, c = _correction(ptrs, n, t, offs, mask, s, G, S, CORRECT)
    if CLIP:
        c = c / tl.maximum(tl.sqrt(tl.load(sumsq + t).to(S)), 1.0)
    theta = tl.load(p_ptr + offs, mask=mask).to(S)
    m = tl.load(m_ptr + offs, mask=mask) * tl.load(s + 0).to(S) + tl.load(s + 1).to(S) * c
    tl.store(m_ptr + offs, m, mask=mask)
    if KIND == 0:
        v_ptr = operand(ptrs, n, 3, t, S)
        v = tl.load(v_ptr + offs, mask=mask) * tl.load(s + 2).to(S) + tl.load(s + 3).to(S) * c * c
        tl.store(v_ptr + offs, v, mask=mask)
        if HAS_MAX:
            x_ptr = operand(ptrs, n, 5, t, S)
            v = tl.maximum(tl.load(x_ptr + offs, mask=mask), v)
            tl.store(x_ptr + offs, v, mask=mask)
        direction = m / ((tl.sqrt(v) * tl.load(s + 5).to(S) + tl.load(s + 6).to(S)) * tl.load(s + 7).to(S))
    elif KIND == 1:
        direction = tl.where(m > 0, 1.0, tl.where(m < 0, -1.0, 0.0)).to(S)
    else:
        direction = m
    theta = theta + tl.load(s + 9).to(S) * (theta * tl.load(s + 8).to(S) + direction)
    tl.store(p_ptr + offs, to_param(theta, P), mask=mask)
    if RECORD:
        tl.store(operand(ptrs, n, 4, t, S) + offs, g, mask=mask)


def launch(ops: Operands, s: torch.Tensor, *, kind: int, correct: bool, clip: bool, record: bool) -> None:
    params, grads, ms, vs, vmax, lasts = ops
    operands = [params, grads, ms, vs, lasts] + ([vmax] if vmax is not None else [])
    tab = tables(operands)  # type: ignore[arg-type]
    state = ms[0].dtype  # type: ignore[index]
    P, G, S = tl_dtype(params[0].dtype), tl_dtype(grads[0].dtype), tl_dtype(state)  # type: ignore[index]
    grid = (tab.blocks,)
    sumsq = s  # unused placeholder when there is no clip
    if clip:
        sumsq = torch.zeros(tab.n, dtype=state, device=s.device)
        _norm_kernel[grid](tab.ptrs, tab.n, tab.numels, tab.tensor_of, tab.starts, s, sumsq, G=G, S=S, BLOCK=BLOCK)
    _kernel[grid](tab.ptrs, tab.n, tab.numels, tab.tensor_of, tab.starts, s, sumsq, P=P, G=G, S=S, KIND=kind,
                  CORRECT=correct, CLIP=clip, RECORD=record, HAS_MAX=vmax is not None, BLOCK=BLOCK)
