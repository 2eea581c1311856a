"""Stable-SPAM in Triton; mirrors :func:`common.kernels.stablespam.stablespam_update` without a host sync.

Up to four launches per bucket, each covering every tensor of it:
    1. (AdaClip) max |g| per tensor, by an integer atomic max on the float's bits (|g| >= 0, so the bit patterns
       order as the values do);
    2. (AdaGN) the sum of squares of the clipped gradient per tensor, by atomic adds;
    3. one program per 128 tensors updates the scalar EMAs in the state and writes each tensor's clip threshold,
       gradient norm and AdaGN factor into a small buffer (a separate launch: the update blocks must all read the
       EMAs before any block writes them);
    4. the elementwise update.

The kernels read the step's scalars by literal index, in the order :func:`common.kernels.stablespam._plan` lists
them (a jitted function reads no other module's globals); the parity test of every implementation against the
reference (tests/unit/test_kernels.py) fails on any mismatch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from common.kernels.dispatch import Operands
from common.kernels.triton_kernels.launch import BLOCK, block_of, operand, tables, tl_dtype, to_param

# Operand order in the pointer table.
_P, _G, _M, _V, _MMAX, _MNORM, _VNORM, _VMAX = range(8)
_SCALAR_BLOCK = 128
_BITS = {torch.float32: tl.int32, torch.float64: tl.int64}
_INT = {torch.float32: torch.int32, torch.float64: torch.int64}


@triton.jit
def _c(c, i: tl.constexpr, S: tl.constexpr):
    return tl.load(c + i).to(S)


@triton.jit
def _max_kernel(ptrs, n, numels, tensor_of, starts, maxbits,
                G: tl.constexpr, S: tl.constexpr, BITS: tl.constexpr, BLOCK: tl.constexpr):
    t, offs, mask = block_of(tensor_of, starts, numels, BLOCK)
    g = tl.load(operand(ptrs, n, 1, t, G) + offs, mask=mask, other=0.0).to(S)
    block_max = tl.max(tl.where(mask, tl.abs(g), 0.0), axis=0)
    tl.atomic_max(maxbits + t, block_max.to(BITS, bitcast=True))


@triton.jit
def _clipped(g, mx, hat):
    """g after AdaClip: entries above the threshold ``hat`` (the new EMA, bias-corrected) become g / max|g| * hat."""
    return tl.where(tl.abs(g) > hat, g / mx * hat, g)


@triton.jit
def _norm_kernel(ptrs, n, numels, tensor_of, starts, c, maxbits, sumsq,
                 G: tl.constexpr, S: tl.constexpr, CLIP: tl.constexpr, BLOCK: tl.constexpr):
    t, offs, mask = block_of(tensor_of, starts, numels, BLOCK)
    g = tl.load(operand(ptrs, n, 1, t, G) + offs, mask=mask, other=0.0).to(S)
    if CLIP:
        mx = tl.load(maxbits + t).to(S, bitcast=True)
        new_max = _c(c, 1, S) * tl.load(operand(ptrs, n, 4, t, S)) + _c(c, 2, S) * mx
        g = _clipped(g, mx, new_max / _c(c, 3, S))
    g = tl.where(mask, g, 0.0)
    tl.atomic_add(sumsq + t, tl.sum(g * g, axis=0))


@triton.jit
def _scalar_kernel(ptrs, n, c, maxbits, sumsq, out,
                   S: tl.constexpr, CLIP: tl.constexpr, GN: tl.constexpr, SB: tl.constexpr):
    idx = tl.program_id(0) * SB + tl.arange(0, SB)
    m = idx < n
    if CLIP:
        mx = tl.load(maxbits + idx, mask=m, other=0).to(S, bitcast=True)
        mm_ptr = tl.load(ptrs + 4 * n + idx, mask=m, other=0).to(tl.pointer_type(S))
        new_max = _c(c, 1, S) * tl.load(mm_ptr, mask=m) + _c(c, 2, S) * mx
        tl.store(mm_ptr, new_max, mask=m)
        tl.store(out + idx, new_max / _c(c, 3, S), mask=m)
    if GN:
        norm = tl.sqrt(tl.load(sumsq + idx, mask=m, other=0.0))
        mn_ptr = tl.load(ptrs + 5 * n + idx, mask=m, other=0).to(tl.pointer_type(S))
        vn_ptr = tl.load(ptrs + 6 * n + idx, mask=m, other=0).to(tl.pointer_type(S))
        new_m = _c(c, 4, S) * tl.load(mn_ptr, mask=m) + _c(c, 5, S) * norm
        new_v = _c(c, 7, S) * tl.load(vn_ptr, mask=m) + _c(c, 8, S) * norm * norm
        factor = (new_m / _c(c, 6, S)) / (tl.sqrt(new_v / _c(c, 9, S)) + _c(c, 10, S))
        tl.store(mn_ptr, new_m, mask=m)
        tl.store(vn_ptr, new_v, mask=m)
        tl.store(out + n + idx, norm, mask=m)
        tl.store(out + 2 * n + idx, factor, mask=m)


@triton.jit
def _update_kernel(ptrs, n, numels, tensor_of, starts, c, maxbits, out,
                   P: tl.constexpr, G: tl.constexpr, S: tl.constexpr, CLIP: tl.constexpr, GN: tl.constexpr,
                   ZERO: tl.constexpr, AMS: tl.constexpr, MUTATE: tl.constexpr, BLOCK: tl.constexpr):
    t, offs, mask = block_of(tensor_of, starts, numels, BLOCK)
    p_ptr = operand(ptrs, n, 0, t, P)
    g_ptr = operand(ptrs, n, 1, t, G)
    m_ptr = operand(ptrs, n, 2, t, S)
    v_ptr = operand(ptrs, n, 3, t, S)
    g = tl.load(g_ptr + offs, mask=mask).to(S)
    theta = tl.load(p_ptr + offs, mask=mask).to(S) * _c(c, 0, S)
    if CLIP:
        g = _clipped(g, tl.load(maxbits + t).to(S, bitcast=True), tl.load(out + t))
        if MUTATE:
            tl.store(g_ptr + offs, to_param(g, G), mask=mask)
    if GN:
        norm = tl.load(out + n + t)
        g = tl.where(norm > 0, g / norm * tl.load(out + 2 * n + t), g)
    if ZERO:
        m = tl.zeros([BLOCK], dtype=S)
        v = tl.zeros([BLOCK], dtype=S)
    else:
        m = tl.load(m_ptr + offs, mask=mask)
        v = tl.load(v_ptr + offs, mask=mask)
    m = m * _c(c, 11, S) + _c(c, 12, S) * g
    v = v * _c(c, 13, S) + _c(c, 14, S) * g * g
    tl.store(m_ptr + offs, m, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)
    s = v
    if AMS:
        x_ptr = operand(ptrs, n, 7, t, S)
        if ZERO:
            s = tl.maximum(tl.zeros([BLOCK], dtype=S), v)
        else:
            s = tl.maximum(tl.load(x_ptr + offs, mask=mask), v)
        tl.store(x_ptr + offs, s, mask=mask)
    theta = theta + _c(c, 16, S) * (m / (tl.sqrt(s) / _c(c, 15, S) + _c(c, 10, S)))
    tl.store(p_ptr + offs, to_param(theta, P), mask=mask)


def launch(ops: Operands, c: torch.Tensor, *, adaclip: bool, adagn: bool, zero_moments: bool,
           mutate_grad: bool) -> None:
    params, grads, ms, vs, vmax, m_maxs, m_norms, v_norms = ops
    operands = [params, grads, ms, vs, m_maxs, m_norms, v_norms] + ([vmax] if vmax is not None else [])
    tab = tables(operands)  # type: ignore[arg-type]
    state = ms[0].dtype  # type: ignore[index]
    P, G, S = tl_dtype(params[0].dtype), tl_dtype(grads[0].dtype), tl_dtype(state)  # type: ignore[index]
    grid = (tab.blocks,)
    device = c.device
    maxbits = torch.zeros(tab.n, dtype=_INT[state], device=device)
    sumsq = torch.zeros(tab.n, dtype=state, device=device)
    out = torch.empty(3 * tab.n, dtype=state, device=device)
    if adaclip:
        _max_kernel[grid](tab.ptrs, tab.n, tab.numels, tab.tensor_of, tab.starts, maxbits, G=G, S=S,
                          BITS=_BITS[state], BLOCK=BLOCK)
    if adagn:
        _norm_kernel[grid](tab.ptrs, tab.n, tab.numels, tab.tensor_of, tab.starts, c, maxbits, sumsq, G=G, S=S,
                           CLIP=adaclip, BLOCK=BLOCK)
    if adaclip or adagn:
        _scalar_kernel[(triton.cdiv(tab.n, _SCALAR_BLOCK),)](tab.ptrs, tab.n, c, maxbits, sumsq, out, S=S,
                                                             CLIP=adaclip, GN=adagn, SB=_SCALAR_BLOCK)
    _update_kernel[grid](tab.ptrs, tab.n, tab.numels, tab.tensor_of, tab.starts, c, maxbits, out, P=P, G=G, S=S,
                         CLIP=adaclip, GN=adagn, ZERO=zero_moments, AMS=vmax is not None, MUTATE=mutate_grad,
                         BLOCK=BLOCK)
