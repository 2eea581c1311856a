"""Multi-tensor launches: one Triton grid over many tensors through pointer and block tables.

The tables are int64 tensors on the device: ``ptrs[op, t]`` is operand ``op``'s data pointer for tensor ``t``,
``numels[t]`` its length, and block ``b`` of the grid handles elements ``[starts[b], starts[b] + BLOCK)`` of tensor
``tensor_of[b]``. Params, grads and state do not move between steps, so the tables are cached by their pointers; the
hyperparameters travel as a small float64 tensor (exact for float64 params, no recompilation when they change).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import triton
import triton.language as tl

__all__ = ["BLOCK", "Tables", "block_of", "operand", "scalars", "tables", "tl_dtype"]

BLOCK = 2048
_CACHE: OrderedDict[tuple, Tables] = OrderedDict()
_CACHE_SIZE = 64

_TL_DTYPES = {torch.float32: tl.float32, torch.float64: tl.float64, torch.bfloat16: tl.bfloat16,
              torch.float16: tl.float16}


def tl_dtype(dtype: torch.dtype) -> tl.dtype:
    try:
        return _TL_DTYPES[dtype]
    except KeyError:
        raise TypeError(f"no Triton kernel for dtype {dtype}") from None


class Tables:
    """Pointer, length and block tables of one bucket (see the module docstring)."""

    def __init__(self, operands: Sequence[Sequence[torch.Tensor]], block: int) -> None:
        device = operands[0][0].device
        self.n = len(operands[0])
        ptrs = [[t.data_ptr() for t in op] for op in operands]
        numels = [t.numel() for t in operands[0]]
        tensor_of: list[int] = []
        starts: list[int] = []
        for i, n in enumerate(numels):
            count = triton.cdiv(n, block)
            tensor_of.extend([i] * count)
            starts.extend(range(0, n, block))
        self.ptrs = torch.tensor(ptrs, dtype=torch.int64, device=device)
        self.numels = torch.tensor(numels, dtype=torch.int64, device=device)
        self.tensor_of = torch.tensor(tensor_of, dtype=torch.int32, device=device)
        self.starts = torch.tensor(starts, dtype=torch.int64, device=device)
        self.blocks = len(tensor_of)


def tables(operands: Sequence[Sequence[torch.Tensor]], block: int = BLOCK) -> Tables:
    """The (cached) tables for these operands; every operand list is as long as the first, empty tensors skipped."""
    key = (block, operands[0][0].device, tuple(t.data_ptr() for op in operands for t in op),
           tuple(t.numel() for t in operands[0]))
    hit = _CACHE.get(key)
    if hit is None:
        hit = Tables(operands, block)
        _CACHE[key] = hit
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return hit


def scalars(values: Sequence[float], device: torch.device) -> torch.Tensor:
    """The hyperparameters of one launch as a float64 tensor on ``device``."""
    return torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)


@triton.jit
def block_of(tensor_of, starts, numels, BLOCK: tl.constexpr):
    """This program's tensor ``t``, its element offsets and their in-bounds mask, from the bucket's block table."""
    b = tl.program_id(0)
    t = tl.load(tensor_of + b)
    offs = tl.load(starts + b) + tl.arange(0, BLOCK)
    return t, offs, offs < tl.load(numels + t)


@triton.jit
def operand(ptrs, n, op: tl.constexpr, t, DTYPE: tl.constexpr):
    """Operand ``op``'s pointer for tensor ``t``, typed."""
    return tl.load(ptrs + op * n + t).to(tl.pointer_type(DTYPE))


@triton.jit
def to_param(x, DTYPE: tl.constexpr):
    """``x`` (the compute dtype) rounded to the param dtype to nearest-even, as torch's ``copy_`` does.

    bfloat16 is rounded by hand: the interpreter (TRITON_INTERPRET=1) truncates fp32 -> bf16, which would make the
    CPU tests disagree with CUDA and with the reference. The integer rounding gives the hardware's bits on both.
    """
    if DTYPE == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
        return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return x.to(DTYPE)
