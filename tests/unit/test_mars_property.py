"""Properties of MARS over random shapes (empty, 0-D, 1-element, 1- to 4-D) and hyperparameters:
(1) gamma=0 without the clip is torch AdamW, with MARS's settings on 2-D tensors and the 1-D settings elsewhere;
(2) every instance equals a float64 transcription of the update rule in MARS's docstring."""

from __future__ import annotations

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from common.optim.newton_schulz import NS5_COEFFICIENTS
from papers.mars.optim import MARS

shape = st.lists(st.integers(min_value=0, max_value=4), max_size=4).map(tuple)  # () is 1 element, 0 is empty
beta = st.floats(0.0, 0.999)


def _grads(shapes: list[tuple[int, ...]], gen: torch.Generator, steps: int) -> list[list[torch.Tensor]]:
    return [[torch.randn(s, generator=gen, dtype=torch.float64) * (3.0 if t % 2 else 0.1) for s in shapes]
            for t in range(steps)]


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(shape, min_size=1, max_size=4),
    lr=st.floats(0.0, 0.5),
    beta1=beta,
    beta2=beta,
    betas_1d=st.tuples(beta, beta),
    eps=st.floats(1e-10, 1e-2),
    weight_decay=st.floats(0.0, 1.0),
    weight_decay_1d=st.floats(0.0, 1.0),
    lr_1d=st.floats(0.0, 0.5),
    amsgrad=st.booleans(),
    steps=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
@example(shapes=[(0,), (), (1,), (1, 1), (0, 3), (3, 0)], lr=1e-2, beta1=0.95, beta2=0.99, betas_1d=(0.9, 0.95),
         eps=1e-8, weight_decay=0.1, weight_decay_1d=0.1, lr_1d=3e-3, amsgrad=False, steps=5, seed=7)
def test_gamma0_without_clip_is_torch_adamw(
    shapes: list[tuple[int, ...]], lr: float, beta1: float, beta2: float, betas_1d: tuple[float, float], eps: float,
    weight_decay: float, weight_decay_1d: float, lr_1d: float, amsgrad: bool, steps: int, seed: int,
) -> None:
    gen = torch.Generator().manual_seed(seed)
    ours_p = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]
    ref_p = [torch.nn.Parameter(p.detach().clone()) for p in ours_p]
    lr = max(lr, 1e-6)  # lr = 0 cannot carry lr_1d (stored as a factor on lr)
    ours = MARS(ours_p, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, gamma=0.0,
                clip_c=False, lr_1d=lr_1d, betas_1d=betas_1d, weight_decay_1d=weight_decay_1d)
    refs = []
    for q in ref_p:
        if q.ndim == 2:
            kw = {"lr": lr, "betas": (beta1, beta2), "weight_decay": weight_decay}
        else:
            kw = {"lr": lr * (lr_1d / lr), "betas": betas_1d, "weight_decay": weight_decay_1d}
        refs.append(torch.optim.AdamW([q], eps=eps, amsgrad=amsgrad, foreach=False, **kw))
    for g in _grads(shapes, gen, steps):
        for p, q, gi in zip(ours_p, ref_p, g, strict=True):
            p.grad, q.grad = gi, gi.clone()
        ours.step()
        for ref in refs:
            ref.step()
    # Rounding order differs from torch (lerp for m, a different product order for theta): a tiny atol for entries
    # that cancel to ~0.
    for p, q in zip(ours_p, ref_p, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def _ns5(m: torch.Tensor, eps: float) -> torch.Tensor:
    """Float64 NS5 from the polynomial, X <- X (a I + b X^T X + c (X^T X)^2), no transpose."""
    a, b, c = NS5_COEFFICIENTS
    x = m / (torch.linalg.matrix_norm(m) + eps)
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    for _ in range(5):
        gram = x.T @ x
        x = x @ (a * eye + b * gram + c * gram @ gram)
    return x


def _reference_step(theta: torch.Tensor, g: torch.Tensor, st_: dict, hp: dict) -> torch.Tensor:
    """The MARS update rule, transcribed. ``st_`` holds t, m, v, vmax, last (zeros at the start)."""
    st_["t"] += 1
    t, eps = st_["t"], hp["eps"]
    if hp["optimize_1d"] or g.ndim == 2:
        b1, b2 = hp["betas"]
        c = g + hp["gamma"] * b1 / (1 - b1) * (g - st_["last"])
        if hp["clip_c"] and torch.linalg.vector_norm(c) > 1:
            c = c / torch.linalg.vector_norm(c)
        st_["m"] = b1 * st_["m"] + (1 - b1) * c
        kind = hp["mars_type"]
        if kind == "adamw" or (kind == "shampoo" and g.ndim != 2):
            st_["v"] = b2 * st_["v"] + (1 - b2) * c * c
            st_["vmax"] = torch.maximum(st_["vmax"], st_["v"])
            v = st_["vmax"] if hp["amsgrad"] else st_["v"]
            direction = (st_["m"] / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        elif kind == "lion":
            direction = st_["m"].sign()
        elif kind == "sgd":
            direction = st_["m"]
        elif g.numel() == 0:
            direction = g
        else:
            direction = _ns5(st_["m"] / (1 - b1), eps) * max(1.0, g.shape[0] / g.shape[1]) ** 0.5
        theta = theta - hp["lr"] * (hp["weight_decay"] * theta + direction)
    else:
        b1, b2 = hp["betas_1d"]
        st_["m"] = b1 * st_["m"] + (1 - b1) * g
        st_["v"] = b2 * st_["v"] + (1 - b2) * g * g
        st_["vmax"] = torch.maximum(st_["vmax"], st_["v"])
        v = st_["vmax"] if hp["amsgrad"] else st_["v"]
        direction = (st_["m"] / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        theta = theta - hp["lr"] * hp["lr_1d_factor"] * (hp["weight_decay_1d"] * theta + direction)
    st_["last"] = g
    return theta


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(shape, min_size=1, max_size=3),
    mars_type=st.sampled_from(["adamw", "lion", "shampoo", "sgd"]),
    gamma=st.floats(0.0, 1.0),
    beta1=beta,
    beta2=beta,
    weight_decay=st.floats(0.0, 0.5),
    clip_c=st.booleans(),
    optimize_1d=st.booleans(),
    amsgrad=st.booleans(),
    steps=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
@example(shapes=[(0, 3), (3, 0), (1, 1), (1,), ()], mars_type="shampoo", gamma=0.025, beta1=0.95, beta2=0.99,
         weight_decay=0.1, clip_c=True, optimize_1d=False, amsgrad=False, steps=4, seed=3)
@example(shapes=[(0,), (), (1, 1), (2, 3, 1)], mars_type="lion", gamma=1.0, beta1=0.0, beta2=0.0, weight_decay=0.0,
         clip_c=True, optimize_1d=True, amsgrad=True, steps=4, seed=5)
def test_every_instance_matches_the_transcribed_update_rule(
    shapes: list[tuple[int, ...]], mars_type: str, gamma: float, beta1: float, beta2: float, weight_decay: float,
    clip_c: bool, optimize_1d: bool, amsgrad: bool, steps: int, seed: int,
) -> None:
    gen = torch.Generator().manual_seed(seed)
    hp = {"lr": 1e-2, "betas": (beta1, beta2), "eps": 1e-8, "weight_decay": weight_decay, "amsgrad": amsgrad,
          "gamma": gamma, "mars_type": mars_type, "optimize_1d": optimize_1d, "clip_c": clip_c,
          "betas_1d": (0.9, 0.95), "weight_decay_1d": 0.1}
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]
    opt = MARS(params, lr_1d=5e-3, **hp)
    opt._newton_schulz_dtype = torch.float64  # test hook: the float64 rule, so the tolerance can be tight
    hp["lr_1d_factor"] = 5e-3 / hp["lr"]
    ref = [p.detach().clone() for p in params]
    states = [{"t": 0, **{k: torch.zeros_like(p) for k in ("m", "v", "vmax", "last")}} for p in ref]
    for g in _grads(shapes, gen, steps):
        for p, gi in zip(params, g, strict=True):
            p.grad = gi
        opt.step()
        ref = [_reference_step(r, gi, s_, hp) for r, gi, s_ in zip(ref, g, states, strict=True)]
        for p, r, s_ in zip(params, ref, states, strict=True):
            torch.testing.assert_close(p.detach(), r, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(opt.state[p]["exp_avg"], s_["m"], rtol=1e-9, atol=1e-12)
            assert torch.equal(opt.state[p]["last_grad"], s_["last"])
