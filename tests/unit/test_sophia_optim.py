"""SophiaG / SophiaH (papers/sophia/optim.py) against hand-derived steps and Sophia's invariants."""

from __future__ import annotations

import io
import math
import re

import pytest
import torch

from common.kernels import using
from papers.sophia.optim import DENOMINATOR_EPS, SophiaG, SophiaH
from tests.impl_cases import STATE_DTYPE_CASES

# Every test that steps an optimizer runs once per kernel implementation (tests/conftest.py::every_impl);
# validators, defaults and scalar schedules involve no implementation and run once.
per_impl = pytest.mark.usefixtures("every_impl")

SHAPES = [(4, 3), (5,), (2, 3, 2)]
G_KEYS = {"params", "lr", "betas", "rho", "weight_decay", "bs", "maximize"}


def make_params(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)) for s in SHAPES]


def clone_params(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def make_grads(steps: int, dtype: torch.dtype = torch.float64, seed: int = 1) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in SHAPES] for _ in range(steps)]


def apply(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], grads: list[torch.Tensor]) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    opt.step()


def hessian_update(opt: SophiaG | SophiaH, params: list[torch.nn.Parameter], estimates: list[torch.Tensor]) -> None:
    for p, e in zip(params, estimates, strict=True):
        p.grad = e.clone()
    opt.update_hessian()
    opt.zero_grad(set_to_none=True)


def run(
    opt: SophiaG,
    params: list[torch.nn.Parameter],
    grads: list[list[torch.Tensor]],
    estimates: list[list[torch.Tensor]],
    k: int = 10,
    start: int = 1,
) -> None:
    """Steps ``start``.. with a Hessian update after every k-th step, from the estimate of that step's index."""
    for t, g in enumerate(grads, start=start):
        apply(opt, params, g)
        if t % k == 0:
            hessian_update(opt, params, estimates[t])


def ema(values: list[torch.Tensor], beta: float) -> torch.Tensor:
    """Closed-form EMA from zero, no bias correction: (1-beta) sum_i beta^(t-i) x_i."""
    t = len(values)
    return sum((1 - beta) * beta ** (t - i) * x for i, x in enumerate(values, start=1))


# --- defaults and the bs binding ---------------------------------------------------------------------


def test_defaults_are_the_official_head_ones_and_bs_is_required() -> None:
    opt = SophiaG(make_params(), bs=4096)
    group = opt.param_groups[0]
    assert {k: group[k] for k in ("lr", "betas", "rho", "weight_decay", "bs", "maximize")} == {
        "lr": 1e-4,
        "betas": (0.965, 0.99),
        "rho": 0.04,
        "weight_decay": 0.1,
        "bs": 4096,
        "maximize": False,
    }
    assert set(group) == G_KEYS
    with pytest.raises(TypeError, match="bs"):
        SophiaG(make_params())  # type: ignore[call-arg]  # a forgotten bs must not silently become 5120
    h = SophiaH(make_params()).param_groups[0]
    assert set(h) == G_KEYS - {"bs", "maximize"}
    assert (h["lr"], h["betas"], h["rho"], h["weight_decay"]) == (1e-4, (0.965, 0.99), 0.04, 0.1)


@per_impl
def test_bs_is_bound_and_only_rho_times_bs_matters() -> None:
    """bs=1024 and bs=2048 with rho halved give identical trajectories; state_dict carries bs."""
    grads, estimates = make_grads(25), make_grads(26, seed=2)
    runs = {}
    for bs, rho in [(1024, 0.04), (2048, 0.02), (2048, 0.04)]:
        params = make_params()
        opt = SophiaG(params, lr=0.01, rho=rho, bs=bs, betas=(0.9, 0.5))
        run(opt, params, grads, estimates)
        runs[bs, rho] = params
        assert opt.state_dict()["param_groups"][0]["bs"] == bs
    for p, q in zip(runs[1024, 0.04], runs[2048, 0.02], strict=True):
        assert torch.equal(p, q)
    # and bs is really used: the same rho with twice the bs is a different run
    assert not all(torch.equal(p, q) for p, q in zip(runs[1024, 0.04], runs[2048, 0.04], strict=True))


# --- the update rule ---------------------------------------------------------------------------------


@per_impl
def test_first_steps_before_any_hessian_update_are_sign_momentum_exactly() -> None:
    """h = 0, so theta_{t+1} = theta_t (1 - lr wd) - lr sign(m_t), bit for bit; m = 0 does not move."""
    lr, wd, beta1 = 0.01, 0.1, 0.965
    grads = make_grads(10)
    for g in grads:
        g[1][2] = 0.0  # one coordinate never sees a gradient: m stays 0 and only the decay moves it
    params = make_params()
    ref = [p.detach().clone() for p in params]
    opt = SophiaG(params, lr=lr, betas=(beta1, 0.99), weight_decay=wd, bs=1024)
    m = [torch.zeros_like(p) for p in ref]
    for t, g in enumerate(grads, start=1):
        apply(opt, params, g)
        for i, gi in enumerate(g):
            m[i] = beta1 * m[i] + (1 - beta1) * gi
            ref[i] = ref[i] * (1 - lr * wd) - lr * torch.sign(m[i])
            assert torch.equal(params[i].detach(), ref[i]), (t, i)
        for i, p in enumerate(params):
            torch.testing.assert_close(
                opt.state[p]["exp_avg"], ema([g[i] for g in grads[:t]], beta1), rtol=1e-12, atol=1e-15
            )
    nonzero = torch.cat([mi.flatten() for mi in m]).abs()
    assert (nonzero[nonzero != 0] > 1e-6).all()  # no coordinate sat below the 1e-15 that would unclip it
    assert params[1][2].item() == pytest.approx(make_params()[1][2].item() * (1 - lr * wd) ** 10, rel=1e-15)
    assert all(float(s["step"]) == 10 and not s["hessian"].any() for s in opt.state.values())
    assert opt.stats()["win_rate"] == 0.0


def test_hessian_ema_has_no_bias_correction() -> None:
    """After one update h = (1-b2) g_hat^2; after two, b2 (1-b2) g1^2 + (1-b2) g2^2."""
    beta2 = 0.99
    params = make_params()
    opt = SophiaG(params, betas=(0.965, beta2), bs=8)
    g1, g2 = make_grads(2, seed=5)
    hessian_update(opt, params, g1)  # before any step: state is created by update_hessian (official)
    for p, e in zip(params, g1, strict=True):
        assert torch.equal(opt.state[p]["hessian"], (1 - beta2) * e * e)
        assert float(opt.state[p]["step"]) == 0 and not opt.state[p]["exp_avg"].any()
    hessian_update(opt, params, g2)
    for p, e1, e2 in zip(params, g1, g2, strict=True):
        torch.testing.assert_close(opt.state[p]["hessian"], ema([e1 * e1, e2 * e2], beta2), rtol=1e-14, atol=0)


@per_impl
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_clip_boundary_both_sides(weight_decay: float) -> None:
    """|m| < rho bs h moves by lr |m| / (rho bs h + 1e-15); |m| >= rho bs h moves by exactly lr."""
    lr, beta1, beta2, rho, bs = 0.01, 0.9, 0.99, 0.04, 1024
    # target rho*bs*h / |m| per coordinate: just above and just below the boundary, and far on either side
    factors = torch.tensor([1 + 1e-6, 1 - 1e-6, 2.0, 0.5, 1 + 1e-6, 1 - 1e-6], dtype=torch.float64)
    grad = torch.tensor([0.3, -0.3, 1.5, -2.0, -1e-3, 4e-3], dtype=torch.float64)
    m = (1 - beta1) * grad
    g_hat = (m.abs() * factors / (rho * bs * (1 - beta2))).sqrt()
    p = torch.nn.Parameter(torch.linspace(-1, 1, 6, dtype=torch.float64))
    theta0 = p.detach().clone()
    opt = SophiaG([p], lr=lr, betas=(beta1, beta2), rho=rho, weight_decay=weight_decay, bs=bs)
    hessian_update(opt, [p], [g_hat])
    h = opt.state[p]["hessian"].clone()
    apply(opt, [p], [grad])

    threshold = rho * bs * h
    inside = m.abs() < threshold
    assert inside.tolist() == [True, False, True, False, True, False]
    decayed = theta0 * (1 - lr * weight_decay)
    expected = torch.where(
        inside, decayed - lr * torch.sign(m) * m.abs() / (threshold + DENOMINATOR_EPS), decayed - lr * torch.sign(m)
    )
    torch.testing.assert_close(p.detach(), expected, rtol=1e-14, atol=0)
    moved = (p.detach() - decayed).abs()
    assert (moved[inside] < lr * (1 - 1e-7)).all()
    assert torch.equal(p.detach()[~inside], (decayed - lr * torch.sign(m))[~inside])  # exactly lr, bit for bit
    assert opt.stats()["win_rate"] == pytest.approx(0.5)


@per_impl
def test_matches_the_clamp_form_over_a_trajectory() -> None:
    """The step equals -lr clamp(m / (rho bs h + 1e-15), -1, 1), the 2024 foreach form (independent code)."""
    lr, beta1, beta2, rho, bs, wd = 0.02, 0.9, 0.9, 0.05, 64, 0.1
    grads, estimates = make_grads(35), make_grads(36, seed=3)
    params = make_params()
    opt = SophiaG(params, lr=lr, betas=(beta1, beta2), rho=rho, weight_decay=wd, bs=bs)
    theta = [p.detach().clone() for p in params]
    m = [torch.zeros_like(x) for x in theta]
    h = [torch.zeros_like(x) for x in theta]
    clipped_fractions = []
    for t, g in enumerate(grads, start=1):
        apply(opt, params, g)
        for i in range(len(theta)):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            step = torch.clamp(m[i] / (rho * bs * h[i] + 1e-15), -1, 1)
            theta[i] = theta[i] * (1 - lr * wd) - lr * step
            torch.testing.assert_close(params[i].detach(), theta[i], rtol=1e-13, atol=1e-15)
        if t % 10 == 0:
            hessian_update(opt, params, estimates[t])
            h = [beta2 * hi + (1 - beta2) * e * e for hi, e in zip(h, estimates[t], strict=True)]
            clipped_fractions.append(1 - opt.stats()["win_rate"])
    assert all(0.05 < c < 0.95 for c in clipped_fractions)  # both branches of the clip were exercised


@per_impl
def test_hand_derived_step_and_stats() -> None:
    """lr 0.1, wd 0.1, b1 0.9, b2 0.99, rho 0.5, bs 2, theta (1, -2, 0.5), one Hessian update, one step, by hand.

    h = 0.01 g_hat^2 = (0.01, 1e-4, 0.04), so rho bs h = (0.01, 1e-4, 0.04); m = 0.1 g = (0.005, -0.1, 0.02);
    ratios min(|m| / (rho bs h), 1) = (0.5, 1, 0.5); theta (1 - 0.01) = (0.99, -1.98, 0.495);
    minus 0.1 sign(m) ratio = (0.05, -0.1, 0.05) gives (0.94, -1.88, 0.445).
    """
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    opt = SophiaG([p], lr=0.1, betas=(0.9, 0.99), rho=0.5, weight_decay=0.1, bs=2)
    hessian_update(opt, [p], [torch.tensor([1.0, 0.1, 2.0], dtype=torch.float64)])
    apply(opt, [p], [torch.tensor([0.05, -1.0, 0.2], dtype=torch.float64)])
    torch.testing.assert_close(p.detach(), torch.tensor([0.94, -1.88, 0.445], dtype=torch.float64), rtol=1e-12, atol=0)
    stats = opt.stats()
    assert stats["win_rate"] == pytest.approx(2 / 3)
    assert stats["hessian_l1"] == pytest.approx(0.0501)
    assert stats["hessian_l2"] == pytest.approx(math.sqrt(0.01**2 + 1e-8 + 0.04**2))
    assert stats["hessian_mean"] == pytest.approx(0.0501 / 3)
    assert (stats["hessian_max"], stats["hessian_min"]) == pytest.approx((0.04, 1e-4))
    assert stats["momentum_l2"] == pytest.approx(math.sqrt(0.005**2 + 0.1**2 + 0.02**2))


def test_stats_are_empty_before_any_state() -> None:
    assert SophiaG(make_params(), bs=1).stats() == {}


@per_impl
def test_maximize_is_minimizing_the_negated_gradient() -> None:
    grads, estimates = make_grads(12), make_grads(13, seed=2)
    a, b = make_params(), make_params()
    opt_a = SophiaG(a, lr=0.05, betas=(0.9, 0.5), rho=1.0, bs=4, maximize=True)
    opt_b = SophiaG(b, lr=0.05, betas=(0.9, 0.5), rho=1.0, bs=4)
    run(opt_a, a, grads, estimates, k=5)
    run(opt_b, b, [[-g for g in gs] for gs in grads], estimates, k=5)
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)


# --- SophiaH's update --------------------------------------------------------------------------------


@per_impl
def test_sophiah_adds_the_estimate_and_negative_curvature_takes_a_full_sign_step() -> None:
    """SophiaH: h is the EMA of u*(Hu) itself (no square, no bs); h <= 0 gives exactly lr sign(m)."""
    lr, beta1, beta2, rho = 0.1, 0.9, 0.5, 0.5
    estimate = torch.tensor([-4.0, 0.0, 2.0, 0.02], dtype=torch.float64)
    grad = torch.tensor([1.0, -1.0, -0.3, 0.5], dtype=torch.float64)
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    theta0 = p.detach().clone()
    opt = SophiaH([p], lr=lr, betas=(beta1, beta2), rho=rho, weight_decay=0.0)
    hessian_update(opt, [p], [estimate])
    h = opt.state[p]["hessian"]
    assert torch.equal(h, (1 - beta2) * estimate)  # h = (-2, 0, 1, 0.01)
    apply(opt, [p], [grad])
    m = (1 - beta1) * grad  # (0.1, -0.1, -0.03, 0.05); rho h = (-1, 0, 0.5, 0.005)
    expected = theta0 - lr * torch.tensor([1.0, -1.0, -0.03 / 0.5, 1.0], dtype=torch.float64)
    assert torch.equal(p.detach()[:2], expected[:2])  # h < 0 and h = 0: exactly lr sign(m)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-14, atol=0)
    assert torch.equal(opt.state[p]["exp_avg"], m)
    assert opt.stats()["win_rate"] == pytest.approx(0.25)  # only |m| < rho h counts: the third coordinate
    assert opt.stats()["hessian_min"] == pytest.approx(-2.0)


# --- state, checkpoints, groups ----------------------------------------------------------------------


@per_impl
def test_state_dict_round_trip_between_hessian_updates_continues_bit_identically() -> None:
    """Save at step 15 (updates at 10 and 20), reload through torch.save, continue: identical."""
    grads, estimates = make_grads(30), make_grads(31, seed=2)
    kw = {"lr": 0.02, "betas": (0.9, 0.5), "rho": 1.0, "weight_decay": 0.1, "bs": 16}
    full = make_params()
    opt_full = SophiaG(full, **kw)
    run(opt_full, full, grads, estimates)

    part = make_params()
    opt_part = SophiaG(part, **kw)
    run(opt_part, part, grads[:15], estimates)
    buf = io.BytesIO()
    torch.save({"params": [p.detach() for p in part], "opt": opt_part.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    resumed = [torch.nn.Parameter(t.clone()) for t in ckpt["params"]]
    opt_resumed = SophiaG(resumed, **{**kw, "bs": 1})  # bs comes from the checkpoint, not the constructor
    opt_resumed.load_state_dict(ckpt["opt"])
    assert opt_resumed.param_groups[0]["bs"] == 16
    for q in resumed:
        state = opt_resumed.state[q]
        assert set(state) == {"step", "exp_avg", "hessian"}
        assert isinstance(state["step"], torch.Tensor) and float(state["step"]) == 15
        assert state["hessian"].any()
    run(opt_resumed, resumed, grads[15:], estimates, start=16)

    for p, q in zip(full, resumed, strict=True):
        assert torch.equal(p, q)
        for key in ("exp_avg", "hessian"):
            assert torch.equal(opt_full.state[p][key], opt_resumed.state[q][key])
        assert float(opt_resumed.state[q]["step"]) == 30


@per_impl
def test_state_holds_only_step_and_buffers_and_groups_only_hyperparameters() -> None:
    params = make_params()
    opt = SophiaG(params, bs=8)
    run(opt, params, make_grads(10), make_grads(11, seed=2))
    sd = opt.state_dict()
    assert all(set(s) == {"step", "exp_avg", "hessian"} for s in sd["state"].values())
    assert all(set(g) == G_KEYS for g in sd["param_groups"])
    step = sd["state"][0]["step"]
    assert step.dtype == torch.float32 and step.dim() == 0 and step.device.type == "cpu"


@per_impl
def test_loads_an_official_checkpoint() -> None:
    """The official groups carry ``capturable`` and no ``bs``; a capturable run's step has shape (1,)."""
    params = make_params()
    opt = SophiaG(params, bs=8)
    run(opt, params, make_grads(10), make_grads(11, seed=2))
    sd = opt.state_dict()
    official = {
        "state": {i: {**s, "step": torch.tensor([10.0])} for i, s in sd["state"].items()},
        "param_groups": [{k: v for k, v in g.items() if k != "bs"} | {"capturable": False} for g in sd["param_groups"]],
    }
    fresh = SophiaG(clone_params(params), bs=8)
    fresh.load_state_dict(official)
    assert set(fresh.param_groups[0]) == G_KEYS and fresh.param_groups[0]["bs"] == 8
    assert all(s["step"].shape == () and float(s["step"]) == 10 for s in fresh.state.values())


@per_impl
def test_params_without_grad_are_skipped() -> None:
    params = make_params()
    frozen = params[1]
    before = frozen.detach().clone()
    opt = SophiaG(params, lr=0.1, bs=8)
    for g in make_grads(3):
        g[1] = None
        for p, gi in zip(params, g, strict=True):
            p.grad = None if gi is None else gi.clone()
        opt.step()
        opt.update_hessian()
    assert torch.equal(frozen, before)
    assert frozen not in opt.state
    assert float(opt.state[params[0]]["step"]) == 3


@per_impl
def test_param_groups_equal_separate_optimizers() -> None:
    grads, estimates = make_grads(12), make_grads(13, seed=2)
    hp = [
        {"lr": 0.1, "rho": 0.5, "bs": 4, "weight_decay": 0.0},
        {"lr": 0.01, "rho": 2.0, "bs": 32, "betas": (0.5, 0.9)},
    ]
    grouped = make_params()
    opt = SophiaG([{"params": grouped[:2], **hp[0]}, {"params": grouped[2:], **hp[1]}], bs=1, betas=(0.9, 0.5))
    run(opt, grouped, grads, estimates, k=4)
    separate = make_params()
    opt_a = SophiaG(separate[:2], **{"betas": (0.9, 0.5), **hp[0]})
    opt_b = SophiaG(separate[2:], **hp[1])
    for t, g in enumerate(grads, start=1):
        apply(opt_a, separate[:2], g[:2])
        apply(opt_b, separate[2:], g[2:])
        if t % 4 == 0:
            hessian_update(opt_a, separate[:2], estimates[t][:2])
            hessian_update(opt_b, separate[2:], estimates[t][2:])
    for p, q in zip(grouped, separate, strict=True):
        assert torch.equal(p, q)


@per_impl
def test_lr_scheduler_scales_each_step() -> None:
    """Before any Hessian update with wd = 0 the step is lr sign(m): LambdaLR's factor must show in every delta."""

    def factor(epoch: int) -> float:
        return 1.0 + epoch % 3

    grads = make_grads(9)
    const_p, sched_p = make_params(), make_params()
    const, sched_opt = (
        SophiaG(const_p, lr=0.1, weight_decay=0.0, bs=8),
        SophiaG(sched_p, lr=0.1, weight_decay=0.0, bs=8),
    )
    sched = torch.optim.lr_scheduler.LambdaLR(sched_opt, factor)
    for t, g in enumerate(grads, start=1):
        before_c = [p.detach().clone() for p in const_p]
        before_s = [p.detach().clone() for p in sched_p]
        apply(const, const_p, g)
        apply(sched_opt, sched_p, g)
        sched.step()
        for c0, c, s0, s in zip(before_c, const_p, before_s, sched_p, strict=True):
            torch.testing.assert_close(s.detach() - s0, factor(t - 1) * (c.detach() - c0), rtol=1e-12, atol=1e-15)


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": "0.1"}, "lr"),
        ({"betas": (1.0, 0.99)}, "betas[0]"),
        ({"betas": (-0.1, 0.99)}, "betas[0]"),
        ({"betas": (0.9, 1.0)}, "betas[1]"),
        ({"betas": (0.9, -1e-3)}, "betas[1]"),
        ({"betas": (0.9,)}, "betas"),
        ({"rho": -0.01}, "rho"),
        ({"rho": float("inf")}, "rho"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"bs": 0}, "bs"),
        ({"bs": -512}, "bs"),
        ({"bs": float("nan")}, "bs"),
        ({"bs": True}, "bs"),
        ({"maximize": 1}, "maximize"),
    ],
)
def test_invalid_hyperparameters_raise_value_error_naming_the_argument(kwargs: dict, name: str) -> None:
    full = {"bs": 1024, **kwargs}
    with pytest.raises(ValueError, match=re.escape(name)):
        SophiaG(make_params(), **full)
    with pytest.raises(ValueError, match=re.escape(name)):  # the same check for a per-group override
        SophiaG([{"params": make_params(), **kwargs}], bs=1024)
    if name not in ("bs", "maximize"):
        with pytest.raises(ValueError, match=re.escape(name)):
            SophiaH(make_params(), **kwargs)


@pytest.mark.parametrize("cls", [SophiaG, SophiaH])
def test_sparse_gradients_and_complex_params_raise(cls: type) -> None:
    kw = {"bs": 8} if cls is SophiaG else {}
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = cls(emb.parameters(), **kw)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match=f"{cls.__name__} does not support sparse gradients"):
        opt.step()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.update_hessian()
    p = torch.nn.Parameter(torch.randn(3, dtype=torch.complex64))
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="complex"):
        cls([p], **kw).step()


# --- dtypes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl,dtypes", STATE_DTYPE_CASES)
def test_state_dtype_policy(impl: str, dtypes: tuple[torch.dtype, torch.dtype]) -> None:
    param_dtype, state_dtype = dtypes
    with using(impl):
        params = make_params(param_dtype)
        opt = SophiaG(params, bs=8)
        hessian_update(opt, params, make_grads(1, param_dtype)[0])
        apply(opt, params, make_grads(1, param_dtype)[0])
        for p in params:
            assert p.dtype == param_dtype
            assert opt.state[p]["exp_avg"].dtype == opt.state[p]["hessian"].dtype == state_dtype


@per_impl
def test_bf16_update_equals_fp32_reference_then_cast() -> None:
    """bf16 params: state and maths in fp32 (including the square of the bf16 g_hat), the result cast back."""
    kw = {"lr": 0.05, "betas": (0.9, 0.5), "rho": 0.5, "weight_decay": 0.1, "bs": 8}
    bf16 = make_params(torch.bfloat16)
    theta0 = [p.detach().clone() for p in bf16]
    ref = [torch.nn.Parameter(p.detach().float()) for p in bf16]
    opt, ref_opt = SophiaG(bf16, **kw), SophiaG(ref, **kw)
    estimates = make_grads(16, torch.bfloat16, seed=2)
    for t, g in enumerate(make_grads(15, torch.bfloat16), start=1):
        with torch.no_grad():
            for r, p in zip(ref, bf16, strict=True):
                r.copy_(p.float())  # the reference starts every step from the bf16 value
        apply(opt, bf16, g)
        apply(ref_opt, ref, [gi.float() for gi in g])
        if t % 5 == 0:
            hessian_update(opt, bf16, estimates[t])
            hessian_update(ref_opt, ref, [e.float() for e in estimates[t]])
        for p, r in zip(bf16, ref, strict=True):
            assert torch.equal(p, r.detach().to(torch.bfloat16))
            for key in ("exp_avg", "hessian"):
                assert torch.equal(opt.state[p][key], ref_opt.state[r][key])
    assert ref_opt.stats()["win_rate"] > 0  # the Hessian term was active, not only sign steps
    assert not any(torch.equal(p, p0) for p, p0 in zip(bf16, theta0, strict=True))


@per_impl
def test_bf16_state_stays_fp32_after_load_state_dict() -> None:
    kw = {"lr": 0.05, "betas": (0.9, 0.5), "rho": 0.5, "bs": 8}
    grads, estimates = make_grads(14, torch.bfloat16), make_grads(15, torch.bfloat16, seed=2)
    params = make_params(torch.bfloat16)
    opt = SophiaG(params, **kw)
    run(opt, params, grads[:7], estimates, k=5)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    resumed = clone_params(params)
    opt2 = SophiaG(resumed, **kw)
    opt2.load_state_dict(torch.load(buf))
    for p, q in zip(params, resumed, strict=True):
        for key in ("exp_avg", "hessian"):
            assert opt2.state[q][key].dtype == torch.float32
            assert torch.equal(opt2.state[q][key], opt.state[p][key])
    run(opt, params, grads[7:], estimates, k=5, start=8)
    run(opt2, resumed, grads[7:], estimates, k=5, start=8)
    for p, q in zip(params, resumed, strict=True):
        assert torch.equal(p, q)
