"""The Shampoo baseline (papers/soap/shampoo.py): with preconditioning off it is torch's Adam/AdamW step for step
(DistributedShampoo's own grafting test pattern); preconditioned steps equal a float64 transcription of the update
written in the Shampoo docstring. Float64 with ``precise=True`` (float64 eigh), so tolerances are rounding-level
(1e-10/1e-12)."""

from __future__ import annotations

import io
import math

import pytest
import torch

from papers.soap.shampoo import Shampoo

SHAPES = [(8, 12), (12,), (4, 3, 2, 2), ()]
HYPERPARAMETER_KEYS = {
    "params", "lr", "betas", "shampoo_beta", "eps", "weight_decay", "precondition_frequency",
    "start_preconditioning_step", "inv_root", "matrix_eps", "max_precond_dim", "precise",
}


def make_params(shapes=SHAPES, dtype: torch.dtype = torch.float64, seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)) for s in shapes]


def clone_params(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def make_grads(steps: int, shapes=SHAPES, dtype: torch.dtype = torch.float64,
               seed: int = 1) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in shapes] for _ in range(steps)]


def apply(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], grads: list[torch.Tensor]) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    opt.step()


def inverse_root(matrix: torch.Tensor, exponent: float, floor: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(floor) ** -exponent) @ vectors.T


def shampoo_reference(theta: torch.Tensor, grads: list[torch.Tensor], *, lr: float, betas: tuple[float, float],
                      sb: float, eps: float, wd: float, f: int, start: float, p: float, floor: float,
                      max_dim: int) -> list[torch.Tensor]:
    """The Shampoo update in float64 with DistributedShampoo's order: M = EMA(G) is preconditioned by both
    L^-r . R^-r and the grafting Adam; the Shampoo direction takes the Adam direction's norm; decoupled decay; 1-D
    tensors are Adam."""
    b1, b2 = betas
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    matrix = theta.ndim >= 2
    rows = theta.shape[0] if matrix else 0
    cols = theta.numel() // rows if matrix else 0
    left, right = torch.zeros(rows, rows, dtype=theta.dtype), torch.zeros(cols, cols, dtype=theta.dtype)
    left_root, right_root = torch.eye(rows, dtype=theta.dtype), torch.eye(cols, dtype=theta.dtype)
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        adam = m_hat / ((v / (1 - b2**t)).sqrt() + eps)
        direction = adam
        if matrix:
            g2 = g.reshape(rows, cols)
            left = sb * left + (1 - sb) * g2 @ g2.T
            right = sb * right + (1 - sb) * g2.T @ g2
            if t % f == 0:
                left_root = inverse_root(left, 1 / (2 * p), floor) if rows <= max_dim else left_root
                right_root = inverse_root(right, 1 / (2 * p), floor) if cols <= max_dim else right_root
            if t >= start:
                s = left_root @ m_hat.reshape(rows, cols) @ right_root
                direction = (s * (torch.linalg.vector_norm(adam) / torch.linalg.vector_norm(s))).reshape(theta.shape)
        theta = theta * (1 - lr * wd) - lr * direction
        out.append(theta)
    return out


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_never_preconditioning_is_torch_adam_step_for_step(weight_decay: float) -> None:
    """start_preconditioning_step=inf: torch Adam (wd 0) / AdamW (decoupled wd), with the roots still computed."""
    lr, betas, eps = 1e-2, (0.9, 0.99), 1e-8
    ours_p = make_params()
    ref_p = clone_params(ours_p)
    ours = Shampoo(ours_p, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, precondition_frequency=3,
                   start_preconditioning_step=math.inf)
    cls = torch.optim.AdamW if weight_decay else torch.optim.Adam
    ref = cls(ref_p, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
    for g in make_grads(20):
        apply(ours, ours_p, g)
        apply(ref, ref_p, g)
        for p, q in zip(ours_p, ref_p, strict=True):
            torch.testing.assert_close(p, q, rtol=1e-14, atol=0)
    assert not torch.equal(ours.state[ours_p[0]]["roots"][0], torch.eye(8, dtype=torch.float64))


@pytest.mark.parametrize(("kwargs", "ref_kwargs"), [
    ({}, {"start": 3, "p": 2.5, "max_dim": 10000}),  # preconditioning starts at step f = 3
    ({"start_preconditioning_step": 5}, {"start": 5, "p": 2.5, "max_dim": 10000}),
    ({"inv_root": 2.0}, {"start": 3, "p": 2.0, "max_dim": 10000}),  # Gupta et al.'s L^-1/4 G R^-1/4
    ({"max_precond_dim": 10}, {"start": 3, "p": 2.5, "max_dim": 10}),  # (8, 12): the right side is the identity
])
def test_preconditioned_steps_match_the_float64_transcription(kwargs: dict, ref_kwargs: dict) -> None:
    lr, betas, eps, wd, sb = 1e-2, (0.9, 0.95), 1e-8, 0.05, 0.8
    params = make_params()
    start = [p.detach().clone() for p in params]
    opt = Shampoo(params, lr=lr, betas=betas, shampoo_beta=sb, eps=eps, weight_decay=wd, precondition_frequency=3,
                  precise=True, **kwargs)
    grads = make_grads(10)
    refs = [shampoo_reference(s, [g[i] for g in grads], lr=lr, betas=betas, sb=sb, eps=eps, wd=wd, f=3,
                              floor=1e-12, **ref_kwargs) for i, s in enumerate(start)]
    adamw_p = clone_params(params)
    adamw = torch.optim.AdamW(adamw_p, lr=lr, betas=betas, eps=eps, weight_decay=wd, foreach=False)
    for t, g in enumerate(grads, start=1):
        apply(opt, params, g)
        apply(adamw, adamw_p, g)
        for p, ref in zip(params, refs, strict=True):
            torch.testing.assert_close(p.detach(), ref[t - 1], rtol=1e-10, atol=1e-13)
        preconditioned = t >= ref_kwargs["start"]
        assert torch.equal(params[0], adamw_p[0]) != preconditioned  # Adam until the start step, not after
        torch.testing.assert_close(params[1], adamw_p[1], rtol=1e-14, atol=0)  # 1-D: always Adam


def test_grafted_update_has_the_norm_of_the_adam_update() -> None:
    lr, betas, eps = 1e-2, (0.9, 0.95), 1e-8
    params = make_params([(8, 12), (4, 3, 2, 2)])
    opt = Shampoo(params, lr=lr, betas=betas, eps=eps, weight_decay=0.0, precondition_frequency=2)
    for t, g in enumerate(make_grads(6, [(8, 12), (4, 3, 2, 2)]), start=1):
        before = [p.detach().clone() for p in params]
        apply(opt, params, g)
        for p, b in zip(params, before, strict=True):
            state = opt.state[p]
            adam = (state["exp_avg"] / (1 - betas[0] ** t)) / ((state["exp_avg_sq"] / (1 - betas[1] ** t)).sqrt() + eps)
            assert math.isclose(torch.linalg.vector_norm(p.detach() - b).item(),
                                lr * torch.linalg.vector_norm(adam).item(), rel_tol=1e-10)


def test_conv_kernels_use_the_matrix_view_and_huge_tensors_take_adam() -> None:
    params = make_params([(4, 3, 2, 2), (30, 40), (8, 40)])
    opt = Shampoo(params, max_precond_dim=20)
    apply(opt, params, make_grads(1, [(4, 3, 2, 2), (30, 40), (8, 40)])[0])
    kernel, huge, one_sided = (opt.state[p] for p in params)
    assert [tuple(f.shape) for f in kernel["GG"]] == [(4, 4), (12, 12)]
    assert "GG" not in huge and "roots" not in huge  # both sides > 20: Adam
    assert tuple(one_sided["GG"][0].shape) == (8, 8) and one_sided["GG"][1] == []


def test_zero_and_rank_deficient_gradients_stay_finite() -> None:
    """The eigenvalue floor keeps the roots finite; an all-zero M gives a zero (not NaN) grafted direction."""
    params = make_params([(6, 5)], dtype=torch.float32)
    opt = Shampoo(params, precondition_frequency=1, start_preconditioning_step=1, weight_decay=0.0)
    before = params[0].detach().clone()
    apply(opt, params, [torch.zeros(6, 5)])
    assert torch.equal(params[0], before)
    apply(opt, params, [torch.outer(torch.arange(6.0), torch.ones(5))])
    for root in opt.state[params[0]]["roots"]:
        assert bool(torch.isfinite(root).all())
    assert bool(torch.isfinite(params[0]).all()) and not torch.equal(params[0], before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("calls_before_save", [0, 2, 3, 4])  # f=2: call 2 and 4 recompute the roots, 3 is between
def test_resume_from_state_dict_is_bit_identical(calls_before_save: int, dtype: torch.dtype) -> None:
    kw = dict(lr=1e-2, precondition_frequency=2)
    grads = make_grads(8, dtype=dtype)
    ref_p = make_params(dtype=dtype)
    ref = Shampoo(ref_p, **kw)
    for g in grads:
        apply(ref, ref_p, g)
    params = make_params(dtype=dtype)
    opt = Shampoo(params, **kw)
    for g in grads[:calls_before_save]:
        apply(opt, params, g)
    buf = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    params = [torch.nn.Parameter(t.clone()) for t in saved["params"]]
    opt = Shampoo(params)
    opt.load_state_dict(saved["opt"])
    if calls_before_save:
        state = opt.state[params[0]]
        for t in [state["exp_avg"], state["exp_avg_sq"], *state["GG"], *state["roots"]]:
            assert t.dtype == torch.float32
    for g in grads[calls_before_save:]:
        apply(opt, params, g)
    for p, q in zip(params, ref_p, strict=True):
        assert torch.equal(p, q)
        for key, value in ref.state[q].items():
            mine = opt.state[p][key]
            if isinstance(value, list):
                assert all(torch.equal(a, b) for a, b in zip(mine, value, strict=True))
            else:
                assert torch.equal(torch.as_tensor(mine), torch.as_tensor(value))


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"lr": -1.0}, "lr"),
    ({"betas": (0.9, 1.0)}, "betas"),
    ({"shampoo_beta": 1.5}, "shampoo_beta"),
    ({"eps": 0.0}, "eps"),
    ({"weight_decay": -1.0}, "weight_decay"),
    ({"precondition_frequency": 0}, "precondition_frequency"),
    ({"start_preconditioning_step": 0}, "start_preconditioning_step"),
    ({"start_preconditioning_step": 2.5}, "start_preconditioning_step"),
    ({"start_preconditioning_step": 5}, "start_preconditioning_step"),  # < precondition_frequency (10)
    ({"inv_root": 0.0}, "inv_root"),
    ({"matrix_eps": 0.0}, "matrix_eps"),
    ({"max_precond_dim": -1}, "max_precond_dim"),
    ({"precise": "yes"}, "precise"),
])
def test_invalid_hyperparameters_raise_value_error_naming_the_argument(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Shampoo(make_params([(2, 2)]), **kwargs)
    with pytest.raises(ValueError, match=name):
        Shampoo([{"params": make_params([(2, 2)]), **kwargs}])


def test_closure_param_groups_and_sparse_gradients() -> None:
    a, b = make_params([(3, 2), (3, 2)])
    opt = Shampoo([{"params": [a]}, {"params": [b], "lr": 0.0}], precondition_frequency=1)
    b_before = b.detach().clone()

    def closure() -> torch.Tensor:
        assert torch.is_grad_enabled()
        opt.zero_grad()
        loss = (a**2).sum() + (b**2).sum()
        loss.backward()
        return loss

    first = opt.step(closure)
    assert opt.step(closure) < first
    assert torch.equal(b, b_before)
    for group in opt.param_groups:
        assert set(group) == HYPERPARAMETER_KEYS
    emb = torch.nn.Embedding(5, 3, sparse=True)
    sparse_opt = Shampoo(emb.parameters())
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        sparse_opt.step()
