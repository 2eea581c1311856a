"""RAdam (papers/radam/optim.py) against torch, hand-derived steps and RAdam's invariants."""

from __future__ import annotations

import io
import math
import re

import pytest
import torch

import common.optim.rectify as rectify_mod
from common.kernels import using
from papers.radam.optim import RAdam, rectifier, rho_t
from tests.impl_cases import STATE_DTYPE_CASES

# Every test that steps an optimizer runs once per kernel implementation (tests/conftest.py::every_impl);
# validators, defaults and scalar schedules involve no implementation and run once.
per_impl = pytest.mark.usefixtures("every_impl")

SHAPES = [(4, 3), (5,), (2, 3, 2)]
HYPERPARAMETER_KEYS = {"params", "lr", "betas", "eps", "weight_decay", "degenerated_to_sgd"}


def make_params(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)) for s in SHAPES]


def clone_params(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def make_grads(steps: int, dtype: torch.dtype = torch.float64, seed: int = 1) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in SHAPES] for _ in range(steps)
    ]


def apply(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], grads: list[torch.Tensor]) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    opt.step()


def ema(values: list[torch.Tensor], beta: float) -> torch.Tensor:
    """Closed-form EMA from zero, (1-beta) sum_i beta^(t-i) x_i: independent of the optimizer's recurrence."""
    t = len(values)
    return sum((1 - beta) * beta ** (t - i) * x for i, x in enumerate(values, start=1))


def assert_same_moments(ours: dict, ref: dict) -> None:
    """torch forms m with lerp, we as the official code does: a tiny atol where m cancels to ~0. v cannot."""
    torch.testing.assert_close(ours["exp_avg"], ref["exp_avg"], rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(ours["exp_avg_sq"], ref["exp_avg_sq"], rtol=1e-12, atol=0)


# --- helpers -----------------------------------------------------------------------------------------


def test_rho_t_schedule_matches_spec_and_first_adaptive_step_is_6() -> None:
    # The published list (printed to 2-3 decimals) and the same values to 4 decimals, computed by hand.
    spec = ["1.00", "2.00", "3.00", "4.00", "4.996", "5.994", "6.99", "7.99", "8.99"]
    precise = [1.0, 1.9995, 2.9987, 3.9975, 4.9960, 5.9942, 6.9920, 7.9895, 8.9867]
    for t, (printed, value) in enumerate(zip(spec, precise, strict=True), start=1):
        rho = rho_t(t, 0.999)
        assert abs(rho - value) < 1e-3, (t, rho)
        half_unit = 0.5 * 10.0 ** -len(printed.split(".")[1])
        assert abs(rho - float(printed)) <= half_unit + 1e-12, (t, rho, printed)
    assert [rectifier(t, 0.999) is not None for t in range(1, 10)] == [False] * 5 + [True] * 4


@pytest.mark.parametrize(
    ("beta2", "levels"),
    [(0.999, [556, 2737, 5654]), (0.99, [61, 277, 567]), (0.98, [33, 140, 284])],
)
def test_rectifier_is_slow_as_spec_says(beta2: float, levels: list[int]) -> None:
    """First t at which r_t reaches 0.5, 0.9 and 0.99."""
    r = [rectifier(t, beta2) or 0.0 for t in range(1, 6000)]
    first = [next(t for t, x in enumerate(r, start=1) if x >= lvl) for lvl in (0.5, 0.9, 0.99)]
    assert first == levels


def test_rectifier_hand_value_at_t6() -> None:
    b2 = 0.999
    rho_inf = 2 / (1 - b2) - 1
    rho6 = rho_inf - 12 * b2**6 / (1 - b2**6)
    expected = math.sqrt((rho6 - 4) * (rho6 - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho6))
    assert rectifier(6, b2) == pytest.approx(expected, rel=1e-14)
    assert rectifier(6, b2) == pytest.approx(0.025821112801858, rel=1e-10)


def test_threshold_is_inclusive_like_the_official_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Official: rectify when rho_t >= 5 (torch: > 5, paper: > 4). Pinned on rho_t itself, exactly at 5."""
    b2 = 0.99
    rho_inf = 2 / (1 - b2) - 1
    monkeypatch.setattr(rectify_mod, "rho_t", lambda step, beta2: 5.0)
    assert rectifier(6, b2) == pytest.approx(
        math.sqrt(3 * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * 5)), rel=1e-14
    )
    monkeypatch.setattr(rectify_mod, "rho_t", lambda step, beta2: math.nextafter(5.0, 0.0))
    assert rectifier(6, b2) is None


def test_rho_t_rejects_step_zero() -> None:
    with pytest.raises(ValueError, match="step"):
        rho_t(0, 0.999)


# --- parity with torch -----------------------------------------------------------------------------


@per_impl
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("beta2", [0.999, 0.99, 0.95])
def test_matches_torch_radam_decoupled_float64(weight_decay: float, beta2: float) -> None:
    steps = 50
    # torch rectifies on rho_t > 5, we on rho_t >= 5: the run must stay clear of 5, and cover both branches.
    assert all(abs(rho_t(t, beta2) - 5) > 1e-9 for t in range(1, steps + 1))
    assert rectifier(1, beta2) is None and rectifier(steps, beta2) is not None

    ours_p = make_params()
    ref_p = clone_params(ours_p)
    kw = {"lr": 1e-2, "betas": (0.9, beta2), "eps": 1e-8, "weight_decay": weight_decay}
    ours = RAdam(ours_p, degenerated_to_sgd=True, **kw)
    ref = torch.optim.RAdam(ref_p, decoupled_weight_decay=True, foreach=False, **kw)
    for grads in make_grads(steps):
        apply(ours, ours_p, grads)
        apply(ref, ref_p, grads)
        for p, q in zip(ours_p, ref_p, strict=True):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=0)
    for p, q in zip(ours_p, ref_p, strict=True):
        assert_same_moments(ours.state[p], ref.state[q])
        assert ours.state[p]["step"] == steps == int(ref.state[q]["step"])


@per_impl
def test_reduces_to_adam_when_rectifier_forced_to_one() -> None:
    """For t >= 6 with r_t = 1 the step is Adam's on the same (m, v).

    RAdam adds eps to sqrt(v), Adam to sqrt(v)/sqrt(1-b2^t): Adam's eps is set to eps/sqrt(1-b2^t) at each
    step, which makes the two exactly equal in exact arithmetic. A large eps makes its placement matter.
    """
    lr, (b1, b2), eps = 1e-2, (0.9, 0.999), 1e-3
    ours_p = make_params()
    theta0 = [p.detach().clone() for p in ours_p]
    ours = RAdam(ours_p, lr=lr, betas=(b1, b2), eps=eps)
    ours._force_rectifier = 1.0
    grads = make_grads(25)
    for g in grads[:5]:  # rho_t < 5: the hook does not make these steps adaptive
        apply(ours, ours_p, g)
    for p, p0 in zip(ours_p, theta0, strict=True):
        assert torch.equal(p, p0)

    adam_p = clone_params(ours_p)
    adam = torch.optim.Adam(adam_p, lr=lr, betas=(b1, b2), eps=eps, foreach=False)
    for p, q in zip(ours_p, adam_p, strict=True):
        adam.state[q] = {
            "step": torch.tensor(5.0),
            "exp_avg": ours.state[p]["exp_avg"].clone(),
            "exp_avg_sq": ours.state[p]["exp_avg_sq"].clone(),
        }
    for t, g in enumerate(grads[5:], start=6):
        adam.param_groups[0]["eps"] = eps / math.sqrt(1 - b2**t)
        apply(ours, ours_p, g)
        apply(adam, adam_p, g)
        for p, q in zip(ours_p, adam_p, strict=True):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=0)
            assert_same_moments(ours.state[p], adam.state[q])


# --- hand-derived steps ----------------------------------------------------------------------------


@per_impl
def test_default_mode_skips_first_five_steps_then_takes_hand_computed_step() -> None:
    lr, (b1, b2), eps, wd = 1e-2, (0.9, 0.999), 1e-8, 0.1
    params = make_params()
    theta0 = [p.detach().clone() for p in params]
    opt = RAdam(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    grads = make_grads(6)
    for t, g in enumerate(grads[:5], start=1):
        apply(opt, params, g)
        for p, p0 in zip(params, theta0, strict=True):
            assert torch.equal(p, p0), f"theta moved at t={t} (weight decay or update in the skipped phase)"
            assert opt.state[p]["step"] == t
    for i, p in enumerate(params):  # m and v still advanced
        m5 = ema([g[i] for g in grads[:5]], b1)
        torch.testing.assert_close(opt.state[p]["exp_avg"], m5, rtol=1e-12, atol=0)

    apply(opt, params, grads[5])
    rho_inf = 2 / (1 - b2) - 1
    rho6 = rho_inf - 2 * 6 * b2**6 / (1 - b2**6)
    r6 = math.sqrt((rho6 - 4) * (rho6 - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho6))
    for i, (p, p0) in enumerate(zip(params, theta0, strict=True)):
        m = ema([g[i] for g in grads], b1)
        v = ema([g[i] ** 2 for g in grads], b2)
        expected = p0 * (1 - lr * wd) - lr * r6 * math.sqrt(1 - b2**6) / (1 - b1**6) * m / (v.sqrt() + eps)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=0)


@per_impl
def test_beta2_zero_never_rectifies_and_degenerates_to_sgd_with_bias_corrected_momentum() -> None:
    assert all(rho_t(t, 0.0) == 1.0 and rectifier(t, 0.0) is None for t in range(1, 200))
    lr, b1 = 0.1, 0.9
    grads = make_grads(30)

    params = make_params()
    theta0 = [p.detach().clone() for p in params]
    skip = RAdam(params, lr=lr, betas=(b1, 0.0))
    for g in grads:
        apply(skip, params, g)
    assert all(torch.equal(p, p0) for p, p0 in zip(params, theta0, strict=True))

    params = make_params()
    sgd = RAdam(params, lr=lr, betas=(b1, 0.0), degenerated_to_sgd=True)
    expected = [p0.clone() for p0 in theta0]
    for t, g in enumerate(grads, start=1):
        apply(sgd, params, g)
        for i, p in enumerate(params):
            expected[i] -= lr / (1 - b1**t) * ema([gs[i] for gs in grads[:t]], b1)
            torch.testing.assert_close(p.detach(), expected[i], rtol=1e-12, atol=1e-15)


# --- optimizer API ---------------------------------------------------------------------------------


def test_defaults_are_the_official_ones() -> None:
    opt = RAdam(make_params())
    assert opt.defaults == {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "degenerated_to_sgd": False,
    }


@per_impl
def test_param_groups_equal_separate_optimizers() -> None:
    """Two bugs of the official repository (its issue #24: group 0's lr used for every group; PR #36: one step-size
    cache shared across betas) stay absent here."""
    cfg_a = {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1}
    cfg_b = {"lr": 3e-3, "betas": (0.8, 0.95), "weight_decay": 0.0}
    joint = make_params()
    a, b = clone_params(joint[:2]), clone_params(joint[2:])
    opt = RAdam([{"params": joint[:2], **cfg_a}, {"params": joint[2:], **cfg_b}])
    opt_a, opt_b = RAdam(a, **cfg_a), RAdam(b, **cfg_b)
    for g in make_grads(30):
        apply(opt, joint, g)
        apply(opt_a, a, g[:2])
        apply(opt_b, b, g[2:])
    for p, q in zip(joint, a + b, strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(joint[2], make_params()[2])  # the second group did move


@per_impl
@pytest.mark.parametrize("save_at", [3, 20])
def test_state_dict_round_trip_continues_bit_identically(save_at: int) -> None:
    kw = {"lr": 1e-2, "betas": (0.9, 0.999), "weight_decay": 0.1, "degenerated_to_sgd": False}
    grads = make_grads(30, dtype=torch.float32)
    straight = make_params(torch.float32)
    opt = RAdam(straight, **kw)
    for g in grads:
        apply(opt, straight, g)

    params = make_params(torch.float32)
    opt = RAdam(params, **kw)
    for g in grads[:save_at]:
        apply(opt, params, g)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    resumed = clone_params(params)
    opt2 = RAdam(resumed, lr=0.5, betas=(0.5, 0.5), degenerated_to_sgd=True)  # overwritten by the load
    opt2.load_state_dict(torch.load(buf))
    assert opt2.param_groups[0]["lr"] == kw["lr"] and opt2.param_groups[0]["degenerated_to_sgd"] is False
    for g in grads[save_at:]:
        apply(opt2, resumed, g)
    for p, q in zip(straight, resumed, strict=True):
        assert torch.equal(p, q)
        assert opt2.state[q]["step"] == 30


@per_impl
def test_state_holds_only_moments_and_step_and_groups_only_hyperparameters() -> None:
    params = make_params()
    opt = RAdam(params, degenerated_to_sgd=True)
    for g in make_grads(12):
        apply(opt, params, g)
    sd = opt.state_dict()
    for s in sd["state"].values():
        assert set(s) == {"step", "exp_avg", "exp_avg_sq"}
        assert type(s["step"]) is int and s["step"] == 12
    for group in sd["param_groups"]:
        assert set(group) == HYPERPARAMETER_KEYS


@per_impl
def test_params_without_grad_are_skipped() -> None:
    params = make_params()
    frozen = params[1]
    before = frozen.detach().clone()
    opt = RAdam(params, degenerated_to_sgd=True)
    for g in make_grads(8):
        for p, gi in zip(params, g, strict=True):
            p.grad = None if p is frozen else gi.clone()
        opt.step()
    assert torch.equal(frozen, before)
    assert frozen not in opt.state
    assert opt.state[params[0]]["step"] == 8


def test_sparse_gradients_raise_a_clear_error() -> None:
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = RAdam(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="RAdam does not support sparse gradients"):
        opt.step()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": "0.1"}, "lr"),
        ({"betas": (1.0, 0.999)}, "betas[0]"),
        ({"betas": (-0.1, 0.999)}, "betas[0]"),
        ({"betas": (0.9, 1.0)}, "betas[1]"),
        ({"betas": (0.9, -1e-3)}, "betas[1]"),
        ({"betas": (0.9,)}, "betas"),
        ({"eps": 0.0}, "eps"),
        ({"eps": -1e-8}, "eps"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"weight_decay": float("inf")}, "weight_decay"),
        ({"degenerated_to_sgd": 1}, "degenerated_to_sgd"),
        ({"degenerated_to_sgd": "False"}, "degenerated_to_sgd"),
    ],
)
def test_invalid_hyperparameters_raise_value_error_naming_the_argument(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(name)):
        RAdam(make_params(), **kwargs)
    with pytest.raises(ValueError, match=re.escape(name)):  # the same check for a per-group override
        RAdam([{"params": make_params(), **kwargs}])


@per_impl
def test_lr_scheduler_scales_each_step() -> None:
    """With wd=0 the update is linear in lr, so LambdaLR's factor must show up in every step's delta."""

    def factor(epoch: int) -> float:
        return 1.0 + epoch % 3

    grads = make_grads(12)
    const_p, sched_p = make_params(), make_params()
    const = RAdam(const_p, lr=0.1, betas=(0.9, 0.99), degenerated_to_sgd=True)
    sched_opt = RAdam(sched_p, lr=0.1, betas=(0.9, 0.99), degenerated_to_sgd=True)
    sched = torch.optim.lr_scheduler.LambdaLR(sched_opt, factor)
    for t, g in enumerate(grads, start=1):
        before_c = [p.detach().clone() for p in const_p]
        before_s = [p.detach().clone() for p in sched_p]
        apply(const, const_p, g)
        apply(sched_opt, sched_p, g)
        sched.step()
        for c0, c, s0, s in zip(before_c, const_p, before_s, sched_p, strict=True):
            torch.testing.assert_close(s.detach() - s0, factor(t - 1) * (c.detach() - c0), rtol=1e-10, atol=0)


# --- dtypes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl,dtypes", STATE_DTYPE_CASES)
def test_state_dtype_policy(impl: str, dtypes: tuple[torch.dtype, torch.dtype]) -> None:
    param_dtype, state_dtype = dtypes
    with using(impl):
        params = make_params(param_dtype)
        opt = RAdam(params, degenerated_to_sgd=True)
        apply(opt, params, make_grads(1, param_dtype)[0])
        for p in params:
            assert p.dtype == param_dtype
            assert opt.state[p]["exp_avg"].dtype == opt.state[p]["exp_avg_sq"].dtype == state_dtype


@per_impl
@pytest.mark.parametrize("degenerated_to_sgd", [True, False])
def test_bf16_update_equals_fp32_reference_then_cast(degenerated_to_sgd: bool) -> None:
    kw = {"lr": 0.05, "betas": (0.9, 0.99), "weight_decay": 0.1, "degenerated_to_sgd": degenerated_to_sgd}
    bf16 = make_params(torch.bfloat16)
    theta0 = [p.detach().clone() for p in bf16]
    ref = [torch.nn.Parameter(p.detach().float()) for p in bf16]
    opt, ref_opt = RAdam(bf16, **kw), RAdam(ref, **kw)
    for g in make_grads(15, torch.bfloat16):
        with torch.no_grad():
            for r, p in zip(ref, bf16, strict=True):
                r.copy_(p.float())  # the reference starts every step from the bf16 value
        apply(opt, bf16, g)
        apply(ref_opt, ref, [gi.float() for gi in g])
        for p, r in zip(bf16, ref, strict=True):
            assert torch.equal(p, r.detach().to(torch.bfloat16))
            assert torch.equal(opt.state[p]["exp_avg"], ref_opt.state[r]["exp_avg"])
            assert torch.equal(opt.state[p]["exp_avg_sq"], ref_opt.state[r]["exp_avg_sq"])
    assert not any(torch.equal(p, p0) for p, p0 in zip(bf16, theta0, strict=True))


@per_impl
def test_bf16_state_stays_fp32_after_load_state_dict() -> None:
    kw = {"lr": 0.05, "betas": (0.9, 0.99), "degenerated_to_sgd": False}
    grads = make_grads(14, torch.bfloat16)
    params = make_params(torch.bfloat16)
    opt = RAdam(params, **kw)
    for g in grads[:7]:
        apply(opt, params, g)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    resumed = clone_params(params)
    opt2 = RAdam(resumed, **kw)
    opt2.load_state_dict(torch.load(buf))
    for p, q in zip(params, resumed, strict=True):
        for key in ("exp_avg", "exp_avg_sq"):
            assert opt2.state[q][key].dtype == torch.float32
            assert torch.equal(opt2.state[q][key], opt.state[p][key])
    for g in grads[7:]:
        apply(opt, params, g)
        apply(opt2, resumed, g)
    for p, q in zip(params, resumed, strict=True):
        assert torch.equal(p, q)


def test_load_accepts_torch_radam_checkpoint_with_tensor_step() -> None:
    """Same state names as torch.optim.RAdam; its float step tensor becomes our int."""
    params = make_params()
    ref = torch.optim.RAdam(params, foreach=False)
    apply(ref, params, make_grads(1)[0])
    sd = ref.state_dict()
    sd["param_groups"] = [
        {k: v for k, v in g.items() if k in HYPERPARAMETER_KEYS} | {"degenerated_to_sgd": True}
        for g in sd["param_groups"]
    ]
    opt = RAdam(clone_params(params))
    opt.load_state_dict(sd)
    assert all(type(s["step"]) is int and s["step"] == 1 for s in opt.state.values())


def test_complex_params_are_rejected() -> None:
    p = torch.nn.Parameter(torch.randn(3, dtype=torch.complex64))
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="complex"):
        RAdam([p]).step()
