"""state_dict round trip for every optimizer in the zoo, checked buffer by buffer: after a save/load through bytes
(what a Lightning checkpoint does), every state entry (tensors with dtype, Python counters with their type,
nested lists such as SOAP's bases and factors), every group hyperparameter and the hidden Hessian EMA are equal,
at step counts before and after the first preconditioner refresh and Hessian update; and training on from the
loaded copy is bit-identical to training on from the original."""

from __future__ import annotations

import io

import pytest
import torch

from tests.optimizer_zoo import NAMES, ZOO, step_with

STEPS = [1, 2, 3, 5]  # SOAP/Shampoo refresh at step 2 and 4, Sophia's Hessian is fed after steps 2 and 4


def _params(dtype: torch.dtype = torch.float32) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=g).to(dtype)) for s in [(5, 3), (3,), (2, 2, 2), ()]]


def _grads(params: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=g).to(p.dtype) for p in params]


def assert_same(a: object, b: object, where: str) -> None:
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


def _roundtrip(opt: torch.optim.Optimizer, name: str, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    clone_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
    other = ZOO[name].make(clone_params)
    other.load_state_dict(torch.load(buffer, weights_only=True))  # what Lightning 2.6 does by default
    return other


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("name", NAMES)
def test_every_buffer_and_counter_survives_the_round_trip(name, steps):
    params = _params()
    opt = ZOO[name].make(params)
    for t in range(steps):
        step_with(opt, params, _grads(params, t), t)
    other = _roundtrip(opt, name, params)
    mine = [opt.state[p] for p in params]
    theirs = [other.state[p] for g in other.param_groups for p in g["params"]]
    for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        assert_same(dict(a), dict(b), f"{name} after {steps} steps: state[{i}]")
    # optimizer-wide counters some official codes keep under string keys (SPAM's total_step, Stable-SPAM's total_steps)
    assert_same({k: v for k, v in opt.state.items() if isinstance(k, str)},
                {k: v for k, v in other.state.items() if isinstance(k, str)}, f"{name}: optimizer-wide state")
    for g, h in zip(opt.param_groups, other.param_groups, strict=True):
        assert_same({k: v for k, v in g.items() if k != "params"}, {k: v for k, v in h.items() if k != "params"},
                    f"{name}: group")

    # and the copy trains on exactly like the original
    clone = [p for g in other.param_groups for p in g["params"]]
    for t in range(steps, steps + 4):
        step_with(opt, params, _grads(params, t), t)
        step_with(other, clone, _grads(clone, t), t)
    for p, q in zip(params, clone, strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", [n for n in NAMES if ZOO[n].bf16])
def test_bfloat16_params_keep_their_state_dtypes_through_the_round_trip(name):
    params = _params(torch.bfloat16)
    opt = ZOO[name].make(params)
    for t in range(3):
        step_with(opt, params, _grads(params, t), t)
    other = _roundtrip(opt, name, params)
    for p, q in zip(params, [p for g in other.param_groups for p in g["params"]], strict=True):
        assert_same(dict(opt.state[p]), dict(other.state[q]), name)


@pytest.mark.parametrize("name", [n for n in NAMES if ZOO[n].refresh_every])
def test_preconditioner_bases_before_and_after_the_first_refresh(name):
    """SOAP/Shampoo: the bases change at the refresh (so the round trips above straddle a real change) and a copy
    loaded on either side of it refreshes to the same bases as the original."""
    params = _params()
    opt = ZOO[name].make(params)
    key = ZOO[name].bases_key
    step_with(opt, params, _grads(params, 0), 0)
    before = _roundtrip(opt, name, params)
    first = [[b.clone() if isinstance(b, torch.Tensor) else b for b in opt.state[p][key]] for p in params[:1]]
    every = ZOO[name].refresh_every
    for t in range(1, every + 1):
        step_with(opt, params, _grads(params, t), t)
    after = [opt.state[p][key] for p in params[:1]]
    assert any(not torch.equal(a, b) for a, b in zip(first[0], after[0], strict=True) if isinstance(a, torch.Tensor))
    clone = [p for g in before.param_groups for p in g["params"]]
    for t in range(1, every + 1):
        step_with(before, clone, _grads(clone, t), t)
    assert_same(opt.state[params[0]][key], before.state[clone[0]][key], f"{name}.{key}")
