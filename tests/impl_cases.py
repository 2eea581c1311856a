"""Parametrizing a test by kernel implementation and case together, for tests whose full case list is cheap on the
eager implementations but seconds per case on the slow ones (compiled graphs, Triton's interpreter on CPU). Those
run a representative subset: the kernel tests (tests/unit/test_kernels.py) already hold every implementation to the
reference step by step on each rule's configurations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest
import torch

from common.kernels import available_impls

IMPLS_HERE = available_impls("cuda" if torch.cuda.is_available() else "cpu")
SLOW_IMPLS = ("compiled", "triton")


def impl_cross(cases: Iterable[str] | Mapping[str, Any], slow_cases: Sequence[str]) -> list:
    """``(impl, case)`` params: every case on the eager implementations, ``slow_cases`` on the slow ones (marked
    ``slow``). ``cases`` names the cases, or maps names to the values the test receives."""
    values = dict(cases) if isinstance(cases, Mapping) else {c: c for c in cases}
    missing = [c for c in slow_cases if c not in values]
    assert not missing, f"unknown cases {missing}"
    return [pytest.param(i, values[c], marks=pytest.mark.slow, id=f"{i}-{c}") if i in SLOW_IMPLS
            else pytest.param(i, values[c], id=f"{i}-{c}")
            for i in IMPLS_HERE for c in (slow_cases if i in SLOW_IMPLS else values)]


# (param dtype, state dtype): low-precision params keep fp32 state, fp64 keeps fp64. The slow implementations run
# the mixed bf16/fp32 case (one dtype per implementation; tests/unit/test_kernels.py crosses impls and dtypes).
STATE_DTYPES = {"bf16": (torch.bfloat16, torch.float32), "fp16": (torch.float16, torch.float32),
                "fp32": (torch.float32, torch.float32), "fp64": (torch.float64, torch.float64)}
STATE_DTYPE_CASES = impl_cross(STATE_DTYPES, ["bf16"])
