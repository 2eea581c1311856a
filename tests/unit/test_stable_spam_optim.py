"""Stable-SPAM and SPAM: reductions to Adam/AdamW, hand-derived reset steps in both semantics,
AdaClip/AdaGN values on small tensors, SPAM's clip and warmup, and resume across a reset."""

import io
import math

import pytest
import torch

from common.kernels import NATIVE, using
from papers.stable_spam import SPAM, StableSPAM
from papers.stable_spam.common_checks import cosine_scale, cosine_warmup_factor
from tests.impl_cases import impl_cross

# Every test that steps an optimizer runs once per kernel implementation (tests/conftest.py::every_impl), Stable-SPAM's
# also in its C kernel (every_impl_and_native); validators, defaults and scalar schedules involve no implementation
# and run once.
per_impl = pytest.mark.usefixtures("every_impl")
per_impl_native = pytest.mark.usefixtures("every_impl_and_native")

B1, B2 = 0.9, 0.999
TINY = 1e-30  # an eps that cannot move a float64 ratio at rtol 1e-10


def _grads(steps: int, shape=(5, 4), seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(steps)]


def _run(opt_fn, grads, p0=None, before_step=None):
    """Feed a fixed gradient sequence; returns the param after each step (and the optimizer)."""
    p = torch.nn.Parameter(p0.clone() if p0 is not None else torch.linspace(-1, 1, grads[0].numel(),
                                                                            dtype=torch.float64).view_as(grads[0]))
    opt = opt_fn([p])
    out = []
    for i, g in enumerate(grads):
        p.grad = g.clone()
        if before_step is not None:
            before_step(i, opt)
        opt.step()
        out.append(p.detach().clone())
    return out, opt


def _steps(trajectory, p0):
    prev = [p0, *trajectory[:-1]]
    return [(b - a) for a, b in zip(prev, trajectory, strict=True)]


# ---------------------------------------------------------------- reductions


@per_impl_native
@pytest.mark.parametrize("semantics", ["official", "fixed"])
def test_stablespam_with_every_feature_off_is_torch_adamw(semantics):
    grads = _grads(100)
    kw = dict(lr=1e-2, betas=(B1, B2), eps=1e-8, weight_decay=0.1)
    ours, _ = _run(lambda ps: StableSPAM(ps, adaclip=False, adagn=False, update_proj_gap=None, total_T=None,
                                         semantics=semantics, **kw), grads)
    ref, _ = _run(lambda ps: torch.optim.AdamW(ps, **kw), grads)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


def _hf_adamw(grads, p0, lr, betas, eps, wd):
    """Hugging Face's (transformers < 4.40) AdamW with correct_bias, written out: the SPAM base."""
    p, m, v, out = p0.clone(), torch.zeros_like(p0), torch.zeros_like(p0), []
    for t, g in enumerate(grads, 1):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        step = lr * math.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t)
        p = p - step * m / (v.sqrt() + eps)
        p = p - lr * wd * p
        out.append(p.clone())
    return out


@per_impl
def test_spam_without_clip_and_reset_is_hf_adamw():
    grads = _grads(100)
    p0 = torch.linspace(-1, 1, 20, dtype=torch.float64).view(5, 4)
    ours, _ = _run(lambda ps: SPAM(ps, lr=1e-2, eps=1e-6, weight_decay=0.1, threshold=0, DeltaT=None), grads, p0)
    for a, b in zip(ours, _hf_adamw(grads, p0, 1e-2, (B1, B2), 1e-6, 0.1), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


@per_impl
def test_spam_without_clip_reset_decay_and_eps_is_torch_adam():
    grads = _grads(100)
    ours, _ = _run(lambda ps: SPAM(ps, lr=1e-2, eps=TINY, threshold=0, DeltaT=None), grads)
    ref, _ = _run(lambda ps: torch.optim.Adam(ps, lr=1e-2, eps=0.0), grads)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


# ---------------------------------------------------------------- the reset step (official semantics with Bug 1, fixed)


def _r(k: int) -> float:
    return ((1 - B1**k) / (1 - B1)) / math.sqrt((1 - B2**k) / (1 - B2))


def _j(j: int) -> float:
    return ((1 - B1**j) / (1 - B1 ** (j + 1))) / math.sqrt((1 - B2**j) / (1 - B2 ** (j + 1)))


@per_impl_native
@pytest.mark.parametrize("k", [10, 25, 100])
def test_official_reset_step_applies_the_old_moments_with_t1_bias_correction(k):
    g = torch.full((3, 2), 0.5, dtype=torch.float64)
    p0 = torch.zeros_like(g)
    lr = 1e-3
    traj, _ = _run(lambda ps: StableSPAM(ps, lr=lr, eps=TINY, adaclip=False, adagn=False, update_proj_gap=k),
                   [g] * (k + 3), p0)
    steps = [(-d / lr) for d in _steps(traj, p0)]
    torch.testing.assert_close(steps[k - 1], torch.full_like(g, _r(k)), rtol=1e-10, atol=0)  # step n = k
    for j in (1, 2, 3):
        torch.testing.assert_close(steps[k - 1 + j], torch.full_like(g, _j(j)), rtol=1e-10, atol=0)
    # the formula gives 0.744, 0.858, 0.910; 0.744, 0.856, 0.904 were measured in another setting
    assert [round(_j(j), 3) for j in (1, 2, 3)] == [0.744, 0.858, 0.910]
    assert round(_r(10), 2) == 2.06


@per_impl_native
def test_fixed_reset_step_is_a_fresh_adam_first_step_times_the_warmup_factor():
    k, lr = 10, 1e-3
    g = torch.full((3, 2), 0.5, dtype=torch.float64)
    p0 = torch.zeros_like(g)
    traj, _ = _run(lambda ps: StableSPAM(ps, lr=lr, eps=TINY, adaclip=False, adagn=False, update_proj_gap=k,
                                         semantics="fixed", reset_warmup_steps=3), [g] * (k + 4), p0)
    steps = [(-d / lr) for d in _steps(traj, p0)]
    torch.testing.assert_close(steps[k - 1], torch.full_like(g, 0.01), rtol=1e-10, atol=0)
    for j in (1, 2):  # fresh Adam on a constant gradient moves by 1 per lr; times the cosine warmup
        torch.testing.assert_close(steps[k - 1 + j], torch.full_like(g, cosine_warmup_factor(j, 3)), rtol=1e-10,
                                   atol=0)
    torch.testing.assert_close(steps[k + 2], torch.ones_like(g), rtol=1e-10, atol=0)


def _thresholds(semantics, gap, grads):
    seen = []
    _run(lambda ps: StableSPAM(ps, update_proj_gap=gap, semantics=semantics, adagn=False, track_stats=True),
         grads, before_step=lambda i, opt: seen.append(opt.stats.get("threshold_mean")))
    return seen[1:]  # the value after step i sits in seen[i + 1]


@per_impl
def test_official_adaclip_threshold_inflates_after_a_reset_by_its_restarted_bias_correction():
    k, gamma3 = 5, 0.999
    grads = _grads(k + 2)
    seen = _thresholds("official", k, grads)
    m = 0.0
    for g in grads[: k + 1]:
        m = gamma3 * m + (1 - gamma3) * g.abs().max().item()
    # step k+1 is the first after the reset: t = 2 for an EMA that has seen k+1 gradients
    assert seen[k] == pytest.approx(m / (1 - gamma3**2), rel=1e-12)
    assert seen[k] > 2 * seen[k - 2]  # inflated by ~(k + 1)/2 here; 50-270x at a gap of 100


@per_impl
def test_fixed_adaclip_threshold_is_continuous_across_a_reset():
    k = 5
    grads = _grads(k + 3)
    with_reset, without = _thresholds("fixed", k, grads), _thresholds("fixed", None, grads)
    for a, b in zip(with_reset, without, strict=True):
        assert abs(float(a) / float(b) - 1) <= 1e-12


# ---------------------------------------------------------------- AdaClip and AdaGN by hand


@per_impl_native
def test_adaclip_at_t1_clips_nothing_and_rescales_a_planted_spike_keeping_sign_and_ratios():
    p = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    opt = StableSPAM([p], adagn=False, mutate_grad=True, update_proj_gap=None)
    first = torch.tensor([0.3, -1.0, 0.2, 0.5, -0.1, 0.7], dtype=torch.float64)
    p.grad = first.clone()
    opt.step()
    assert torch.equal(p.grad, first)  # M_hat = max|g| at t = 1
    spike = torch.tensor([0.3, -50.0, 0.2, 30.0, -0.1, 0.7], dtype=torch.float64)
    p.grad = spike.clone()
    opt.step()
    m = 0.999 * (0.001 * 1.0) + 0.001 * 50.0
    m_hat = m / (1 - 0.999**2)
    expected = spike.clone()
    mask = spike.abs() > m_hat
    assert mask.tolist() == [False, True, False, True, False, False]
    expected[mask] = spike[mask] / 50.0 * m_hat
    torch.testing.assert_close(p.grad, expected, rtol=1e-14, atol=0)
    assert p.grad[1] < 0 < p.grad[3] and p.grad[1] / p.grad[3] == pytest.approx(-50 / 30)


@per_impl_native
def test_adaclip_leaves_p_grad_alone_by_default():
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = StableSPAM([p], update_proj_gap=None)
    for g in ([1.0, 1.0, 1.0], [100.0, 1.0, 1.0]):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    assert p.grad.tolist() == [100.0, 1.0, 1.0]


@per_impl_native
@pytest.mark.parametrize("norm", [1e-3, 1.0, 7.0])
def test_adagn_with_a_constant_norm_outputs_norm_one_over_one_plus_eps_over_n(norm):
    eps = 1e-3
    g = torch.tensor([3.0, 4.0], dtype=torch.float64) / 5 * norm
    seen = []
    _run(lambda ps: StableSPAM(ps, eps=eps, adaclip=False, update_proj_gap=None, track_stats=True), [g] * 5,
         before_step=lambda i, opt: seen.append(opt.stats.get("grad_norm_out")))
    for v in seen[1:]:
        assert float(v) == pytest.approx(1 / (1 + eps / norm), rel=1e-12)


@per_impl_native
def test_adagn_passes_a_zero_gradient_unchanged():
    p = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = StableSPAM([p], update_proj_gap=None, track_stats=True)
    for _ in range(3):
        p.grad = torch.zeros(4, dtype=torch.float64)
        opt.step()
        assert float(opt.stats["grad_norm_out"]) == 0.0
    assert torch.equal(p.detach(), torch.ones(4, dtype=torch.float64))
    assert all(torch.isfinite(v).all() for v in opt.state[p].values() if isinstance(v, torch.Tensor))


@per_impl_native
def test_adagn_values_by_hand_over_three_steps():
    g1, g2, eps = 0.9, 0.8, 1e-8
    grads = [torch.tensor([3.0, 4.0], dtype=torch.float64) * s for s in (1.0, 2.0, 0.5)]
    seen = []
    _run(lambda ps: StableSPAM(ps, gamma1=g1, gamma2=g2, eps=eps, adaclip=False, update_proj_gap=None,
                               track_stats=True), grads,
         before_step=lambda i, opt: seen.append(opt.stats.get("grad_norm_out")))
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = StableSPAM([p], gamma1=g1, gamma2=g2, eps=eps, adaclip=False, update_proj_gap=None, track_stats=True)
    m = v = 0.0
    for t, g in enumerate(grads, 1):
        n = g.norm().item()
        m, v = g1 * m + (1 - g1) * n, g2 * v + (1 - g2) * n * n
        c = (m / (1 - g1**t)) / (math.sqrt(v / (1 - g2**t)) + eps)
        p.grad = g.clone()
        opt.step()
        assert float(opt.stats["grad_norm_out"]) == pytest.approx(c, rel=1e-12)


# ---------------------------------------------------------------- the cosine scale


def test_official_scale_is_periodic_and_fixed_holds_eta_min():
    T, eta = 20, 0.5
    assert cosine_scale(0, T, eta, periodic=True) == 1.0
    assert cosine_scale(T + 1, T, eta, periodic=True) == pytest.approx(eta, abs=1e-15)
    assert cosine_scale(2 * T + 2, T, eta, periodic=True) == pytest.approx(1.0, abs=1e-15)
    assert cosine_scale(2 * T + 2, T, eta, periodic=False) == pytest.approx(eta, abs=1e-15)
    assert cosine_scale(5, None, eta, periodic=True) == 1.0


@per_impl_native
def test_official_scale_decays_beta1_in_the_update():
    """With total_T the update uses b1' = b1 scale: the first step's m/bc1 is g either way; the second step is
    checked against a hand computation with the step-2 scale."""
    T, lr = 10, 1e-3
    g = [torch.tensor([1.0], dtype=torch.float64), torch.tensor([-2.0], dtype=torch.float64)]
    traj, _ = _run(lambda ps: StableSPAM(ps, lr=lr, eps=TINY, adaclip=False, adagn=False, update_proj_gap=None,
                                         total_T=T), g, torch.zeros(1, dtype=torch.float64))
    s1, s2 = cosine_scale(1, T, 0.5, periodic=True), cosine_scale(2, T, 0.5, periodic=True)
    b1, b2 = B1 * s1, B1 * s2
    m = (1 - b1) * 1.0
    m = b2 * m + (1 - b2) * -2.0
    v = B2 * (1 - B2) * 1.0 + (1 - B2) * 4.0
    expected = -lr * 1.0 - lr / (1 - b2**2) * m / (math.sqrt(v) / math.sqrt(1 - B2**2))
    assert traj[1].item() == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- SPAM


@per_impl
def test_spam_clips_a_planted_spike_to_sign_times_sqrt_threshold_v():
    theta = 5.0
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = SPAM([p], threshold=theta, DeltaT=None, grad_accu_steps=1, mutate_grad=True)
    p.grad = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    opt.step()  # total_step + 1 = 1 >= 1: clipping is on, but v = 0 makes every non-zero entry a spike
    v = (1 - B2) * torch.tensor([1.0, 1.0, 0.25], dtype=torch.float64)
    torch.testing.assert_close(p.grad, torch.zeros(3, dtype=torch.float64))
    opt2 = SPAM([p2 := torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))], threshold=theta, DeltaT=None,
                grad_accu_steps=2, mutate_grad=True)
    p2.grad = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    opt2.step()  # step 1 < grad_accu_steps: no clipping
    assert p2.grad.tolist() == [1.0, -1.0, 0.5]
    spike = torch.tensor([0.05, -30.0, 0.02], dtype=torch.float64)
    p2.grad = spike.clone()
    opt2.step()
    bound = torch.sqrt(theta * v)
    mask = spike**2 > theta * v
    assert mask.tolist() == [False, True, False]
    torch.testing.assert_close(p2.grad, torch.where(mask, spike.sign() * bound, spike), rtol=1e-14, atol=0)


@per_impl
def test_spam_does_not_clip_in_the_first_grad_accu_steps_of_a_cycle():
    dT, accu = 6, 3
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = SPAM([p], threshold=1.0, DeltaT=dT, grad_accu_steps=accu, warmup_steps=2, mutate_grad=True,
               track_stats=True)
    clipped = []
    for _ in range(14):
        p.grad = torch.tensor([1.0, -1.0], dtype=torch.float64) * (1 + len(clipped))  # growing: spikes vs v
        opt.step()
        clipped.append(float(opt.stats["clip_fraction"]) > 0)
    for step, c in enumerate(clipped):  # total_step + 1 = step + 1
        n = step + 1
        if n < accu or n % dT < accu:
            assert not c, step


@per_impl
def test_spam_reset_step_runs_at_warmup_001():
    dT, lr = 10, 1e-3
    g = torch.full((2,), 0.5, dtype=torch.float64)
    p0 = torch.zeros_like(g)
    traj, _ = _run(lambda ps: SPAM(ps, lr=lr, eps=TINY, threshold=0, DeltaT=dT, warmup_steps=3), [g] * 14, p0)
    steps = [(-d / lr) for d in _steps(traj, p0)]
    t = dT  # the reset happens on the step with total_step + 1 = DeltaT, whose step count t = DeltaT
    expected = 0.01 * math.sqrt(1 - B2**t) / (1 - B1**t) * (1 - B1) / math.sqrt(1 - B2)
    torch.testing.assert_close(steps[dT - 1], torch.full_like(g, expected), rtol=1e-10, atol=0)
    assert all(torch.all(s > 0.999 * math.sqrt(1 - B2**i) / (1 - B1**i) * (1 - B1**i) / math.sqrt(1 - B2**i))
               for i, s in enumerate(steps[: dT - 1], 1))  # no warmup at the start of training


def test_spam_launcher_bug_flag_takes_the_lr_warmup_as_n():
    p = torch.nn.Parameter(torch.zeros(1))
    assert SPAM([p], warmup_steps=150).warmup_steps == 150
    assert SPAM([p], warmup_steps=150, warmup_from_lr_schedule=True, lr_warmup_steps=1000).warmup_steps == 1000
    with pytest.raises(ValueError, match="lr_warmup_steps"):
        SPAM([p], warmup_from_lr_schedule=True)


# ---------------------------------------------------------------- state


def _resume(make, grads, split):
    straight, opt = _run(make, grads)
    p = torch.nn.Parameter(torch.linspace(-1, 1, grads[0].numel(), dtype=torch.float64).view_as(grads[0]))
    first = make([p])
    for g in grads[:split]:
        p.grad = g.clone()
        first.step()
    buf = io.BytesIO()
    torch.save({"p": p.detach().clone(), "opt": first.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    q = torch.nn.Parameter(saved["p"])
    second = make([q])
    second.load_state_dict(saved["opt"])
    for g in grads[split:]:
        q.grad = g.clone()
        second.step()
    return straight[-1], q.detach(), opt, second


MAKERS = {
    "official": lambda ps: StableSPAM(ps, update_proj_gap=4, total_T=9),
    "fixed": lambda ps: StableSPAM(ps, update_proj_gap=4, total_T=9, semantics="fixed", reset_warmup_steps=2),
    "spam": lambda ps: SPAM(ps, DeltaT=4, grad_accu_steps=1, warmup_steps=2, threshold=5.0),
}


# split at step 2 (mid-cycle), 4 (the reset step), 5 (right after it); the slow implementations split on the reset
RESUME_SPLITS = {f"{name}-{split}": (name, split) for name in MAKERS for split in (2, 4, 5)}


@pytest.mark.parametrize("impl,case", impl_cross(RESUME_SPLITS, [f"{name}-4" for name in MAKERS]))
def test_resume_across_a_reset_is_bit_identical(impl, case):
    name, split = case
    with using(impl):
        a, b, opt, second = _resume(MAKERS[name], _grads(12), split)
    assert torch.equal(a, b)
    key = "total_step" if name == "spam" else "total_steps"
    assert second.state[key] == opt.state[key]


@pytest.mark.parametrize("name", ["official", "fixed"])
def test_resume_across_a_reset_is_bit_identical_in_the_c_kernel(name):
    """impl="native" across the resets (the official semantics' fresh zeros are new tensors: new addresses)."""
    with using(NATIVE):
        for split in (2, 4, 5):
            a, b, _, _ = _resume(MAKERS[name], _grads(12), split)
            assert torch.equal(a, b)


@per_impl_native
def test_state_dict_carries_the_counters_and_scalar_emas_as_0d_tensors():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = StableSPAM([p], semantics="fixed", update_proj_gap=2)
    for _ in range(3):
        p.grad = torch.ones(3)
        opt.step()
    sd = opt.state_dict()
    assert sd["state"]["total_steps"] == 3
    st = sd["state"][0]
    assert st["step"] == 2 and st["norm_step"] == 3  # Adam's counter restarted at the reset on step 2
    for key in ("m_max_t", "m_norm_t", "v_norm_t"):
        assert isinstance(st[key], torch.Tensor) and st[key].dim() == 0


@per_impl
@pytest.mark.parametrize("make", [lambda ps: StableSPAM(ps), lambda ps: SPAM(ps)])
def test_bf16_params_keep_fp32_state_through_load(make):
    p = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    opt = make([p])
    p.grad = torch.ones(4, dtype=torch.bfloat16)
    opt.step()
    other = make([p])
    other.load_state_dict(opt.state_dict())
    assert all(v.dtype == torch.float32 for v in other.state[p].values() if isinstance(v, torch.Tensor))


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("kw,name", [
    (dict(lr=-1.0), "lr"), (dict(gamma1=1.5), "gamma1"), (dict(gamma2=1.0), "gamma2"), (dict(gamma3=-0.1), "gamma3"),
    (dict(total_T=0), "total_T"), (dict(eta_min=2.0), "eta_min"), (dict(update_proj_gap=-3), "update_proj_gap"),
    (dict(semantics="paper"), "semantics"), (dict(reset_warmup_steps=-1), "reset_warmup_steps"),
    (dict(adaclip=1), "adaclip"), (dict(impl="fused"), "impl"), (dict(eps=0.0), "eps"),
])
def test_stablespam_bad_hyperparameters_name_the_argument(kw, name):
    with pytest.raises(ValueError, match=name):
        StableSPAM([torch.nn.Parameter(torch.zeros(1))], **kw)


@pytest.mark.parametrize("kw,name", [
    (dict(threshold=-1.0), "threshold"), (dict(DeltaT=-1), "DeltaT"), (dict(grad_accu_steps=-2), "grad_accu_steps"),
    (dict(warmup_steps=-1), "warmup_steps"), (dict(betas=(0.9, 1.0)), "betas"),
])
def test_spam_bad_hyperparameters_name_the_argument(kw, name):
    with pytest.raises(ValueError, match=name):
        SPAM([torch.nn.Parameter(torch.zeros(1))], **kw)


def test_spam_rejects_sparse_density_masks_clearly():
    with pytest.raises(ValueError, match="density"):
        SPAM([{"params": [torch.nn.Parameter(torch.zeros(1))], "density": 0.5}])


@per_impl_native
def test_gamma1_minus_one_means_beta1():
    grads = _grads(5)
    a, _ = _run(lambda ps: StableSPAM(ps, gamma1=-1, betas=(0.8, 0.99), update_proj_gap=None), grads)
    b, _ = _run(lambda ps: StableSPAM(ps, gamma1=0.8, betas=(0.8, 0.99), update_proj_gap=None), grads)
    assert torch.equal(a[-1], b[-1])
