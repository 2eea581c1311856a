"""Riemannian Adam/SGD against geoopt 0.5.1 (the reference implementation) in float64, step by step, with the
state; and the Euclidean reduction to torch.optim.Adam / AMSGrad / Adagrad / SGD."""

from __future__ import annotations

import geoopt
import pytest
import torch

from papers.riemannian_adam import PoincareBall, RiemannianAdagrad, RiemannianAdam, RiemannianSGD, tag_manifold

F64 = torch.float64
SHAPES = [(7, 5), (3, 4, 2), (11, 3)]
STEPS = 50


def _ball_point(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Random rows of norm <= 0.9."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=F64)
    radius = 0.9 * torch.rand((*shape[:-1], 1), generator=g, dtype=F64)
    return x / x.norm(dim=-1, keepdim=True) * radius


def _grads(shape: tuple[int, ...], seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed + 1000)
    return [torch.randn(shape, generator=g, dtype=F64) for _ in range(STEPS)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _geoopt_ball(exact: bool) -> geoopt.PoincareBall:
    # c as a float64 tensor: geoopt stores softplus^-1(c) and would round it in float32 otherwise (c = 1 + 6e-8)
    cls = geoopt.PoincareBallExact if exact else geoopt.PoincareBall
    return cls(c=torch.tensor(1.0, dtype=F64))


def _run_pair(shape, seed, make_ours, make_theirs, exact):
    x0 = _ball_point(shape, seed)
    theirs = geoopt.ManifoldParameter(x0.clone(), manifold=_geoopt_ball(exact))
    ours = tag_manifold(torch.nn.Parameter(x0.clone()), PoincareBall())
    opt_t, opt_o = make_theirs([theirs]), make_ours([ours])
    _run_pair.max_norm = 0.0  # the largest row norm seen during the run
    worst = {"x": 0.0, "exp_avg": 0.0, "exp_avg_sq": 0.0, "max_exp_avg_sq": 0.0}
    for g in _grads(shape, seed):
        theirs.grad, ours.grad = g.clone(), g.clone()
        opt_t.step()
        opt_o.step()
        worst["x"] = max(worst["x"], _rel(ours.detach(), theirs.detach()))
        _run_pair.max_norm = max(_run_pair.max_norm, float(ours.detach().norm(dim=-1).max()))
        st, so = opt_t.state[theirs], opt_o.state[ours]
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if key in st:
                ref = st[key] if key == "exp_avg" else st[key][..., :1]  # geoopt stores v broadcast over the row
                worst[key] = max(worst[key], _rel(so[key], ref))
    return ours, theirs, opt_o, opt_t, worst


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("exact", [False, True], ids=["PoincareBall", "PoincareBallExact"])
def test_riemannian_adam_matches_geoopt_in_float64(shape, weight_decay, amsgrad, exact):
    kw = dict(lr=0.05, betas=(0.9, 0.99), amsgrad=amsgrad, weight_decay=weight_decay)
    ours, theirs, opt_o, opt_t, worst = _run_pair(
        shape, 3, lambda p: RiemannianAdam(p, update="expmap" if exact else "retraction", **kw),
        lambda p: geoopt.optim.RiemannianAdam(p, **kw), exact)
    assert max(worst.values()) < 1e-10, worst
    so, st = opt_o.state[ours], opt_t.state[theirs]
    assert so["step"] == st["step"] == STEPS
    assert so["exp_avg_sq"].shape == (*shape[:-1], 1)  # one v per row: per factor, as in the paper
    # geoopt's is one v per row too, broadcast (equal to rounding)
    assert _rel(st["exp_avg_sq"], st["exp_avg_sq"][..., :1].expand(shape)) < 1e-14
    assert ("max_exp_avg_sq" in so) == amsgrad
    assert float(ours.detach().norm(dim=-1).max()) < 1.0
    assert _rel(ours.detach(), _ball_point(shape, 3)) > 1e-3  # it moved


def test_amsgrad_parity_exercises_the_max():
    """Shrinking gradients make v fall, so AMSGrad's max differs from v: the amsgrad case above is not vacuous."""
    shape, x0 = (7, 5), _ball_point((7, 5), 0)
    theirs = geoopt.ManifoldParameter(x0.clone(), manifold=_geoopt_ball(False))
    ours = tag_manifold(torch.nn.Parameter(x0.clone()), PoincareBall())
    opt_t = geoopt.optim.RiemannianAdam([theirs], lr=0.01, betas=(0.9, 0.5), amsgrad=True)
    opt_o = RiemannianAdam([ours], lr=0.01, betas=(0.9, 0.5), amsgrad=True)
    for i, g in enumerate(_grads(shape, 0)):
        theirs.grad = ours.grad = None
        theirs.grad, ours.grad = g * 0.8**i, g * 0.8**i
        opt_t.step()
        opt_o.step()
    so = opt_o.state[ours]
    assert (so["max_exp_avg_sq"] > so["exp_avg_sq"] * 1.5).all()
    assert _rel(ours.detach(), theirs.detach()) < 1e-10
    assert _rel(so["max_exp_avg_sq"], opt_t.state[theirs]["max_exp_avg_sq"][..., :1]) < 1e-10


@pytest.mark.parametrize("exact", [False, True], ids=["PoincareBall", "PoincareBallExact"])
@pytest.mark.parametrize("shape", SHAPES)
def test_riemannian_sgd_matches_geoopt(shape, exact):
    ours, theirs, *_, worst = _run_pair(
        shape, 5, lambda p: RiemannianSGD(p, lr=0.3, weight_decay=0.1, update="expmap" if exact else "retraction"),
        lambda p: geoopt.optim.RiemannianSGD(p, lr=0.3, weight_decay=0.1), exact)
    assert worst["x"] < 1e-10, worst


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_stabilize_matches_geoopt(opt):
    if opt == "adam":
        pair = (lambda p: RiemannianAdam(p, lr=5.0, stabilize=5), lambda p: geoopt.optim.RiemannianAdam(
            p, lr=5.0, stabilize=5))
    else:
        pair = (lambda p: RiemannianSGD(p, lr=3.0, stabilize=5), lambda p: geoopt.optim.RiemannianSGD(
            p, lr=3.0, stabilize=5))
    ours, theirs, *_, worst = _run_pair((7, 5), 9, *pair, exact=False)
    assert worst["x"] < 1e-10 and worst["exp_avg_sq"] < 1e-10, worst
    # At the clip radius (1 - |x|^2 ~ 2e-5) parallel transport is ill-conditioned: float64 keeps about 6 digits
    # of m there, in geoopt and here alike (test_riemannian_optim's isometry test measures both).
    assert worst["exp_avg"] < 1e-4, worst
    # the large lr drives rows to the clip radius 1 - 1e-5 at some step: the projection is exercised
    assert _run_pair.max_norm == pytest.approx(1 - 1e-5, abs=1e-12)


def test_lazy_matches_geoopt_sparse_adam_on_the_rows_with_a_gradient():
    """lazy=True is SparseRiemannianAdam's semantics (without amsgrad, where geoopt writes a wrong max back)."""
    shape, x0 = (9, 4), _ball_point((9, 4), 2)
    theirs = geoopt.ManifoldParameter(x0.clone(), manifold=_geoopt_ball(False))
    ours = tag_manifold(torch.nn.Parameter(x0.clone()), PoincareBall())
    opt_t = geoopt.optim.SparseRiemannianAdam([theirs], lr=0.05)
    opt_o = RiemannianAdam([ours], lr=0.05, lazy=True)
    gen = torch.Generator().manual_seed(4)
    for _ in range(30):
        rows = torch.randperm(9, generator=gen)[:3]
        g = torch.zeros(shape, dtype=F64)
        g[rows] = torch.randn(3, 4, generator=gen, dtype=F64)
        theirs.grad = g.to_sparse()
        ours.grad = g.clone()
        opt_t.step()
        opt_o.step()
    assert _rel(ours.detach(), theirs.detach()) < 1e-10
    assert _rel(opt_o.state[ours]["exp_avg"], opt_t.state[theirs]["exp_avg"]) < 1e-10
    # a dense step moves rows without a gradient (by momentum); the lazy one leaves them alone
    dense = tag_manifold(torch.nn.Parameter(x0.clone()), PoincareBall())
    opt_d = RiemannianAdam([dense], lr=0.05)
    g = torch.zeros(shape, dtype=F64)
    g[0] = 1.0
    for _ in range(2):
        dense.grad = g.clone()
        opt_d.step()
    dense.grad = torch.zeros(shape, dtype=F64)
    dense.grad[1] = 1.0
    before = dense.detach().clone()
    opt_d.step()
    assert not torch.equal(dense[0], before[0])


# ---------------------------------------------------------------- Euclidean reduction


def _euclid(shape=(6, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=F64)


def _compare(ours_make, theirs_make, steps=STEPS, rtol=1e-12, exact=False):
    x0 = _euclid()
    a, b = torch.nn.Parameter(x0.clone()), torch.nn.Parameter(x0.clone())
    oa, ob = ours_make([a]), theirs_make([b])
    gen = torch.Generator().manual_seed(7)
    for _ in range(steps):
        g = torch.randn(x0.shape, generator=gen, dtype=F64)
        a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
    if exact:
        assert torch.equal(a, b)
    assert _rel(a.detach(), b.detach()) < rtol
    return oa, ob, a, b


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_euclidean_adam_is_torch_adam(amsgrad, weight_decay):
    kw = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay, amsgrad=amsgrad)
    oa, ob, a, b = _compare(lambda p: RiemannianAdam(p, manifold="euclidean", **kw),
                            lambda p: torch.optim.Adam(p, foreach=False, **kw))
    sa, sb = oa.state[a], ob.state[b]
    assert _rel(sa["exp_avg_sq"], sb["exp_avg_sq"]) < 1e-12 and _rel(sa["exp_avg"], sb["exp_avg"]) < 1e-12
    if amsgrad:
        assert _rel(sa["max_exp_avg_sq"], sb["max_exp_avg_sq"]) < 1e-12


def test_euclidean_adagrad_is_torch_adagrad():
    kw = dict(lr=0.1, eps=1e-10, weight_decay=0.05)
    _compare(lambda p: RiemannianAdagrad(p, manifold="euclidean", **kw),
             lambda p: torch.optim.Adagrad(p, lr_decay=0, initial_accumulator_value=0, foreach=False, **kw))


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_euclidean_sgd_is_torch_sgd_exactly(momentum, nesterov):
    kw = dict(lr=0.05, momentum=momentum, nesterov=nesterov, weight_decay=0.01)
    _compare(lambda p: RiemannianSGD(p, manifold="euclidean", **kw),
             lambda p: torch.optim.SGD(p, foreach=False, **kw), exact=momentum == 0)


def test_euclidean_adam_matches_geoopt_on_plain_tensors():
    kw = dict(lr=0.01, amsgrad=True, weight_decay=0.1)
    _compare(lambda p: RiemannianAdam(p, manifold="euclidean", **kw), lambda p: geoopt.optim.RiemannianAdam(p, **kw))
