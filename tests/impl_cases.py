"""Parametrizing a test by kernel implementation and case together, for tests whose full case list is cheap on the
eager implementations but seconds per case on the slow ones (compiled graphs, Triton's interpreter on CPU). Those
run a representative subset: the kernel tests (tests/unit/test_kernels.py) already hold every implementation to the
reference step by step on each rule's configurations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest
import torch

from common.kernels import available_impls

IMPLS_HERE = available_impls("cuda" if torch.cuda.is_available() else "cpu")
SLOW_IMPLS = ("compiled", "triton")


def impl_cross(cases: Iterable[str], slow_cases: Sequence[str]) -> list:
    """``(impl, case)`` params: every case on the eager implementations, ``slow_cases`` on the slow ones (marked
    ``slow``)."""
    cases = list(cases)
    missing = [c for c in slow_cases if c not in cases]
    assert not missing, f"unknown cases {missing}"
    return [pytest.param(i, c, marks=pytest.mark.slow, id=f"{i}-{c}") if i in SLOW_IMPLS
            else pytest.param(i, c, id=f"{i}-{c}")
            for i in IMPLS_HERE for c in (slow_cases if i in SLOW_IMPLS else cases)]
