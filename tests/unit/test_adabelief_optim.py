"""AdaBelief (papers/adabelief/optim.py) against adabelief-pytorch 0.2.1, hand-derived steps and AdaBelief's invariants.

Parity is asserted bit for bit (stronger than rtol 1e-12): our update follows the package's operation
order, including the rectified step size (common.optim.rectify.rectified_step_size), so float64 runs are equal.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import math
import re
from fractions import Fraction
from typing import Any

import adabelief_pytorch
import pytest
import torch

from common.kernels import default_impl, using
from common.optim.rectify import rectified_step_size, rectifier, rho_t
from papers.adabelief.optim import PACKAGE_DEFAULT, PAPER_CIFAR, AdaBelief
from tests.impl_cases import SLOW_IMPLS, impl_cross

# Every test that steps an optimizer runs once per kernel implementation (tests/conftest.py::every_impl);
# validators, defaults and scalar schedules involve no implementation and run once.
per_impl = pytest.mark.usefixtures("every_impl")

SHAPES = [(4, 3), (5,), (2, 3, 2)]
# Gradient scales per tensor: ~1, well below the eps=1e-8 floor sqrt(eps/(1-b2)) ~ 3e-3, and large.
SCALES = [1.0, 1e-3, 10.0]
HYPERPARAMETERS = {"lr", "betas", "eps", "weight_decay", "amsgrad", "weight_decouple", "fixed_decay", "rectify",
                   "degenerated_to_sgd"}
FLAGS = ["amsgrad", "weight_decouple", "fixed_decay", "rectify", "degenerated_to_sgd"]


def make_params(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)) for s in SHAPES]


def clone_params(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def make_grads(steps: int, dtype: torch.dtype = torch.float64, seed: int = 1) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        [(c * torch.randn(s, generator=gen, dtype=torch.float64)).to(dtype)
         for s, c in zip(SHAPES, SCALES, strict=True)]
        for _ in range(steps)
    ]


def apply(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], grads: list[torch.Tensor]) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    opt.step()


def package(params: Any, **kw: Any) -> torch.optim.Optimizer:
    """adabelief-pytorch 0.2.1 with its constructor's prints (change log, mode banners) swallowed."""
    with contextlib.redirect_stdout(io.StringIO()):
        return adabelief_pytorch.AdaBelief(params, print_change_log=False, **kw)


def ema(values: list[torch.Tensor], beta: float) -> torch.Tensor:
    """Closed-form EMA from zero, (1-beta) sum_i beta^(t-i) x_i: independent of the optimizer's recurrence."""
    t = len(values)
    return sum((1 - beta) * beta ** (t - i) * x for i, x in enumerate(values, start=1))


# Fused kernels (compiled, triton) evaluate each update as one expression: the same maths, rounded once per
# expression instead of once per torch op, so they match the package to a few ulp instead of bit for bit.
FUSED_TOLERANCE = {torch.float64: (1e-12, 1e-15), torch.float32: (1e-5, 1e-7)}


def assert_equal(ours: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    if default_impl() in ("compiled", "triton"):
        rtol, atol = FUSED_TOLERANCE.get(ours.dtype, (2e-3, 1e-3))
        assert ours.dtype == ref.dtype, what
        torch.testing.assert_close(ours, ref, rtol=rtol, atol=atol, msg=what)
        return
    assert ours.dtype == ref.dtype and torch.equal(ours, ref), (
        f"{what}: max |diff| {(ours.double() - ref.double()).abs().max().item():.3g}"
    )


def assert_same_state(ours: dict, ref: dict, what: str) -> None:
    assert set(ours) == set(ref), what
    assert type(ours["step"]) is int and ours["step"] == ref["step"], what
    for key in set(ours) - {"step"}:
        assert_equal(ours[key], ref[key], f"{what} {key}")


# --- parity with adabelief-pytorch 0.2.1 -------------------------------------------------------------

MODES: dict[str, dict[str, Any]] = {
    "a_paper_cifar": PAPER_CIFAR,
    "a_paper_cifar_lr1e-2": {**PAPER_CIFAR, "lr": 1e-2, "weight_decay": 0.1},
    "b_package_default": PACKAGE_DEFAULT,
    "b_package_default_lr1e-2": {**PACKAGE_DEFAULT, "lr": 1e-2},
    "b_rectify_no_sgd_phase": {**PACKAGE_DEFAULT, "lr": 1e-2, "weight_decay": 0.1, "degenerated_to_sgd": False},
    "c_decoupled_fixed_decay": {**PACKAGE_DEFAULT, "lr": 1e-2, "weight_decay": 0.02, "fixed_decay": True},
    "c_decoupled_fixed_decay_no_rectify": {**PAPER_CIFAR, "weight_decay": 0.02, "weight_decouple": True,
                                           "fixed_decay": True},
    "d_amsgrad": {**PAPER_CIFAR, "lr": 1e-2, "amsgrad": True},
    "d_amsgrad_rectify": {**PACKAGE_DEFAULT, "lr": 1e-2, "eps": 1e-8, "amsgrad": True},
    "wd_coupled_rectify": {**PACKAGE_DEFAULT, "lr": 1e-2, "weight_decay": 0.1, "weight_decouple": False},
    "wd_decoupled": {**PAPER_CIFAR, "lr": 1e-2, "weight_decay": 0.1, "weight_decouple": True},
    "wd_decoupled_rectify": {**PACKAGE_DEFAULT, "lr": 1e-2, "weight_decay": 0.1},
    "betas_other": {**PAPER_CIFAR, "lr": 3e-2, "betas": (0.5, 0.9), "weight_decay": 0.0},
}


# the slow implementations on one mode per flag combination that changes the update
SLOW_MODES = ["a_paper_cifar", "b_package_default", "c_decoupled_fixed_decay", "d_amsgrad_rectify"]


@pytest.mark.parametrize("impl,kw", impl_cross(MODES, SLOW_MODES))
def test_matches_package_bit_for_bit_float64(impl: str, kw: dict[str, Any]) -> None:
    with using(impl):
        _matches_package(kw)


def _matches_package(kw: dict[str, Any]) -> None:
    ours_p = make_params()
    ref_p = clone_params(ours_p)
    ours, ref = AdaBelief(ours_p, **kw), package(ref_p, **kw)
    for t, grads in enumerate(make_grads(100), start=1):
        apply(ours, ours_p, grads)
        apply(ref, ref_p, grads)
        for i, (p, q) in enumerate(zip(ours_p, ref_p, strict=True)):
            assert_equal(p, q, f"theta[{i}] at t={t}")
    for i, (p, q) in enumerate(zip(ours_p, ref_p, strict=True)):
        assert_same_state(ours.state[p], ref.state[q], f"state[{i}]")
        assert ours.state[p]["step"] == 100


@per_impl
def test_amsgrad_max_is_ignored_by_rectified_steps_as_in_the_package() -> None:
    """Official quirk: with rectify on, amsgrad only tracks s_max; theta is the same as without amsgrad."""
    kw = MODES["d_amsgrad_rectify"]
    with_max, without = make_params(), make_params()
    opt_max, opt = AdaBelief(with_max, **kw), AdaBelief(without, **{**kw, "amsgrad": False})
    grads = make_grads(100)
    for t, g in enumerate(grads, start=1):
        # Shrinking gradients make s fall below its running max, so a max-using rectified step would differ.
        g = [x / t for x in g]
        apply(opt_max, with_max, g)
        apply(opt, without, g)
    # (The 1e-3-scale tensor sits on the eps floor, where s only grows and s_max = s.)
    gaps = [bool((opt_max.state[p]["max_exp_avg_var"] > opt_max.state[p]["exp_avg_var"]).any()) for p in with_max]
    assert gaps == [True, False, True], "s < s_max must occur, or the test cannot tell the quirk from the alternative"
    for p, q in zip(with_max, without, strict=True):
        assert_equal(p, q, "theta with amsgrad vs without, rectify on")
    # And without rectify the max is used, so the same run does differ.
    ams_p, plain_p = make_params(), make_params()
    ams, plain = AdaBelief(ams_p, **{**kw, "rectify": False}), AdaBelief(plain_p, **{**kw, "rectify": False,
                                                                                   "amsgrad": False})
    for t, g in enumerate(grads, start=1):
        g = [x / t for x in g]
        apply(ams, ams_p, g)
        apply(plain, plain_p, g)
    assert [not torch.equal(p, q) for p, q in zip(ams_p, plain_p, strict=True)] == gaps


def test_defaults_and_presets() -> None:
    """PACKAGE_DEFAULT is read off the package's signature; PAPER_CIFAR differs in exactly the options the paper's
    CIFAR runs set."""
    ref_sig = inspect.signature(adabelief_pytorch.AdaBelief.__init__).parameters
    ours_sig = inspect.signature(AdaBelief.__init__).parameters
    ref_defaults = {k: v.default for k, v in ref_sig.items() if k not in ("self", "params", "print_change_log")}
    ours_defaults = {k: v.default for k, v in ours_sig.items() if k not in ("self", "params", "impl")}
    assert ref_defaults == ours_defaults == PACKAGE_DEFAULT
    assert AdaBelief(make_params()).defaults == PACKAGE_DEFAULT
    changed = {k for k in PACKAGE_DEFAULT if PAPER_CIFAR[k] != PACKAGE_DEFAULT[k]}
    assert changed == {"eps", "weight_decay", "weight_decouple", "rectify"}
    assert PAPER_CIFAR["eps"] == 1e-8 and PAPER_CIFAR["weight_decay"] == 5e-4 and PAPER_CIFAR["amsgrad"] is False


@per_impl
def test_package_fp16_matches_ours_bit_for_bit() -> None:
    """0.2.1 computes fp16 params in fp32 with fp32 state, as we do (for fp16; bf16 is our extension)."""
    for kw in (MODES["a_paper_cifar_lr1e-2"], MODES["wd_decoupled_rectify"]):
        ours_p = make_params(torch.float16)
        ref_p = clone_params(ours_p)
        ours, ref = AdaBelief(ours_p, **kw), package(ref_p, **kw)
        for grads in make_grads(20, dtype=torch.float16):
            apply(ours, ours_p, grads)
            apply(ref, ref_p, grads)
        for p, q in zip(ours_p, ref_p, strict=True):
            assert_equal(p, q, "fp16 theta")
            assert_same_state(ours.state[p], ref.state[q], "fp16 state")


@per_impl
def test_loads_a_package_checkpoint_and_continues_like_the_package() -> None:
    kw = MODES["d_amsgrad_rectify"]
    ref_p = make_params()
    ref = package(ref_p, **kw)
    grads = make_grads(20)
    for g in grads[:8]:
        apply(ref, ref_p, g)
    buf = io.BytesIO()
    torch.save(ref.state_dict(), buf)
    buf.seek(0)
    ours_p = clone_params(ref_p)
    ours = AdaBelief(ours_p, **kw)
    ours.load_state_dict(torch.load(buf))
    assert set(ours.param_groups[0]) == HYPERPARAMETERS | {"params"}  # the package's "buffer" cache is dropped
    for g in grads[8:]:
        apply(ref, ref_p, g)
        apply(ours, ours_p, g)
    for p, q in zip(ours_p, ref_p, strict=True):
        assert_equal(p, q, "theta")
        assert_same_state(ours.state[p], ref.state[q], "state")


# --- eps accumulation and hand-derived steps -----------------------------------------------------------


@pytest.mark.parametrize("eps", [1e-8, 1e-16])
@pytest.mark.parametrize("rectify", [False, True])
def test_eps_accumulates_in_s(every_impl: str, eps: float, rectify: bool) -> None:
    """Zero gradients from zero state: s_T = eps (1-b2^T)/(1-b2); "eps added once" gives s_T = eps. The slow
    implementations (a compiled graph, Triton's interpreter) stop at T=50, where the value is exact; the long horizon,
    a property of float64 rounding in the recurrence, is checked on the eager ones.

    Tolerance: the exact value (rational arithmetic on the float b2) is met to 1e-15 for T <= 50.
    Beyond that no float64 implementation can: s <- b2 s + eps rounds twice per step and, for T << 1/(1-b2),
    the errors are barely damped (measured: the plain Python recurrence ``s = s * b2 + eps`` is off by ~1e-14 at
    T=1000, 1.1e-15 already at T=89 for eps=1e-16, bit-identical to the optimizer's s). There we hold it to the
    first-order a-priori bound 2 T u (u = 2^-53), which still fails "eps added once" by a factor ~T.
    Note the closed form evaluated in floats is itself off by 1.4e-14 at T=2 (cancellation in 1 - b2^T).
    """
    beta2 = 0.999
    checkpoints = {1: 1e-15, 2: 1e-15, 3: 1e-15, 10: 1e-15, 50: 1e-15, 300: 600 * 2**-53, 1000: 2000 * 2**-53}
    if every_impl in SLOW_IMPLS:
        checkpoints = {t: tol for t, tol in checkpoints.items() if t <= 50}
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    theta0 = p.detach().clone()
    opt = AdaBelief([p], lr=0.1, betas=(0.9, beta2), eps=eps, rectify=rectify)
    b, e = Fraction(beta2), Fraction(eps)
    for t in range(1, max(checkpoints) + 1):
        p.grad = torch.zeros_like(p)
        opt.step()
        if t in checkpoints:
            expected = float(e * (1 - b**t) / (1 - b))
            torch.testing.assert_close(opt.state[p]["exp_avg_var"], torch.full_like(p, expected),
                                       rtol=checkpoints[t], atol=0, msg=f"s at T={t}")
    horizon = max(checkpoints)  # eps (1-b2^T)/(1-b2): 632 eps at T=1000, 48.8 eps at T=50; "added once": eps
    assert opt.state[p]["exp_avg_var"][0].item() > (600 if horizon == 1000 else 48) * eps
    assert torch.equal(p.detach(), theta0)  # m = 0: no movement


@per_impl
def test_hand_derived_first_step_paper_mode() -> None:
    """m1 = (1-b1) g, s1 = (1-b2) b1^2 g^2 + eps, so d theta = -lr g / (sqrt(b1^2 g^2 + eps/(1-b2)) + eps).

    theta0 = 0, so theta1 is the step itself and no cancellation against theta0 hides an error.
    """
    lr, (b1, b2), eps = PAPER_CIFAR["lr"], PAPER_CIFAR["betas"], PAPER_CIFAR["eps"]
    g = torch.tensor([0.0, 1e-9, -1e-6, 3e-4, -2e-3, 0.1, -1.0, 50.0], dtype=torch.float64)
    p = torch.nn.Parameter(torch.zeros_like(g))
    opt = AdaBelief([p], **{**PAPER_CIFAR, "weight_decay": 0.0})
    p.grad = g.clone()
    opt.step()
    expected = -lr * g / ((b1**2 * g**2 + eps / (1 - b2)).sqrt() + eps)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-14, atol=0)
    torch.testing.assert_close(opt.state[p]["exp_avg"], (1 - b1) * g, rtol=1e-15, atol=0)
    torch.testing.assert_close(opt.state[p]["exp_avg_var"], (1 - b2) * b1**2 * g**2 + eps, rtol=1e-15, atol=0)
    # |g| >> sqrt(eps/(1-b2)) ~ 3.2e-3: the step is ~ -lr sign(g)/b1; well below it, the eps floor shrinks it.
    big = g.abs() > 0.05
    torch.testing.assert_close(p.detach()[big], -lr * g[big].sign() / b1, rtol=1e-3, atol=0)
    assert (p.detach()[1:3].abs() < 1e-3 * lr).all()


@per_impl
def test_coupled_decay_is_a_gradient_of_wd_theta_and_leaves_p_grad_alone() -> None:
    wd = 0.1
    kw = {**PAPER_CIFAR, "lr": 1e-2, "weight_decay": wd}
    params, twin = make_params(), make_params()
    opt = AdaBelief(params, **kw)
    opt_twin = AdaBelief(twin, **{**kw, "weight_decay": 0.0})
    for t in range(1, 6):
        grads = [torch.zeros_like(p) for p in params]
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        twin_grads = [wd * q.detach() for q in twin]
        opt.step()
        apply(opt_twin, twin, twin_grads)
        for p, q, g in zip(params, twin, grads, strict=True):
            assert_equal(p, q, f"zero grad + coupled decay vs grad wd*theta, t={t}")
            assert p.grad is g and not p.grad.any(), "p.grad was written to"
    # A nonzero gradient is not touched either (the package adds wd*theta into it).
    grads = make_grads(1)[0]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    opt.step()
    for p, g in zip(params, grads, strict=True):
        assert_equal(p.grad, g, "p.grad after step")
    ref_p = make_params()
    ref = package(ref_p, **kw)
    apply(ref, ref_p, grads)
    assert not torch.equal(ref_p[0].grad, grads[0])  # the documented deviation is real


# --- rectified branch ----------------------------------------------------------------------------------


def test_rectification_schedule() -> None:
    """beta2=0.999: rho_5 = 4.996 < 5 <= rho_6 = 5.994; the step size is r_t sqrt(bc2)/bc1 in the package's rounding."""
    assert [rectified_step_size(t, 0.9, 0.999) is not None for t in range(1, 8)] == [False] * 5 + [True] * 2
    for t in (6, 7, 50, 1000, 100000):
        for b1, b2 in ((0.9, 0.999), (0.5, 0.99), (0.0, 0.95)):
            if rho_t(t, b2) >= 5:
                expected = rectifier(t, b2) * math.sqrt(1 - b2**t) / (1 - b1**t)
                assert rectified_step_size(t, b1, b2) == pytest.approx(expected, rel=1e-14)


@per_impl
@pytest.mark.parametrize("degenerated_to_sgd", [True, False])
def test_rectified_branch_hand_derived(degenerated_to_sgd: bool) -> None:
    """t <= 5: theta - lr/bc1 m (or no update, decay only); t = 6: theta - lr r_6 sqrt(bc2)/bc1 m/(sqrt(s)+eps)."""
    lr, (b1, b2), eps, wd = 1e-2, (0.9, 0.999), 1e-8, 0.1
    params = make_params()
    theta = [p.detach().clone() for p in params]
    opt = AdaBelief(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, rectify=True,
                    degenerated_to_sgd=degenerated_to_sgd)
    grads = make_grads(6)
    s = [torch.zeros_like(x) for x in theta]
    for t, g in enumerate(grads, start=1):
        apply(opt, params, g)
        for i, p in enumerate(params):
            m = ema([gs[i] for gs in grads[:t]], b1)
            s[i] = b2 * s[i] + (1 - b2) * (g[i] - m) ** 2 + eps
            decayed = theta[i] * (1 - lr * wd)
            if t <= 5:
                theta[i] = decayed - lr / (1 - b1**t) * m if degenerated_to_sgd else decayed
            else:
                r6 = rectifier(6, b2)
                assert r6 == pytest.approx(0.025821112801858, rel=1e-10)
                theta[i] = decayed - lr * r6 * math.sqrt(1 - b2**6) / (1 - b1**6) * m / (s[i].sqrt() + eps)
            torch.testing.assert_close(p.detach(), theta[i], rtol=1e-12, atol=1e-15, msg=f"theta[{i}] t={t}")
            torch.testing.assert_close(opt.state[p]["exp_avg_var"], s[i], rtol=1e-12, atol=0)


# --- state_dict ----------------------------------------------------------------------------------------


# (mode, save_at): before and after the rectification threshold; the slow implementations save once in each mode.
ROUND_TRIPS = {f"{mode}-{at}": (mode, at) for mode in ("a_paper_cifar", "d_amsgrad_rectify") for at in (3, 50)}


@pytest.mark.parametrize("impl,case", impl_cross(ROUND_TRIPS, ["a_paper_cifar-3", "d_amsgrad_rectify-50"]))
def test_state_dict_round_trip_continues_bit_identically(impl: str, case: tuple[str, int]) -> None:
    with using(impl):
        _round_trip(*case)


def _round_trip(mode: str, save_at: int) -> None:
    kw = MODES[mode]
    grads = make_grads(60)
    straight = make_params()
    opt = AdaBelief(straight, **kw)
    for g in grads:
        apply(opt, straight, g)

    params = make_params()
    opt = AdaBelief(params, **kw)
    for g in grads[:save_at]:
        apply(opt, params, g)
    saved_s = [opt.state[p]["exp_avg_var"].clone() for p in params]
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    resumed = clone_params(params)
    other = {"lr": 0.5, "betas": (0.5, 0.5), "eps": 1e-3, "weight_decay": 0.3,
             **{f: not kw[f] for f in FLAGS}}
    opt2 = AdaBelief(resumed, **other)  # every hyperparameter is overwritten by the load
    opt2.load_state_dict(torch.load(buf))
    assert {k: v for k, v in opt2.param_groups[0].items() if k != "params"} == {**kw, "betas": tuple(kw["betas"])}
    for p, s in zip(resumed, saved_s, strict=True):
        assert_equal(opt2.state[p]["exp_avg_var"], s, "loaded s (carries the accumulated eps)")
        assert type(opt2.state[p]["step"]) is int
    for g in grads[save_at:]:
        apply(opt2, resumed, g)
    for p, q in zip(straight, resumed, strict=True):
        assert_equal(q, p, "resumed vs uninterrupted theta")
        assert opt2.state[q]["step"] == 60


@per_impl
def test_state_holds_only_step_and_buffers_and_groups_only_hyperparameters() -> None:
    for amsgrad in (False, True):
        params = make_params()
        opt = AdaBelief(params, amsgrad=amsgrad)
        for g in make_grads(12):
            apply(opt, params, g)
        sd = opt.state_dict()
        for s in sd["state"].values():
            assert set(s) == {"step", "exp_avg", "exp_avg_var"} | ({"max_exp_avg_var"} if amsgrad else set())
            assert type(s["step"]) is int and s["step"] == 12
        for group in sd["param_groups"]:
            assert set(group) == HYPERPARAMETERS | {"params"}


@per_impl
def test_amsgrad_switched_on_mid_run_starts_its_max_from_the_current_s() -> None:
    params = make_params()
    opt = AdaBelief(params, **MODES["d_amsgrad"] | {"amsgrad": False})
    grads = make_grads(6)
    for g in grads[:3]:
        apply(opt, params, g)
    opt.param_groups[0]["amsgrad"] = True
    apply(opt, params, grads[3])
    for p in params:
        assert_equal(opt.state[p]["max_exp_avg_var"], opt.state[p]["exp_avg_var"], "s_max after switch")


# --- dtypes --------------------------------------------------------------------------------------------


@per_impl
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["a_paper_cifar_lr1e-2", "wd_decoupled_rectify", "d_amsgrad"])
def test_low_precision_update_is_the_fp32_update_then_cast(dtype: torch.dtype, mode: str) -> None:
    kw = MODES[mode]
    low = make_params(dtype)
    ref = [torch.nn.Parameter(p.detach().float()) for p in low]
    opt_low, opt_ref = AdaBelief(low, **kw), AdaBelief(ref, **kw)
    for t, grads in enumerate(make_grads(12, dtype=dtype), start=1):
        apply(opt_low, low, grads)
        apply(opt_ref, ref, [g.float() for g in grads])
        for i, (p, q) in enumerate(zip(low, ref, strict=True)):
            assert_equal(p, q.detach().to(dtype), f"theta[{i}] t={t}")
            assert_same_state(opt_low.state[p], opt_ref.state[q], f"state[{i}] t={t}")
            assert opt_low.state[p]["exp_avg_var"].dtype == torch.float32
            q.data = p.detach().float()  # the fp32 reference restarts each step from the rounded theta


@per_impl
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_state_stays_fp32_after_load(dtype: torch.dtype) -> None:
    kw = MODES["d_amsgrad_rectify"]
    grads = make_grads(20, dtype=dtype)
    straight = make_params(dtype)
    opt = AdaBelief(straight, **kw)
    for g in grads:
        apply(opt, straight, g)
    params = make_params(dtype)
    opt = AdaBelief(params, **kw)
    for g in grads[:7]:
        apply(opt, params, g)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    saved = {k: [opt.state[p][k].clone() for p in params] for k in ("exp_avg", "exp_avg_var", "max_exp_avg_var")}
    resumed = clone_params(params)
    opt2 = AdaBelief(resumed, **kw)
    opt2.load_state_dict(torch.load(buf))
    for key, values in saved.items():
        for p, v in zip(resumed, values, strict=True):
            assert_equal(opt2.state[p][key], v, f"{key} after load")  # fp32, not rounded to {dtype}
    for g in grads[7:]:
        apply(opt2, resumed, g)
    for p, q in zip(straight, resumed, strict=True):
        assert_equal(q, p, "resumed vs uninterrupted")


# --- optimizer API -------------------------------------------------------------------------------------


@per_impl
def test_param_groups_equal_separate_optimizers() -> None:
    cfg_a = {**PAPER_CIFAR, "lr": 1e-2, "weight_decay": 0.1}
    cfg_b = {**PACKAGE_DEFAULT, "lr": 3e-3, "betas": (0.8, 0.95), "weight_decay": 0.05, "fixed_decay": True,
             "amsgrad": True, "degenerated_to_sgd": False}
    joint = make_params()
    a, b = clone_params(joint[:2]), clone_params(joint[2:])
    opt = AdaBelief([{"params": joint[:2], **cfg_a}, {"params": joint[2:], **cfg_b}])
    opt_a, opt_b = AdaBelief(a, **cfg_a), AdaBelief(b, **cfg_b)
    for g in make_grads(30):
        apply(opt, joint, g)
        apply(opt_a, a, g[:2])
        apply(opt_b, b, g[2:])
    for p, q in zip(joint, a + b, strict=True):
        assert_equal(p, q, "joint vs separate")
    assert not torch.equal(joint[2], make_params()[2])  # the second group did move


@per_impl
def test_params_without_grad_are_skipped() -> None:
    params = make_params()
    frozen = params[1]
    before = frozen.detach().clone()
    opt = AdaBelief(params, weight_decay=0.1)  # decoupled decay must not touch a param without grad either
    for g in make_grads(8):
        for p, gi in zip(params, g, strict=True):
            p.grad = None if p is frozen else gi.clone()
        opt.step()
    assert torch.equal(frozen, before)
    assert frozen not in opt.state
    assert opt.state[params[0]]["step"] == 8


def test_sparse_gradients_raise_a_clear_error() -> None:
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = AdaBelief(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="AdaBelief does not support sparse gradients"):
        opt.step()


def test_complex_params_raise() -> None:
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.complex128))
    opt = AdaBelief([p])
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="complex"):
        opt.step()


_INVALID = [
    ({"lr": -1e-3}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"lr": "0.1"}, "lr"),
    ({"betas": (1.0, 0.999)}, "betas[0]"),
    ({"betas": (-0.1, 0.999)}, "betas[0]"),
    ({"betas": (0.9, 1.0)}, "betas[1]"),
    ({"betas": (0.9, -1e-3)}, "betas[1]"),
    ({"betas": (0.9,)}, "betas"),
    ({"eps": 0.0}, "eps"),
    ({"eps": -1e-16}, "eps"),
    ({"eps": float("inf")}, "eps"),
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"weight_decay": float("inf")}, "weight_decay"),
] + [({flag: bad}, flag) for flag in FLAGS for bad in (1, "False", None)]


@pytest.mark.parametrize(("kwargs", "name"), _INVALID)
def test_invalid_hyperparameters_raise_value_error_naming_the_argument(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(name)):
        AdaBelief(make_params(), **kwargs)
    with pytest.raises(ValueError, match=re.escape(name)):  # the same check for a per-group override
        AdaBelief([{"params": make_params(), **kwargs}])
