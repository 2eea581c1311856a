"""State-dtype policy shared by the elementwise optimizers: low-precision params keep fp32 state and maths."""

from __future__ import annotations

import torch

__all__ = ["LOW_PRECISION_DTYPES", "state_dtype"]

LOW_PRECISION_DTYPES = (torch.float16, torch.bfloat16)


def state_dtype(param_dtype: torch.dtype) -> torch.dtype:
    """fp16/bf16 params get fp32 state (EMAs of tiny squares underflow in bf16); others keep their own dtype."""
    return torch.float32 if param_dtype in LOW_PRECISION_DTYPES else param_dtype
