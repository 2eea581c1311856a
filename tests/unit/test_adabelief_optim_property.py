"""Property: ours == adabelief-pytorch 0.2.1 bit for bit, any shapes (empty, 1-element), options and hyperparameters."""

from __future__ import annotations

import contextlib
import io

import adabelief_pytorch
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from papers.adabelief.optim import AdaBelief

shape = st.lists(st.integers(min_value=0, max_value=4), max_size=3).map(tuple)  # () is 1 element, 0 is empty
options = st.fixed_dictionaries(
    {
        "lr": st.floats(0.0, 1.0),
        "betas": st.tuples(st.floats(0.0, 0.999), st.floats(0.0, 0.9999)),
        "eps": st.integers(-20, -1).map(lambda k: 10.0**k),
        "weight_decay": st.floats(0.0, 1.0),
        "amsgrad": st.booleans(),
        "weight_decouple": st.booleans(),
        "fixed_decay": st.booleans(),
        "rectify": st.booleans(),
        "degenerated_to_sgd": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(shape, min_size=1, max_size=3),
    kw=options,
    steps=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
# Empty and 1-element tensors through both rectify phases with amsgrad; and the extremes beta=0, wd=1, lr=1.
@example(
    shapes=[(0,), (), (1,)],
    kw={"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-16, "weight_decay": 0.1, "amsgrad": True,
        "weight_decouple": False, "fixed_decay": False, "rectify": True, "degenerated_to_sgd": True},
    steps=9,
    seed=7,
)
@example(
    shapes=[(3, 2)],
    kw={"lr": 1.0, "betas": (0.0, 0.0), "eps": 1e-8, "weight_decay": 1.0, "amsgrad": False,
        "weight_decouple": True, "fixed_decay": True, "rectify": False, "degenerated_to_sgd": False},
    steps=3,
    seed=1,
)
def test_matches_package_bit_for_bit(shapes: list[tuple[int, ...]], kw: dict, steps: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    ours_p = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]
    ref_p = [torch.nn.Parameter(p.detach().clone()) for p in ours_p]
    ours = AdaBelief(ours_p, **kw)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = adabelief_pytorch.AdaBelief(ref_p, print_change_log=False, **kw)
    for _ in range(steps):
        for p, q in zip(ours_p, ref_p, strict=True):
            g = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.grad, q.grad = g, g.clone()
        ours.step()
        ref.step()
    for p, q in zip(ours_p, ref_p, strict=True):
        assert torch.equal(p, q)
        ours_s, ref_s = ours.state[p], ref.state[q]
        assert set(ours_s) == set(ref_s)
        assert ours_s["step"] == ref_s["step"] == steps
        for key in set(ours_s) - {"step"}:
            assert torch.equal(ours_s[key], ref_s[key]), key
