"""Riemannian optimizers on the Poincaré ball: hand-derived first steps, intrinsic invariance, transport, stability,
the tag rules, bad input, state_dict and param groups, and a fuzz test. Parity with geoopt and the Euclidean
reduction are in test_riemannian_parity.py; the generic contract (Euclidean params) runs through the zoo."""

from __future__ import annotations

import io
import math

import geoopt
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papers.riemannian_adam import PoincareBall, RiemannianAdagrad, RiemannianAdam, RiemannianSGD, tag_manifold
from papers.riemannian_adam.manifolds import BALL_EPS, Euclidean, ball_distance, manifold_of

F64 = torch.float64
BALL = PoincareBall()


def _point(shape=(6, 4), radius=0.8, seed=0, dtype=F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=F64)
    r = radius * torch.rand((*shape[:-1], 1), generator=g, dtype=F64)
    return (x / x.norm(dim=-1, keepdim=True) * r).to(dtype)


def _param(shape=(6, 4), radius=0.8, seed=0, dtype=F64) -> torch.nn.Parameter:
    return tag_manifold(torch.nn.Parameter(_point(shape, radius, seed, dtype)), BALL)


def _grad(shape, seed) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _lam2(x: torch.Tensor) -> torch.Tensor:
    return (2 / (1 - (x * x).sum(-1, keepdim=True))) ** 2


# ---------------------------------------------------------------- hand-derived first step


def test_first_second_moment_is_the_riemannian_squared_norm():
    p = _param()
    x0, g = p.detach().clone(), _grad(p.shape, 1)
    opt = RiemannianAdam([p], lr=0.0, betas=(0.9, 0.999))  # lr 0: x stays, so m is not transported
    p.grad = g.clone()
    opt.step()
    expected = (1 - 0.999) * (g * g).sum(-1, keepdim=True) / _lam2(x0)  # (1 - b2) |g|^2 / lambda^2
    torch.testing.assert_close(opt.state[p]["exp_avg_sq"], expected, rtol=1e-13, atol=0)
    torch.testing.assert_close(opt.state[p]["exp_avg"], 0.1 * g / _lam2(x0), rtol=1e-13, atol=0)


@pytest.mark.parametrize("lr", [1e-3, 0.05, 0.7])
def test_first_expmap_step_moves_exactly_lr_in_distance(lr):
    """Bias corrected with eps = 0, step 1 is -lr r / |r|_x: a geodesic step of length lr, for every row."""
    p = _param(radius=0.9)
    x0 = p.detach().clone()
    opt = RiemannianAdam([p], lr=lr, eps=0.0, update="expmap")
    p.grad = _grad(p.shape, 2)
    opt.step()
    torch.testing.assert_close(ball_distance(x0, p.detach()), torch.full((6,), lr, dtype=F64), rtol=1e-10, atol=0)


def test_paper_mode_scales_the_first_step_by_one_minus_beta1_over_root_one_minus_beta2():
    betas = (0.9, 0.99)
    p = _param(radius=0.5)
    x0 = p.detach().clone()
    opt = RiemannianAdam([p], lr=0.02, betas=betas, semantics="paper")
    assert opt.param_groups[0]["eps"] == 0.0 and not opt.param_groups[0]["bias_correction"]
    assert opt.param_groups[0]["update"] == "expmap"
    p.grad = _grad(p.shape, 3)
    opt.step()
    scale = (1 - betas[0]) / math.sqrt(1 - betas[1])
    torch.testing.assert_close(ball_distance(x0, p.detach()), torch.full((6,), 0.02 * scale, dtype=F64),
                               rtol=1e-10, atol=0)


def test_paper_mode_rows_with_zero_second_moment_do_not_move():
    p = _param()
    x0 = p.detach().clone()
    opt = RiemannianAdam([p], lr=0.1, semantics="paper")
    for t in range(3):
        g = _grad(p.shape, t)
        g[2] = 0.0  # row 2 never gets a gradient: v = 0, m = 0, 0/0 is taken as 0
        p.grad = g
        opt.step()
    assert torch.equal(p[2], x0[2]) and torch.isfinite(p).all()
    assert not torch.equal(p[0], x0[0])


def test_radagrad_first_step_is_a_unit_direction_and_eps_zero_is_the_paper():
    p = _param(radius=0.6)
    x0 = p.detach().clone()
    opt = RiemannianAdagrad([p], lr=0.1, eps=0.0, update="expmap")
    p.grad = _grad(p.shape, 4)
    opt.step()
    torch.testing.assert_close(ball_distance(x0, p.detach()), torch.full((6,), 0.1, dtype=F64), rtol=1e-10, atol=0)
    assert opt.state[p]["sum"].shape == (6, 1)


def test_rsgd_step_is_x_minus_lr_times_the_riemannian_gradient_projected():
    p = _param()
    x0, g = p.detach().clone(), _grad(p.shape, 5)
    opt = RiemannianSGD([p], lr=0.01)
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), x0 - 0.01 * g / _lam2(x0), rtol=1e-14, atol=0)


# ---------------------------------------------------------------- intrinsic invariance and transport


def _rotation(d: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=F64))
    return q


@pytest.mark.parametrize("update", ["retraction", "expmap"])
def test_factor_rule_commutes_with_a_rotation_of_every_row_and_elementwise_does_not(update):
    q = _rotation(4, 0)
    gaps = {}
    for adaptivity in ("factor", "elementwise"):
        a, b = _param(), tag_manifold(torch.nn.Parameter(_point() @ q), BALL)
        oa = RiemannianAdam([a], lr=0.05, adaptivity=adaptivity, update=update)
        ob = RiemannianAdam([b], lr=0.05, adaptivity=adaptivity, update=update)
        for t in range(20):
            g = _grad(a.shape, 10 + t)
            a.grad, b.grad = g.clone(), g @ q
            oa.step()
            ob.step()
        gaps[adaptivity] = float((a.detach() @ q - b.detach()).abs().max())
    assert gaps["factor"] < 1e-12, gaps
    assert gaps["elementwise"] > 1e-4, gaps


@pytest.mark.parametrize("radius", [0.0, 0.5, 0.9, 0.99])
def test_transport_is_an_isometry(radius):
    x = _point((200, 5), radius, 0) if radius else torch.zeros(200, 5, dtype=F64)
    u = _grad((200, 5), 1) * 0.1 * (1 - radius**2)
    y = BALL.retr(x, u)
    v = _grad((200, 5), 2)
    moved = BALL.transp(x, y, v)
    torch.testing.assert_close(BALL.norm(y, moved), BALL.norm(x, v), rtol=1e-11, atol=0)
    # and it keeps inner products (a linear isometry), and transporting back returns v
    w = _grad((200, 5), 3)
    inner = (_lam2(x) * (v * w).sum(-1, keepdim=True))
    torch.testing.assert_close(_lam2(y) * (moved * BALL.transp(x, y, w)).sum(-1, keepdim=True), inner,
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(BALL.transp(y, x, moved), v, rtol=1e-10, atol=1e-12)


def test_transport_near_the_clip_radius_is_as_accurate_as_geoopts():
    """At |x| = 1 - 1e-5 both lose digits to cancellation; ours is no worse (what the stabilize parity allows)."""
    ref = geoopt.PoincareBall(c=torch.tensor(1.0, dtype=F64))
    x = _point((1000, 5), 1 - 1e-5, 4)
    x = x / x.norm(dim=-1, keepdim=True) * (1 - 1e-5)
    y = BALL.projx(x + _grad((1000, 5), 5) * 1e-6)
    v = _grad((1000, 5), 6)
    ours = (BALL.norm(y, BALL.transp(x, y, v)) / BALL.norm(x, v) - 1).abs().max()
    theirs = (BALL.norm(y, ref.transp(x, y, v)) / BALL.norm(x, v) - 1).abs().max()
    assert ours < 1e-4 and ours <= 2 * theirs


def test_manifold_primitives_match_geoopt():
    ref = geoopt.PoincareBall(c=torch.tensor(1.0, dtype=F64))
    x, y = _point((50, 3), 0.9, 0), _point((50, 3), 0.9, 1)
    u = _grad((50, 3), 2) * 0.3
    torch.testing.assert_close(BALL.mobius_add(x, y), ref.mobius_add(x, y, project=False), rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(BALL.expmap(x, u), ref.expmap(x, u, project=False), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(BALL.transp(x, y, u), ref.transp(x, y, u), rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(ball_distance(x, y), ref.dist(x, y), rtol=1e-10, atol=0)
    torch.testing.assert_close(BALL.egrad2rgrad(x, u, None), ref.egrad2rgrad(x, u), rtol=1e-14, atol=0)


def test_distance_of_a_point_to_itself_is_zero_with_a_finite_gradient():
    x = _point((4, 3), 0.999, 0).requires_grad_()
    d = ball_distance(x, x.detach())
    d.sum().backward()
    assert torch.equal(d, torch.zeros(4, dtype=F64)) and torch.isfinite(x.grad).all()
    # and a tiny distance keeps its digits (arcosh(1 + z) would keep about half of them)
    y = torch.tensor([[0.3, 0.0]], dtype=F64)
    z = y + torch.tensor([[1e-9, 0.0]], dtype=F64)
    expected = 2 * math.atanh(0.3 + 1e-9) - 2 * math.atanh(0.3)  # along a diameter d = 2 artanh(b) - 2 artanh(a)
    assert float(ball_distance(y, z)) == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- stability


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("make", [
    lambda p: RiemannianAdam(p, lr=10.0), lambda p: RiemannianAdam(p, lr=10.0, update="expmap", amsgrad=True),
    lambda p: RiemannianAdam(p, lr=10.0, semantics="paper"), lambda p: RiemannianSGD(p, lr=10.0),
    lambda p: RiemannianAdagrad(p, lr=10.0, update="expmap"),
], ids=["adam-retr", "amsgrad-exp", "paper", "rsgd", "radagrad"])
def test_a_thousand_steps_at_lr_10_stay_inside_the_ball(make, dtype):
    p = _param((8, 5), 0.5, 0, dtype)
    opt = make([p])
    gen = torch.Generator().manual_seed(0)
    top = 0.0
    for _ in range(1000):
        p.grad = (torch.randn(p.shape, generator=gen, dtype=F64) * 10).to(dtype)
        opt.step()
        top = max(top, float(p.detach().double().norm(dim=-1).max()))
    assert torch.isfinite(p).all()
    assert top <= 1 - BALL_EPS[dtype] + 1e-6  # float32 rounding of the clipped row
    for v in opt.state[p].values():
        assert not isinstance(v, torch.Tensor) or torch.isfinite(v).all()


# ---------------------------------------------------------------- tags, contract, bad input


def test_an_untagged_parameter_is_an_error_never_silent_euclidean_adam():
    plain = torch.nn.Parameter(_point())
    for cls in (RiemannianAdam, RiemannianSGD, RiemannianAdagrad):
        with pytest.raises(ValueError, match="has no manifold"):
            cls([plain])
    opt = RiemannianAdam([plain], manifold="poincare")  # a group-level manifold is explicit too
    plain.grad = _grad(plain.shape, 0)
    opt.step()
    assert opt.state[plain]["exp_avg_sq"].shape == (6, 1)


def test_tags_win_over_the_group_manifold_and_mixed_groups_work():
    ball, flat = _param(), torch.nn.Parameter(torch.randn(3, 2, dtype=F64))
    opt = RiemannianAdam([{"params": [ball]}, {"params": [flat], "lr": 0.1}], lr=0.01, manifold="euclidean")
    ball.grad, flat.grad = _grad(ball.shape, 0), _grad(flat.shape, 1)
    opt.step()
    assert opt.state[ball]["exp_avg_sq"].shape == (6, 1)  # tagged: the ball, though the group says euclidean
    assert opt.state[flat]["exp_avg_sq"].shape == (3, 2)
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["manifold"] == "euclidean"
    assert manifold_of(ball) == PoincareBall() and manifold_of(flat) is None


@pytest.mark.parametrize("bad,match", [
    (lambda: torch.full((2, 3), 0.7, dtype=F64), "inside the unit ball"),
    (lambda: torch.tensor(0.1, dtype=F64), "at least one dimension"),
    (lambda: torch.zeros(2, 3, dtype=torch.bfloat16), "float32 or float64"),
])
def test_tagging_an_impossible_ball_parameter_is_a_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        tag_manifold(torch.nn.Parameter(bad()), "poincare")


def test_a_ball_parameter_pushed_outside_before_the_first_step_is_caught():
    p = _param()
    opt = RiemannianAdam([p])
    with torch.no_grad():
        p.mul_(10)
    p.grad = _grad(p.shape, 0)
    with pytest.raises(ValueError, match="inside the unit ball"):
        opt.step()


def test_a_geoopt_parameter_is_refused_not_guessed():
    gp = geoopt.ManifoldParameter(_point(), manifold=geoopt.PoincareBall())
    with pytest.raises(ValueError, match="not one of ours"):
        RiemannianAdam([gp], manifold="euclidean")


@pytest.mark.parametrize("cls,kw,name", [
    (RiemannianAdam, {"update": "exp"}, "update"),
    (RiemannianAdam, {"adaptivity": "row"}, "adaptivity"),
    (RiemannianAdam, {"semantics": "official"}, "semantics"),
    (RiemannianAdam, {"bias_correction": 1}, "bias_correction"),
    (RiemannianAdam, {"amsgrad": "yes"}, "amsgrad"),
    (RiemannianAdam, {"stabilize": 0}, "stabilize"),
    (RiemannianAdam, {"stabilize": True}, "stabilize"),
    (RiemannianAdam, {"lazy": None}, "lazy"),
    (RiemannianAdam, {"manifold": "sphere"}, "manifold"),
    (RiemannianAdam, {"eps": -1e-8}, "eps"),
    (RiemannianAdagrad, {"eps": float("nan")}, "eps"),
    (RiemannianAdagrad, {"adaptivity": "rows"}, "adaptivity"),
    (RiemannianSGD, {"momentum": -0.1}, "momentum"),
    (RiemannianSGD, {"nesterov": True}, "nesterov"),
    (RiemannianSGD, {"dampening": float("inf")}, "dampening"),
])
def test_bad_options_are_one_value_error_naming_the_argument(cls, kw, name):
    with pytest.raises(ValueError, match=name) as info:
        cls([_param()], **kw)
    assert "\n" not in str(info.value)
    opt = cls([_param()])
    with pytest.raises(ValueError, match=name):  # a later param group is checked as early
        opt.add_param_group({"params": [_param(seed=1)], **kw})


@pytest.mark.parametrize("make", [lambda p: RiemannianAdam(p, lr=0.1, weight_decay=0.1, amsgrad=True),
                                  lambda p: RiemannianAdagrad(p, weight_decay=0.1),
                                  lambda p: RiemannianSGD(p, lr=0.1, weight_decay=0.1, momentum=0.9)])
def test_the_gradient_is_never_written(make):
    p = _param()
    opt = make([p])
    g = _grad(p.shape, 0)
    p.grad = g.clone()
    opt.step()
    assert torch.equal(p.grad, g)


@pytest.mark.parametrize("make", [
    lambda p: RiemannianAdam(p, lr=0.05, amsgrad=True, update="expmap", stabilize=2),
    lambda p: RiemannianAdam(p, lr=0.05, lazy=True, semantics="paper"),
    lambda p: RiemannianAdagrad(p, lr=0.05), lambda p: RiemannianSGD(p, lr=0.5, momentum=0.9),
], ids=["amsgrad", "lazy-paper", "adagrad", "sgd-momentum"])
def test_ball_state_dict_round_trip_resumes_bit_identically(make):
    def grads(t):
        g = _grad((6, 4), 100 + t)
        g[t % 6] = 0.0  # a row without gradient: lazy rows keep their state
        return g

    a = _param()
    oa = make([a])
    for t in range(6):
        a.grad = grads(t)
        oa.step()
    b = _param()
    ob = make([b])
    for t in range(3):
        b.grad = grads(t)
        ob.step()
    buffer = io.BytesIO()
    torch.save({"x": b.detach().clone(), "opt": ob.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    c = tag_manifold(torch.nn.Parameter(saved["x"]), BALL)
    oc = make([c])
    oc.load_state_dict(saved["opt"])
    assert oc.state[c]["step"] == 3 and isinstance(oc.state[c]["step"], int)
    for t in range(3, 6):
        c.grad = grads(t)
        oc.step()
    assert torch.equal(a, c)
    for key, value in oa.state[a].items():
        assert torch.equal(value, oc.state[c][key]) if isinstance(value, torch.Tensor) else value == oc.state[c][key]


def test_closure_and_lr_scheduler():
    p = _param()
    opt = RiemannianAdam([p], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    target = _point(seed=3)

    def closure():
        opt.zero_grad()
        loss = ball_distance(p, target).pow(2).sum()
        loss.backward()
        return loss

    first = float(opt.step(closure).detach())
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.05
    for _ in range(30):
        last = float(opt.step(closure).detach())
    assert last < first


def test_lazy_equals_dense_when_every_row_has_a_gradient_and_euclidean_factor_equals_elementwise():
    a, b = _param(), _param()
    oa, ob = RiemannianAdam([a], lr=0.05, lazy=True), RiemannianAdam([b], lr=0.05)
    e, f = (torch.nn.Parameter(torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(0)))
            for _ in range(2))
    oe = RiemannianAdam([e], lr=0.05, manifold="euclidean", adaptivity="elementwise")
    of = RiemannianAdam([f], lr=0.05, manifold=Euclidean())
    for t in range(10):
        a.grad = b.grad = _grad(a.shape, t)
        e.grad = f.grad = _grad(e.shape, t)
        for o in (oa, ob, oe, of):
            o.step()
    assert torch.equal(a, b) and torch.equal(e, f)


# ---------------------------------------------------------------- fuzz


@st.composite
def _cases(draw):
    cls = draw(st.sampled_from(["adam", "adagrad", "sgd"]))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=2))) + (draw(st.integers(1, 5)),)
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    kw = {"lr": draw(st.sampled_from([0.0, 1e-3, 0.1, 3.0, 30.0])),
          "weight_decay": draw(st.sampled_from([0.0, 0.1])),
          "update": draw(st.sampled_from(["retraction", "expmap"])), "lazy": draw(st.booleans()),
          "stabilize": draw(st.sampled_from([None, 1, 3]))}
    if cls == "adam":
        kw.update(amsgrad=draw(st.booleans()), semantics=draw(st.sampled_from(["geoopt", "paper"])),
                  adaptivity=draw(st.sampled_from(["factor", "elementwise"])),
                  betas=(draw(st.sampled_from([0.0, 0.9])), draw(st.sampled_from([0.0, 0.5, 0.999]))))
    elif cls == "adagrad":
        kw.update(adaptivity=draw(st.sampled_from(["factor", "elementwise"])), eps=draw(st.sampled_from([0.0, 1e-10])))
    else:
        kw.update(momentum=draw(st.sampled_from([0.0, 0.9])))
    radius = draw(st.sampled_from([0.0, 0.5, 0.99]))
    return cls, shape, dtype, kw, radius, draw(st.integers(0, 2**16))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_fuzz_every_option_keeps_points_in_the_ball_and_state_finite(case):
    cls, shape, dtype, kw, radius, seed = case
    make = {"adam": RiemannianAdam, "adagrad": RiemannianAdagrad, "sgd": RiemannianSGD}[cls]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=F64)
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12) * radius
    p = tag_manifold(torch.nn.Parameter(x.to(dtype)), BALL)
    opt = make([p], **kw)
    for t in range(6):
        g = torch.randn(shape, generator=gen, dtype=F64) * 10 ** (t - 3)
        if t % 2 and g.numel():
            g.view(-1, shape[-1])[0] = 0.0
        p.grad = g.to(dtype)
        opt.step()
    assert p.dtype == dtype and torch.isfinite(p).all()
    if p.numel():
        assert float(p.detach().double().norm(dim=-1).max()) <= 1 - BALL_EPS[dtype] + 1e-6
    for value in opt.state[p].values():
        assert not isinstance(value, torch.Tensor) or torch.isfinite(value).all()


@pytest.mark.parametrize("make", [
    lambda p: RiemannianAdam(p, lr=0.05, weight_decay=0.1), lambda p: RiemannianAdam(p, lr=0.05, amsgrad=True,
                                                                                      update="expmap"),
    lambda p: RiemannianAdam(p, lr=0.05, semantics="paper", lazy=True), lambda p: RiemannianAdam(p, lr=3.0),
    lambda p: RiemannianAdagrad(p, lr=0.5, update="expmap", weight_decay=0.1), lambda p: RiemannianAdagrad(p, eps=0.0),
    lambda p: RiemannianSGD(p, lr=0.5), lambda p: RiemannianSGD(p, lr=30.0, update="expmap", weight_decay=0.1),
], ids=["adam", "amsgrad-exp", "paper-lazy", "adam-lr3", "adagrad-exp", "adagrad-eps0", "sgd", "sgd-exp-lr30"])
def test_the_closed_form_ball_step_equals_the_term_by_term_rule(make, monkeypatch):
    """Ball factors take the closed-form step of PoincareBall.line; the generic rule (one formula at a time, as
    geoopt) must agree, including at the clip radius (lr 3 and 30 push rows there)."""
    fused, plain = _param((9, 4), 0.9), _param((9, 4), 0.9)
    of = make([fused])
    monkeypatch.setattr(type(of), "_fused", False)
    op = make([plain])
    for t in range(25):
        g = _grad((9, 4), 50 + t)
        g[t % 9] = 0.0
        fused.grad, plain.grad = g.clone(), g.clone()
        monkeypatch.setattr(type(of), "_fused", True)
        of.step()
        monkeypatch.setattr(type(of), "_fused", False)
        op.step()
    torch.testing.assert_close(fused, plain, rtol=1e-9, atol=1e-12)
    for key, value in op.state[plain].items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(of.state[fused][key], value, rtol=1e-6, atol=1e-12)


def test_lazy_amsgrad_keeps_the_max_of_the_raw_second_moment():
    """geoopt's SparseRiemannianAdam writes sqrt(v_hat / (1 - b2^t)) into the max; ours keeps max(raw v)."""
    p = _param((5, 3))
    opt = RiemannianAdam([p], lr=0.01, betas=(0.9, 0.5), amsgrad=True, lazy=True)
    running = torch.zeros(5, 1, dtype=F64)
    for t in range(12):
        g = _grad((5, 3), 200 + t) * 0.7**t
        g[t % 5] = 0.0
        p.grad = g
        opt.step()
        v = opt.state[p]["exp_avg_sq"]
        touched = g.ne(0).any(-1, keepdim=True)
        running = torch.where(touched, torch.maximum(running, v), running)
        torch.testing.assert_close(opt.state[p]["max_exp_avg_sq"], running, rtol=0, atol=0)
    assert (running > v * 1.5).any()  # the max is exercised


def test_a_deep_copy_loses_the_tag_and_the_optimizer_says_so():
    import copy

    p = _param()
    q = copy.deepcopy(p)  # torch's Parameter.__deepcopy__ keeps data, not attributes
    assert manifold_of(q) is None
    with pytest.raises(ValueError, match="has no manifold"):
        RiemannianAdam([q])
    buffer = io.BytesIO()
    torch.save(p, buffer)
    buffer.seek(0)
    assert manifold_of(torch.load(buffer, weights_only=False)) == PoincareBall()  # a saved tensor keeps it


@pytest.mark.parametrize("amsgrad", [False, True])
def test_a_huge_float32_expmap_step_near_the_boundary_stays_in_the_ball(amsgrad):
    """Found by the fuzz test: in float32, |y|^2 from the closed form's dot products loses to cancellation near the
    boundary, so without a projection of the formed y a row left the ball (norm 1.007) and the next step gave NaN."""
    gen = torch.Generator().manual_seed(0)
    p = tag_manifold(torch.nn.Parameter(torch.zeros(2, 1)), BALL)
    opt = RiemannianAdam([p], lr=30.0, update="expmap", amsgrad=amsgrad, betas=(0.0, 0.0))
    for t in range(6):
        g = torch.randn((2, 1), generator=gen, dtype=F64) * 10 ** (t - 3)
        if t % 2:
            g[0] = 0.0
        p.grad = g.float()
        opt.step()
        assert torch.isfinite(p).all()
        assert float(p.detach().double().norm(dim=-1).max()) <= 1 - BALL_EPS[torch.float32] + 1e-6
