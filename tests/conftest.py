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

# impl="compiled" compiles one graph per group of tensors; tests compile about a hundred configurations of small
# models, and a one-tensor graph compiles in about half the time of a 4-tensor one (a fifth of the default 16's):
# same maths, more calls per step. tests/unit/test_kernels.py runs the grouping itself (padding, shared sizes) at 4
# and at the production size.
dispatch.GROUP = 1

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


# Every `compiled` test of one rule runs on one xdist worker: a graph compiled there is in that process's cache for
# the rule's next test, instead of the other worker compiling it again (about a second each, a hundred graphs).
# Names that share one kernel rule: Sophia's two variants, and SPAM with Stable-SPAM (one test file).
_RULE_FAMILY = {"sophiag": "sophia", "sophiah": "sophia", "stablespam": "spam", "stable_spam": "spam"}


def _compiled_rule(item: pytest.Item) -> str | None:
    """The rule a `compiled` test compiles: test_kernels.py's case name, else the file's (test_<rule>_optim.py;
    any other file is a group of its own); None for a test that does not run `compiled`."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec else {}
    if not (any(isinstance(v, str) and v == "compiled" for v in params.values())
            or item.name.startswith("test_compiled_")):
        return None
    if item.path.name == "test_kernels.py":
        name = str(params.get("name", "adamw")).split("-")[0]
    else:
        name = item.path.stem.removeprefix("test_").removesuffix("_optim")
    return _RULE_FAMILY.get(name, name)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        rule = _compiled_rule(item)
        if rule and not any(item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group(f"compiled-{rule}"))
