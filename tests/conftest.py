"""Shared test settings. Tiny models run fastest on one thread, and a 2-core CI box shared with other
processes thrashes with two, so tests pin torch to one thread."""

import os

os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# Without CUDA, Triton kernels run in its interpreter (numpy on CPU tensors); set before any kernel is defined.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from common.kernels import NATIVE, dispatch, using  # noqa: E402
from tests.impl_cases import IMPLS_HERE, SLOW_IMPLS  # noqa: E402

# impl="compiled" compiles one graph per group of tensors; tests compile many configurations of small models, and a
# 4-tensor graph compiles several times faster than the default 16 (same maths, more calls per step).
dispatch.GROUP = 4

# IMPLS_HERE: every implementation a test run can exercise here. The tests' tensors are on the CPU, where "compiled"
# compiles a graph per configuration and "triton" runs in Triton's interpreter: seconds per test, so those variants
# (SLOW_IMPLS) are `slow` (nox -s quick leaves them out).


@pytest.fixture(params=[pytest.param(i, marks=pytest.mark.slow) if i in SLOW_IMPLS else i for i in IMPLS_HERE])
def every_impl(request: pytest.FixtureRequest):
    """Run the test once per kernel implementation: optimizers built with impl=None inside it use that one."""
    with using(request.param):
        yield request.param


@pytest.fixture(params=[pytest.param(i, marks=pytest.mark.slow) if i in SLOW_IMPLS else i
                        for i in (*IMPLS_HERE, NATIVE)])
def every_impl_and_native(request: pytest.FixtureRequest):
    """every_impl plus "native", for the optimizers whose rule has a C kernel (Stable-SPAM)."""
    with using(request.param):
        yield request.param
