"""Every kernel implementation against the per-tensor reference (common.kernels): random shapes including empty,
1-element and odd sizes, float32/bfloat16/float64 params, several steps, weight decay on and off.

Triton runs under TRITON_INTERPRET=1 on CPU (tests/conftest.py sets it when there is no CUDA); the ``gpu`` tests
run the real kernels on CUDA. foreach must equal the reference bit for bit on CPU (torch runs it as the same
per-tensor ops); the fused implementations (compiled, triton) round differently (one expression, FMA), so they are
held to a few ulp of the compute dtype.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common.kernels import (
    CHOICES,
    IMPLS,
    NATIVE,
    available_impls,
    check_impl,
    default_impl,
    dispatch,
    resolve_impl,
    stablespam,
    using,
)
from common.kernels.adabelief import adabelief_step
from common.kernels.adamw import adamw_step
from common.kernels.mars import mars_step
from common.kernels.radam import radam_step
from common.kernels.sophia import hessian_ema_step, sophia_step
from common.kernels.spam import spam_step
from common.kernels.stablespam import stablespam_step
from common.optim.adamw import AdamW
from common.optim.precision import state_dtype

HERE = available_impls("cpu")
FAST = [i for i in HERE if i != "reference"]
SHAPES = [(0,), (1,), (7,), (5, 3), (2, 0, 3), (33, 17), (2, 3, 5), (1031,)]
DTYPES = [torch.float32, torch.bfloat16, torch.float64]


@dataclass(frozen=True)
class Case:
    """One rule in one configuration: how many state tensors, how to call it, how to initialise the state."""

    n_state: int
    call: Callable[..., None]
    positive_last_state: bool = False  # Sophia's Hessian: a positive EMA, as after some update_hessian calls
    n_scalar_state: int = 0  # per-tensor 0-d state after the full-size ones (Stable-SPAM's EMAs)


def _adamw(wd: float) -> Case:
    return Case(2, lambda impl, ps, gs, s, steps: adamw_step(
        impl, ps, gs, s[0], s[1], steps, lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=wd))


def _radam(wd: float, sgd: bool = True, beta2: float = 0.99) -> Case:
    return Case(2, lambda impl, ps, gs, s, steps: radam_step(
        impl, ps, gs, s[0], s[1], steps, lr=1e-2, beta1=0.9, beta2=beta2, eps=1e-8, weight_decay=wd,
        degenerated_to_sgd=sgd))


def _adabelief(wd: float, decouple: bool = True, rectify: bool = True, amsgrad: bool = False,
               fixed: bool = False, eps: float = 1e-16) -> Case:
    return Case(3, lambda impl, ps, gs, s, steps: adabelief_step(
        impl, ps, gs, s[0], s[1], s[2] if amsgrad else None, steps, lr=1e-2, beta1=0.9, beta2=0.99, eps=eps,
        weight_decay=wd, weight_decouple=decouple, fixed_decay=fixed, rectify=rectify, degenerated_to_sgd=True))


def _mars(wd: float, kind: str = "adamw", use_mars: bool = True, clip: bool = True, amsgrad: bool = False,
          record: bool = True) -> Case:
    return Case(4, lambda impl, ps, gs, s, steps: mars_step(
        impl, ps, gs, s[0], s[1], s[2] if amsgrad else None, s[3], steps, lr=1e-2, beta1=0.95, beta2=0.99,
        eps=1e-8, weight_decay=wd, gamma=0.025, mars_type=kind, clip_c=clip, use_mars=use_mars,
        record_last_grad=record))


def _sophia(wd: float, bs: float | None = 16.0, maximize: bool = False) -> Case:
    return Case(2, lambda impl, ps, gs, s, steps: sophia_step(
        impl, ps, gs, s[0], s[1], lr=1e-2, beta1=0.96, rho=0.04, weight_decay=wd, bs=bs, maximize=maximize),
        positive_last_state=True)


def _spam(wd: float, reset_at: int = 4, mutate: bool = False) -> Case:
    """A reset at ``reset_at`` with a warmup factor after it; spike clipping (threshold 2: many entries spike) on
    except on the first step and on the two steps from the reset (as grad_accu_steps does: with v = 0 every entry
    would be clipped to 0)."""
    return Case(2, lambda impl, ps, gs, s, steps: spam_step(
        impl, ps, gs, s[0], s[1], steps, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=wd,
        correct_bias=True, threshold=2.0, clip=steps[0] >= 2 and not reset_at <= steps[0] < reset_at + 2,
        reset=steps[0] == reset_at,
        warmup=0.3 if steps[0] >= reset_at else 1.0, mutate_grad=mutate))


def _stablespam(wd: float, clip: bool = True, gn: bool = True, amsgrad: bool = False, zero_at: int = 0,
                mutate: bool = False) -> Case:
    """Stable-SPAM's rule; ``zero_at`` is the fixed semantics' reset step (t restarts there), 0 for none."""

    def call(impl, ps, gs, s, steps):
        t = steps[0]
        t_adam = t - zero_at + 1 if zero_at and t >= zero_at else t
        stablespam_step(impl, ps, gs, s[0], s[1], s[2] if amsgrad else None, s[3], s[4], s[5],
                        [(t_adam, t)] * len(ps), lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=wd,
                        gamma1=0.7, gamma2=0.9, gamma3=0.999, scale=0.8, warmup=0.5 if zero_at else 1.0,
                        adaclip=clip, adagn=gn, zero_moments=t == zero_at, mutate_grad=mutate)

    return Case(3, call, n_scalar_state=3)


CASES: dict[str, Callable[[float], Case]] = {
    "adamw": _adamw,
    "radam": _radam,
    "radam-skip-phase": lambda wd: _radam(wd, sgd=False, beta2=0.999),
    "adabelief": _adabelief,
    "adabelief-coupled-amsgrad": lambda wd: _adabelief(wd, decouple=False, rectify=False, amsgrad=True, eps=1e-8),
    "adabelief-fixed-decay-amsgrad-rectify": lambda wd: _adabelief(wd, fixed=True, amsgrad=True),
    "mars-adamw": _mars,
    "mars-adamw-amsgrad-noclip": lambda wd: _mars(wd, clip=False, amsgrad=True),
    "mars-lion": lambda wd: _mars(wd, kind="lion"),
    "mars-sgd-exact": lambda wd: _mars(wd, kind="sgd", record=False),
    "mars-1d-branch": lambda wd: _mars(wd, use_mars=False),
    "sophiag": _sophia,
    "sophiag-maximize": lambda wd: _sophia(wd, maximize=True),
    "sophiah": lambda wd: _sophia(wd, bs=None),
    "spam": _spam,
    "spam-mutate-grad": lambda wd: _spam(wd, reset_at=3, mutate=True),
    "stablespam": _stablespam,
    "stablespam-fixed-reset-amsgrad": lambda wd: _stablespam(wd, amsgrad=True, zero_at=4),
    "stablespam-adaclip-only-mutate": lambda wd: _stablespam(wd, gn=False, mutate=True),
    "stablespam-adagn-only": lambda wd: _stablespam(wd, clip=False),
    "stablespam-plain-adam": lambda wd: _stablespam(wd, clip=False, gn=False),
}


def _run(case: Case, impl: str, dtype: torch.dtype, shapes: list[tuple[int, ...]], steps: int, seed: int = 0,
         device: str = "cpu"):
    """Params, state and grads drawn on the CPU (the same numbers on every device), then moved to ``device``;
    returns CPU copies of the final (params, state lists + [last grads])."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).to(device) for s in shapes]
    sdt = state_dtype(dtype)
    state = [[torch.zeros(s, dtype=sdt, device=device) for s in shapes] for _ in range(case.n_state)]
    state += [[torch.zeros((), dtype=sdt, device=device) for _ in shapes] for _ in range(case.n_scalar_state)]
    if case.positive_last_state:
        for h in state[-1]:
            h.copy_(torch.rand(h.shape, generator=gen, dtype=torch.float64) * 0.1)
    for t in range(1, steps + 1):
        # every other step 4x larger, so that spike clipping and AdaClip have entries to clip
        grads = [(torch.randn(s, generator=gen, dtype=torch.float64) * (4.0 if t % 2 else 1.0)).to(dtype).to(device)
                 for s in shapes]
        case.call(impl, params, grads, state, [t] * len(params))
    out = state + [grads] if steps else state  # the grads too: mutate_grad writes the clipped ones
    return [p.cpu() for p in params], [[s.cpu() for s in group] for group in out]


def _assert_matches(impl: str, dtype: torch.dtype, got, want) -> None:
    (params, state), (ref_params, ref_state) = got, want
    tensors = list(zip(params, ref_params, strict=True))
    tensors += [pair for a, b in zip(state, ref_state, strict=True) for pair in zip(a, b, strict=True)]
    for a, b in tensors:
        if impl == "foreach":
            assert torch.equal(a, b)
        elif a.dtype == torch.float64:
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
        elif a.dtype == torch.bfloat16:  # one fp32 ulp apart can round to neighbouring bf16 values
            torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-2)
        else:
            torch.testing.assert_close(a, b, rtol=2e-5, atol=1e-6)


# CPU: every case in both weight-decay settings in one dtype per implementation, the dtypes spread over the
# implementations (foreach bit for bit in bfloat16, the mixed-precision path; compiled in float32; triton's
# interpreter in float64, tight tolerance), plus every implementation x every dtype on three cases (the dtype
# handling is shared code; each compiled configuration x dtype is a compilation of several seconds).
IMPL_DTYPE = {"foreach": torch.bfloat16, "compiled": torch.float32, "triton": torch.float64}
ALL_DTYPES_CASES = ("adamw", "adabelief-coupled-amsgrad", "mars-adamw")


SLOW_ON_CPU = ("compiled", "triton")
CUDA_SKIP = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (runs on the device machine)")


def _match_param(name: str, wd: float, dtype: torch.dtype, impl: str, device: str) -> object:
    # On CPU compiled compiles and triton interprets (seconds a case): slow, like tests/conftest.py::every_impl.
    marks = [pytest.mark.gpu, CUDA_SKIP] if device == "cuda" else [pytest.mark.slow] if impl in SLOW_ON_CPU else []
    return pytest.param(name, wd, dtype, impl, device, marks=marks,
                        id=f"{device}-{name}-{wd}-{str(dtype).removeprefix('torch.')}-{impl}")


# CPU: every fast impl against the CPU reference. CUDA: the Triton kernels (what "auto" picks there) against the same
# CPU reference, with the same case-building code, so the state lists (full-size and scalar) and the grads line up.
MATCH_CASES = [_match_param(name, wd, dtype, impl, "cpu") for impl in FAST for dtype in DTYPES for wd in (0.0, 0.1)
               for name in CASES
               if dtype == IMPL_DTYPE[impl] or (wd == 0.1 and name in ALL_DTYPES_CASES)]
MATCH_CASES += [_match_param(name, wd, dtype, "triton", "cuda") for dtype in DTYPES for wd in (0.0, 0.1)
                for name in CASES]
# Stable-SPAM's C kernel (impl="native"): float32 in both weight-decay settings, float64 in one (its two builds).
MATCH_CASES += [_match_param(name, wd, dtype, NATIVE, "cpu") for name in CASES if name.startswith("stablespam")
                for dtype, wds in ((torch.float32, (0.0, 0.1)), (torch.float64, (0.1,))) for wd in wds]


@pytest.mark.parametrize(("name", "weight_decay", "dtype", "impl", "device"), MATCH_CASES)
def test_every_impl_matches_the_reference(name: str, weight_decay: float, dtype: torch.dtype, impl: str,
                                          device: str) -> None:
    case = CASES[name](weight_decay)
    want = _run(case, "reference", dtype, SHAPES, steps=7)
    got = _run(case, impl, dtype, SHAPES, steps=7, device=device)
    _assert_matches(impl, dtype, got, want)
    assert not torch.equal(want[0][-1], _run(case, "reference", dtype, SHAPES, steps=0)[0][-1])  # it did move


@settings(max_examples=15, deadline=None)
@given(
    shapes=st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=3).map(tuple), min_size=1, max_size=5),
    name=st.sampled_from(list(CASES)),
    weight_decay=st.sampled_from([0.0, 0.05]),
    steps=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_property_foreach_and_triton_equal_reference_on_random_shapes(shapes, name, weight_decay, steps, seed):
    case = CASES[name](weight_decay)
    want = _run(case, "reference", torch.float32, shapes, steps, seed)
    for impl in [i for i in ("foreach", "triton") if i in HERE]:
        _assert_matches(impl, torch.float32, _run(case, impl, torch.float32, shapes, steps, seed), want)


@pytest.mark.parametrize("impl", [pytest.param(i, marks=pytest.mark.slow) if i in SLOW_ON_CPU else i for i in FAST])
def test_tensors_at_different_steps_and_non_contiguous_tensors_in_one_call(impl: str) -> None:
    """A bucket is (device, dtypes, step): tensors at different steps take their own scalars; a transposed
    (non-contiguous) param cannot be walked flat, so the fused implementations hand it to foreach."""

    def run(which: str) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(3)
        params = [torch.randn(6, 4, generator=g).t(), torch.randn(9, generator=g), torch.randn(9, generator=g)]
        ms = [torch.zeros_like(p) for p in params]
        vs = [torch.zeros_like(p) for p in params]
        for t in range(1, 5):
            grads = [torch.randn(p.shape, generator=g) for p in params]
            radam_step(which, params, grads, ms, vs, [t, t, t + 10], lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8,
                       weight_decay=0.1, degenerated_to_sgd=True)
        return params + ms + vs

    for a, b in zip(run(impl), run("reference"), strict=True):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("square", [True, False])
def test_hessian_ema_foreach_equals_the_loop(square: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    hs = [torch.rand(s, generator=gen) for s in SHAPES]
    es = [torch.randn(s, generator=gen).to(torch.bfloat16) for s in SHAPES]
    ref = [h.clone() for h in hs]
    hessian_ema_step("reference", ref, es, beta2=0.99, square=square)
    hessian_ema_step("foreach", hs, es, beta2=0.99, square=square)
    assert all(torch.equal(a, b) for a, b in zip(hs, ref, strict=True))


def test_impl_is_validated_and_auto_never_picks_what_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="impl"):
        check_impl("fused")
    with pytest.raises(ValueError, match="impl"):
        AdamW([torch.zeros(2, requires_grad=True)], impl="cuda")
    assert resolve_impl("auto", torch.device("cpu")) == "foreach"
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        resolve_impl("triton", torch.device("cpu"))
    assert "triton" not in available_impls("cpu")


def test_default_impl_follows_the_context_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    assert default_impl() == "auto"
    monkeypatch.setenv(dispatch.ENV_VAR, "reference")
    assert AdamW([torch.zeros(1, requires_grad=True)]).impl == "reference"
    with using("foreach"):
        assert AdamW([torch.zeros(1, requires_grad=True)]).impl == "foreach"
    assert AdamW([torch.zeros(1, requires_grad=True)], impl="compiled").impl == "compiled"


def test_compiled_falls_back_to_foreach_with_a_warning_when_the_compiler_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("Inductor: no working C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: broken)
    dispatch.compiler_works.cache_clear()  # the probe runs again, under the broken compiler
    try:
        case = _adamw(0.1)
        with pytest.warns(RuntimeWarning, match="unavailable on cpu .*RuntimeError: Inductor.*running foreach"):
            got = _run(case, "compiled", torch.float32, SHAPES, steps=3)
        _assert_matches("foreach", torch.float32, got, _run(case, "reference", torch.float32, SHAPES, steps=3))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once only
            _run(case, "compiled", torch.float32, SHAPES, steps=1)
    finally:
        dispatch.compiler_works.cache_clear()


def test_compiled_runs_one_graph_per_rule_and_dtype_whatever_the_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sizes are dynamic symbols of their own (no duck sizing): groups with other shapes and other equal-size
    patterns reuse the graph instead of compiling again."""
    from torch._dynamo.utils import counters

    monkeypatch.setattr(dispatch, "GROUP", 4)  # several tensors a group (the suite's default is one)

    gen = torch.Generator().manual_seed(3)
    shapes = [(5, 3), (7,), (7,), (2, 9), (4, 4), (11,), (3,), (3,), (3,), (6, 2), (13,), (7, 7)]
    params = [torch.randn(s, generator=gen, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    opt = AdamW(params, lr=1e-2, weight_decay=0.1, impl="compiled")
    assert dispatch.compiler_works("cpu")  # the probe's own graph comes before the count
    before = counters["stats"]["unique_graphs"]
    for _ in range(3):
        opt.step()
    more = [torch.randn(s, generator=gen, requires_grad=True) for s in [(8,), (8,), (9, 2), (31,), (2, 2), (5,)]]
    for p in more:
        p.grad = torch.randn(p.shape, generator=gen)
    AdamW(more, lr=1e-2, impl="compiled").step()
    # At most the one graph (none if an earlier test in this process compiled it); with duck sizing each pattern of
    # equal sizes among a group's tensors (7 = 7, 3 = 3, 8 = 8, none) would compile its own.
    assert counters["stats"]["unique_graphs"] - before <= 1


@pytest.mark.parametrize("impl", [pytest.param(i, marks=pytest.mark.slow) if i in SLOW_ON_CPU else i for i in HERE])
def test_adamw_matches_torch_adamw_float64(impl: str) -> None:
    """The yardstick's reference is torch.optim.AdamW's maths (m by mul/add instead of lerp: a few ulp)."""
    gen = torch.Generator().manual_seed(1)
    ours = [torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=True) for s in [(4, 3), (5,)]]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    opt = AdamW(ours, lr=1e-2, weight_decay=0.1, impl=impl)
    ref = torch.optim.AdamW(theirs, lr=1e-2, weight_decay=0.1, foreach=False)
    for _ in range(5):
        for p, q in zip(ours, theirs, strict=True):
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            q.grad = p.grad.clone()
        opt.step()
        ref.step()
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_checkpoint_written_with_one_impl_resumes_with_another() -> None:
    gen = torch.Generator().manual_seed(2)
    grads = [[torch.randn(3, 2, generator=gen)] for _ in range(6)]

    def train(impls: tuple[str, str]) -> torch.Tensor:
        p = torch.ones(3, 2, requires_grad=True)
        opt = AdamW([p], lr=1e-2, impl=impls[0])
        for t, (g,) in enumerate(grads):
            if t == 3:
                state = opt.state_dict()
                opt = AdamW([p], lr=1e-2, impl=impls[1])
                opt.load_state_dict(state)
            p.grad = g.clone()
            opt.step()
        return p.detach()

    assert torch.equal(train(("reference", "foreach")), train(("reference", "reference")))


def test_every_impl_is_listed() -> None:
    assert IMPLS == ("reference", "foreach", "compiled", "triton")
    assert CHOICES == (*IMPLS, NATIVE, "auto")


def test_native_takes_odd_buckets_and_falls_back_where_it_cannot_run(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path) -> None:
    """Stable-SPAM's C kernel with tensors at different steps, a transposed (non-contiguous, so foreach) and a
    1-element one; then with no C compiler it warns once and runs compiled (here, with Inductor broken too,
    foreach: the reference's bits), as it does for bfloat16; "native" on another device means compiled."""
    assert resolve_impl(NATIVE, torch.device("cpu")) == NATIVE
    assert resolve_impl(NATIVE, torch.device("cuda")) == "compiled"
    call = CASES["stablespam-fixed-reset-amsgrad"](0.1).call

    def run(which: str, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(3)
        params = [torch.randn(6, 4, generator=g).t(), torch.randn(1, generator=g), torch.randn(9, generator=g),
                  torch.randn(3, 3, generator=g)]
        params = [p.to(dtype) for p in params]
        state = [[torch.zeros(p.shape, dtype=state_dtype(dtype)) for p in params] for _ in range(3)]
        state += [[torch.zeros((), dtype=state_dtype(dtype)) for _ in params] for _ in range(3)]
        for t in range(1, 6):
            grads = [(torch.randn(p.shape, generator=g) * (4.0 if t % 2 else 1.0)).to(dtype) for p in params]
            call(which, params[:2], grads[:2], [s[:2] for s in state], [t, t])
            call(which, params[2:], grads[2:], [s[2:] for s in state], [t + 3, t + 3])
        return params + [x for s in state for x in s]

    for a, b in zip(run(NATIVE), run("reference"), strict=True):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=1e-6)

    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("OPTREPRO_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setattr(dispatch, "compiler_works", lambda device_type: False)
    dispatch.native_library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="native' unavailable .*running compiled"):
            got = run(NATIVE)
        assert dispatch.native_unavailable(stablespam.NATIVE_SOURCE)
        assert all(torch.equal(a, b) for a, b in zip(got, run("reference"), strict=True))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once only
            run(NATIVE)
    finally:
        dispatch.native_library.cache_clear()
    bf16 = run(NATIVE, torch.bfloat16)  # not a C kernel dtype: compiled, here foreach
    assert all(torch.equal(a, b) for a, b in zip(bf16, run("reference", torch.bfloat16), strict=True))


@pytest.mark.slow  # compiles on CPU
def test_compiled_argument_lists_are_reused_and_dropped_with_the_model() -> None:
    """impl='compiled' keeps each bucket's prepared argument lists between steps (they hold the tensors' storages),
    and drops them when the params or the optimizer are freed: throwing a model away frees its memory."""
    import gc

    before = set(dispatch._PREPARED)
    params = [torch.randn(1000, requires_grad=True), torch.randn(30, 30, requires_grad=True)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = AdamW(params, lr=1e-2, impl="compiled")
    opt.step()
    added = set(dispatch._PREPARED) - before
    opt.step()
    assert len(added) == 1 and set(dispatch._PREPARED) - before == added  # the second step reused the entry
    del opt, params, p
    gc.collect()
    assert not set(dispatch._PREPARED) - before


@pytest.mark.slow  # compiles on CPU
def test_compiled_with_the_production_group_size_matches_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/conftest.py lowers dispatch.GROUP so the suite compiles smaller graphs; this runs the production size
    on 37 tensors: two full groups, a padded third, and the single-element and empty tensors foreach takes."""
    monkeypatch.setattr(dispatch, "GROUP", dispatch.DEFAULT_GROUP)
    assert dispatch.GROUP > 4  # the suite's own group size is smaller
    shapes = [(k + 2,) for k in range(2 * dispatch.GROUP)] + [(5, 3), (1,), (0,), (33, 17), (2, 3, 5)]
    case = CASES["adamw"](0.1)
    want = _run(case, "reference", torch.float32, shapes, steps=3)
    before = set(dispatch._PREPARED)
    got = _run(case, "compiled", torch.float32, shapes, steps=3)
    _assert_matches("compiled", torch.float32, got, want)
    new = [dispatch._PREPARED[k] for k in set(dispatch._PREPARED) - before]
    assert new  # the compiler ran (a fallback to foreach prepares nothing); one entry a step (new grads each step)
    for small, groups in new:
        assert [len(idx) for idx, _ in groups] == [dispatch.GROUP, dispatch.GROUP, 3]
        assert len(small) == 1  # the (1,) tensor; the empty one never reaches the compiled path
