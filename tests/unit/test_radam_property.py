"""Property: ours(degenerated_to_sgd=True) == torch.optim.RAdam(decoupled), any shapes and hyperparameters."""

from __future__ import annotations

import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from papers.radam.optim import RAdam, rho_t

shape = st.lists(st.integers(min_value=0, max_value=4), max_size=3).map(tuple)  # () is 1 element, 0 is empty


@settings(max_examples=80, deadline=None)
@given(
    shapes=st.lists(shape, min_size=1, max_size=3),
    lr=st.floats(0.0, 1.0),
    beta1=st.floats(0.0, 0.999),
    beta2=st.floats(0.0, 0.9999),
    eps=st.floats(1e-12, 1e-1),
    weight_decay=st.floats(0.0, 1.0),
    steps=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
# Empty and 1-element tensors through both phases; and the extremes beta=0, lr*wd=1.
@example(
    shapes=[(0,), (), (1,)], lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, steps=9, seed=7
)
@example(shapes=[(3, 2)], lr=1.0, beta1=0.0, beta2=0.0, eps=1e-12, weight_decay=1.0, steps=3, seed=1)
def test_matches_torch_radam_decoupled(
    shapes: list[tuple[int, ...]],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    steps: int,
    seed: int,
) -> None:
    # The only intended difference: torch rectifies on rho_t > 5, we on rho_t >= 5.
    assume(all(rho_t(t, beta2) != 5.0 for t in range(1, steps + 1)))
    gen = torch.Generator().manual_seed(seed)
    ours_p = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]
    ref_p = [torch.nn.Parameter(p.detach().clone()) for p in ours_p]
    kw = {"lr": lr, "betas": (beta1, beta2), "eps": eps, "weight_decay": weight_decay}
    ours = RAdam(ours_p, degenerated_to_sgd=True, **kw)
    ref = torch.optim.RAdam(ref_p, decoupled_weight_decay=True, foreach=False, **kw)
    for _ in range(steps):
        for p, q in zip(ours_p, ref_p, strict=True):
            g = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.grad, q.grad = g, g.clone()
        ours.step()
        ref.step()
    # The rounding order differs from torch's (it uses lerp for m, a different product order for theta), so
    # entries that cancel to ~0 (theta after decay and update, m after gradients of opposite sign) get a
    # tiny atol; v is a sum of positive terms and gets none.
    for p, q in zip(ours_p, ref_p, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
        ours_s, ref_s = ours.state[p], ref.state[q]
        torch.testing.assert_close(ours_s["exp_avg"], ref_s["exp_avg"], rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(ours_s["exp_avg_sq"], ref_s["exp_avg_sq"], rtol=1e-12, atol=0)
