"""``reproduce bench``'s candidate list: the step-compiled candidate (torch.compile(opt.step) over foreach) and the
C kernels (impl="native")."""

from __future__ import annotations

import torch

from common.kernels import NATIVE
from reproduce.bench import _impls
from reproduce.bench_candidates import STEP_COMPILED, ours


def test_step_compiled_is_in_the_default_cpu_set_and_selectable() -> None:
    assert STEP_COMPILED in _impls([], torch.device("cpu"))[0]
    assert _impls([STEP_COMPILED], torch.device("cpu")) == ((STEP_COMPILED,), [])
    assert [c.impl for c in ours("adamw", ("foreach", STEP_COMPILED))] == ["foreach", STEP_COMPILED]
    assert [c.impl for c in ours("soap", (STEP_COMPILED,))] == ["batched"]


def test_step_compiled_wraps_the_foreach_optimizer_step() -> None:
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.ones(3)
    (cand,) = ours("adamw", (STEP_COMPILED,))
    opt = cand.make([p])
    assert opt.impl == "foreach" and opt.step is not type(opt).step  # type: ignore[attr-defined]
    assert "torch.compile(opt.step)" in cand.note


def test_native_is_timed_for_the_optimizers_with_a_c_kernel_only() -> None:
    assert NATIVE in _impls([], torch.device("cpu"))[0]
    assert [c.impl for c in ours("stablespam", ("compiled", NATIVE))] == ["compiled", NATIVE]
    assert [c.impl for c in ours("adamw", ("compiled", NATIVE))] == ["compiled"]
    p = torch.zeros(3, requires_grad=True)
    (cand,) = ours("stablespam", (NATIVE,))
    assert cand.make([p]).impl == NATIVE  # type: ignore[attr-defined]
