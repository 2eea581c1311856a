"""Properties of SOAP over random shapes (0-D, 1-element, empty, 1- to 4-D) and options, in float64:
(1) with every rotation off (``max_precond_dim=0`` or ``freeze_basis``) it is HF-style AdamW fed g_1, g_2, ...;
(2) with rotations on (float64 eigh/QR), Q stays orthogonal, the factors have the merged layout's sizes, V >= 0, and
M, carried through every basis change, is the EMA of the raw gradients once mapped back to the original space."""

from __future__ import annotations

import math

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from papers.soap.layout import from_layout, merged_shape, to_layout
from papers.soap.optim import SOAP, _layout_for

shape = st.lists(st.integers(min_value=0, max_value=4), max_size=4).map(tuple)  # () is 1 element, 0 is empty
beta = st.floats(0.0, 0.99)


def _grads(shapes: list[tuple[int, ...]], seed: int, steps: int) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen, dtype=torch.float64) * (2.0 if t % 2 else 0.5) for s in shapes]
            for t in range(steps)]


def _apply(opt: SOAP, params: list[torch.nn.Parameter], grads: list[torch.Tensor]) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    opt.step()


@settings(max_examples=30, deadline=None)
@given(
    shapes=st.lists(shape, min_size=1, max_size=3),
    lr=st.floats(0.0, 0.1),
    beta1=beta,
    beta2=beta,
    eps=st.floats(1e-10, 1e-2),
    weight_decay=st.floats(0.0, 1.0),
    freeze=st.booleans(),
    merge_dims=st.booleans(),
    precondition_1d=st.booleans(),
    correct_bias=st.booleans(),
    steps=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
@example(shapes=[(0,), (), (1,), (1, 1), (0, 3), (3, 0)], lr=1e-2, beta1=0.95, beta2=0.95, eps=1e-8,
         weight_decay=0.1, freeze=False, merge_dims=True, precondition_1d=True, correct_bias=True, steps=4, seed=7)
def test_without_rotation_soap_is_hf_adamw_from_the_second_gradient(
    shapes, lr, beta1, beta2, eps, weight_decay, freeze, merge_dims, precondition_1d, correct_bias, steps, seed
) -> None:
    gen = torch.Generator().manual_seed(seed + 1)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]
    thetas = [p.detach().clone() for p in params]
    opt = SOAP(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, precondition_frequency=2,
               merge_dims=merge_dims, precondition_1d=precondition_1d, correct_bias=correct_bias,
               **({"freeze_basis": True} if freeze else {"max_precond_dim": 0}))
    grads = _grads(shapes, seed, steps)
    ms = [torch.zeros_like(t) for t in thetas]
    vs = [torch.zeros_like(t) for t in thetas]
    _apply(opt, params, grads[0])
    for t, gs in enumerate(grads[1:], start=1):
        _apply(opt, params, gs)
        step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t) if correct_bias else lr
        for i, g in enumerate(gs):
            ms[i] = beta1 * ms[i] + (1 - beta1) * g
            vs[i] = beta2 * vs[i] + (1 - beta2) * g * g
            thetas[i] = (thetas[i] - step_size * ms[i] / (vs[i].sqrt() + eps)) * (1 - lr * weight_decay)
    for p, theta in zip(params, thetas, strict=True):
        torch.testing.assert_close(p.detach(), theta, rtol=1e-11, atol=1e-13)


def _mode_product(t: torch.Tensor, q: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.movedim(torch.tensordot(q, t, dims=([1], [dim])), 0, dim)


@settings(max_examples=30, deadline=None)
@given(
    shapes=st.lists(shape, min_size=1, max_size=3),
    beta1=beta,
    merge_dims=st.booleans(),
    precondition_1d=st.booleans(),
    channels_last=st.booleans(),
    max_precond_dim=st.sampled_from([2, 3, 10000]),
    frequency=st.integers(1, 3),
    steps=st.integers(1, 7),
    seed=st.integers(0, 2**16),
)
@example(shapes=[(2, 3, 2, 2), (5,), ()], beta1=0.9, merge_dims=True, precondition_1d=True, channels_last=True,
         max_precond_dim=10000, frequency=2, steps=6, seed=3)
def test_rotated_state_invariants(
    shapes, beta1, merge_dims, precondition_1d, channels_last, max_precond_dim, frequency, steps, seed
) -> None:
    gen = torch.Generator().manual_seed(seed + 1)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]
    opt = SOAP(params, lr=1e-2, betas=(beta1, 0.95), precondition_frequency=frequency, merge_dims=merge_dims,
               precondition_1d=precondition_1d, max_precond_dim=max_precond_dim,
               data_format="channels_last" if channels_last else "channels_first", precise=True)
    grads = _grads(shapes, seed, steps)
    ema = [torch.zeros(s, dtype=torch.float64) for s in shapes]
    _apply(opt, params, grads[0])
    for gs in grads[1:]:
        _apply(opt, params, gs)
        ema = [beta1 * m + (1 - beta1) * g for m, g in zip(ema, gs, strict=True)]
    group = opt.param_groups[0]
    for p, m_ref in zip(params, ema, strict=True):
        state = opt.state[p]
        assert p.shape == m_ref.shape and bool(torch.isfinite(p).all())
        assert state["step"] == steps - 1 and bool((state["exp_avg_sq"] >= 0).all())
        layout = _layout_for(p, group)
        if p.numel() == 0:
            sizes = [None] * p.ndim
        elif p.ndim == 1:
            sizes = [p.shape[0] if precondition_1d and p.shape[0] <= max_precond_dim else None]
        else:
            view = p.permute(0, 3, 1, 2) if merge_dims and channels_last and p.ndim == 4 else p
            dims = merged_shape(tuple(view.shape), max_precond_dim) if merge_dims else list(p.shape)
            sizes = [k if k <= max_precond_dim else None for k in dims]
        got = [q.shape[0] if isinstance(q, torch.Tensor) else None for q in state["Q"]]
        assert got == sizes
        assert [f.shape[0] if isinstance(f, torch.Tensor) else None for f in state["GG"]] == sizes
        m = to_layout(state["exp_avg"], layout)
        for dim, q in enumerate(state["Q"]):
            if isinstance(q, torch.Tensor):
                torch.testing.assert_close(q.T @ q, torch.eye(q.shape[0], dtype=torch.float64), rtol=0, atol=1e-12)
                m = _mode_product(m, q, dim)
        torch.testing.assert_close(from_layout(m, p.shape, layout), m_ref, rtol=1e-10, atol=1e-12)
