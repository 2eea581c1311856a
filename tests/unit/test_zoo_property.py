"""Property test over every optimizer in the zoo: random shapes (incl. 0-D, empty, 1-element), dtypes
(float32/float64, bfloat16 where the entry supports it), method switches and hyperparameters drawn from a range
that includes invalid values (negative lr, betas outside [0, 1), eps <= 0, wrong types, NaN). Each draw either
raises ValueError at construction (exactly when a value is outside its documented domain) or keeps every
parameter and every state tensor finite over several steps (which straddle a preconditioner refresh and a
Hessian update)."""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.optimizer_zoo import NAMES, ZOO, step_with

shape = st.lists(st.integers(min_value=0, max_value=4), max_size=3).map(tuple)
real = st.one_of(st.floats(-0.2, 1.2), st.sampled_from([0.0, float("nan"), -float("inf")]))
value_for = {
    "lr": st.one_of(st.floats(-0.01, 0.1), st.sampled_from([0.0, "0.1", None])),
    "betas": st.one_of(st.tuples(real, real), st.sampled_from([(0.9,), "0.9"]), st.tuples(st.floats(0, 0.999),
                                                                                              st.floats(0, 0.999))),
    # no denormal eps: with beta1 = 0 a step is g / eps, which overflows for any eps below ~1e-30 (not a bug)
    "eps": st.one_of(st.floats(-1e-6, 0.0), st.floats(1e-12, 1e-3), st.sampled_from([0.0, 1e-8, 1e-16])),
    "weight_decay": st.one_of(st.floats(-0.1, 0.5), st.just(0.0)),
    "rho": st.floats(-0.01, 1.0),
    "gamma": st.floats(-0.1, 1.0),
}


@st.composite
def cases(draw: st.DrawFn) -> tuple:
    name = draw(st.sampled_from(NAMES))
    entry = ZOO[name]
    dtypes = [torch.float32, torch.float64] + ([torch.bfloat16] if entry.bf16 else [])
    dtype = draw(st.sampled_from(dtypes))
    shapes = draw(st.lists(shape, min_size=1, max_size=3))
    hyper = {k: draw(value_for[k]) for k in entry.hyper if draw(st.booleans())}
    options = {k: draw(st.sampled_from(v)) for k, v in entry.options.items()}
    return name, dtype, shapes, hyper, options, draw(st.integers(0, 2**16))


def _finite(x: object) -> bool:
    if isinstance(x, torch.Tensor):
        return bool(torch.isfinite(x.float()).all()) if x.is_floating_point() else True
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, (list, tuple)):
        return all(_finite(v) for v in x)
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_optimizer_raises_value_error_or_stays_finite(case) -> None:
    name, dtype, shapes, hyper, options, seed = case
    entry = ZOO[name]
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in shapes]
    valid = entry.valid(hyper)
    try:
        opt = entry.make(params, **hyper, **options)
    except ValueError as e:
        assert not valid, f"{name} rejected valid hyperparameters {hyper}: {e}"
        assert "\n" not in str(e)
        return
    assert valid, f"{name} accepted invalid hyperparameters {hyper}"
    for t in range(5):  # a refresh at steps 2 and 4 (precondition_frequency=2), a Hessian update every 2 steps
        grads = [torch.randn(s, generator=gen).to(dtype) for s in shapes]
        step_with(opt, params, grads, t)
    for p in params:
        assert p.dtype == dtype and _finite(p.detach()), f"{name}: non-finite parameter"
    for state in opt.state.values():
        if not isinstance(state, dict):  # an optimizer-wide counter (SPAM, Stable-SPAM)
            assert _finite(state), f"{name}: non-finite optimizer-wide state"
            continue
        for key, value in state.items():
            assert _finite(value), f"{name}: non-finite state {key!r}"
