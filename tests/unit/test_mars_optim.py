"""MARS (papers/mars/optim.py) against torch AdamW, a Lion reference, hand derivations and MARS's
invariants. Float64 unless a test is about precision."""

from __future__ import annotations

import io
import re

import pytest
import torch

from common.kernels import default_impl, using
from common.optim.newton_schulz import NS5_COEFFICIENTS, newton_schulz5
from papers.mars.optim import MARS
from tests.impl_cases import STATE_DTYPE_CASES, impl_cross

# Every test that steps an optimizer runs once per kernel implementation (tests/conftest.py::every_impl);
# validators, defaults and scalar schedules involve no implementation and run once.
per_impl = pytest.mark.usefixtures("every_impl")

SHAPES_2D = [(4, 3), (3, 5)]
SHAPES_OTHER = [(5,), (2, 3, 2, 2)]  # a bias and a 4-D conv kernel: both take the AdamW branch
SHAPES = SHAPES_2D + SHAPES_OTHER
HYPERPARAMETER_KEYS = {
    "params", "lr", "betas", "eps", "weight_decay", "amsgrad", "gamma", "is_approx", "mars_type", "optimize_1d",
    "lr_1d_factor", "betas_1d", "weight_decay_1d", "clip_c",
}


def make_params(shapes=SHAPES, dtype: torch.dtype = torch.float64, seed: int = 0) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)) for s in shapes]


def clone_params(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def make_grads(steps: int, shapes=SHAPES, dtype: torch.dtype = torch.float64, seed: int = 1,
               scale: float = 1.0) -> list[list[torch.Tensor]]:
    """Gradients whose scale alternates (x0.05 / x3), so a per-tensor clip at norm 1 is hit on some steps only."""
    gen = torch.Generator().manual_seed(seed)
    return [
        [(torch.randn(s, generator=gen, dtype=torch.float64) * scale * (0.05 if t % 2 else 3.0)).to(dtype)
         for s in shapes]
        for t in range(steps)
    ]


def apply(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], grads: list[torch.Tensor]) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    opt.step()


def per_tensor_clip(g: torch.Tensor) -> torch.Tensor:
    return g / max(1.0, torch.linalg.vector_norm(g).item())


def lion_reference(theta: torch.Tensor, m: torch.Tensor, g: torch.Tensor, *, lr: float, beta1: float, beta2: float,
                   wd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Lion, Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms" (arXiv:2302.06675), Algorithm 2:
    interpolate, take the sign, decoupled decay on the pre-update theta, then the momentum EMA with beta2."""
    update = (beta1 * m + (1 - beta1) * g).sign()
    theta = theta - lr * (update + wd * theta)
    m = beta2 * m + (1 - beta2) * g
    return theta, m


def ns5_reference(m: torch.Tensor, eps: float) -> torch.Tensor:
    """NS5 in float64 written from the polynomial, X <- X (a I + b X^T X + c (X^T X)^2), with no transpose trick:
    (X X^T) X = X (X^T X), so it equals the official left-multiplied, transposed form in exact arithmetic."""
    a, b, c = NS5_COEFFICIENTS
    x = m.double() / (torch.linalg.matrix_norm(m.double()) + eps)
    eye = torch.eye(x.shape[1], dtype=torch.float64)
    for _ in range(5):
        gram = x.T @ x
        x = x @ (a * eye + b * gram + c * gram @ gram)
    return x


def quad_loss(x: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    a, b = batch
    return 0.5 * ((a @ x - b) ** 2).sum()


def quad_grad(x: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    a, b = batch
    return a.T @ (a @ x - b)


def quad_batches(n: int, seed: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(0.3 * torch.randn(6, 4, generator=gen, dtype=torch.float64),
             torch.randn(6, 2, generator=gen, dtype=torch.float64)) for _ in range(n)]


# --- gamma = 0 reductions ---------------------------------------------------------------------------


# the slow implementations run with amsgrad (the rule's every state operand); tests/unit/test_kernels.py holds both
@pytest.mark.parametrize("impl,amsgrad", impl_cross({"plain": False, "amsgrad": True}, ["amsgrad"]))
def test_gamma0_without_clip_is_torch_adamw_on_2d_and_adamw_with_1d_settings_elsewhere(impl: str,
                                                                                      amsgrad: bool) -> None:
    """100 random steps, rtol 1e-12. A "no decay" group (wd 0) still decays 1-D/4-D tensors by wd_1d."""
    with using(impl):
        _gamma0_is_adamw(amsgrad)


def _gamma0_is_adamw(amsgrad: bool) -> None:
    lr, betas, eps, wd, lr_1d, betas_1d, wd_1d = 1e-2, (0.95, 0.99), 1e-8, 0.1, 4e-3, (0.9, 0.95), 0.2
    ours_p = make_params()
    ref_2d, ref_other = clone_params(ours_p[:2]), clone_params(ours_p[2:])
    ours = MARS(ours_p, lr=lr, betas=betas, eps=eps, weight_decay=wd, amsgrad=amsgrad, gamma=0.0, clip_c=False,
                lr_1d=lr_1d, betas_1d=betas_1d, weight_decay_1d=wd_1d)
    adamw_2d = torch.optim.AdamW(ref_2d, lr=lr, betas=betas, eps=eps, weight_decay=wd, amsgrad=amsgrad, foreach=False)
    adamw_other = torch.optim.AdamW(ref_other, lr=lr_1d, betas=betas_1d, eps=eps, weight_decay=wd_1d,
                                    amsgrad=amsgrad, foreach=False)
    for g in make_grads(100):
        apply(ours, ours_p, g)
        apply(adamw_2d, ref_2d, g[:2])
        apply(adamw_other, ref_other, g[2:])
        for p, q in zip(ours_p, ref_2d + ref_other, strict=True):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-15)
    for p, q in zip(ours_p, ref_2d + ref_other, strict=True):
        ref_state = (adamw_2d.state | adamw_other.state)[q]
        torch.testing.assert_close(ours.state[p]["exp_avg"], ref_state["exp_avg"], rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(ours.state[p]["exp_avg_sq"], ref_state["exp_avg_sq"], rtol=1e-12, atol=0)


@per_impl
def test_gamma0_with_clip_is_adamw_fed_per_tensor_clipped_grads_and_1d_is_never_clipped() -> None:
    lr, betas, wd = 1e-2, (0.95, 0.99), 0.05
    ours_p = make_params()
    ref_2d, ref_other = clone_params(ours_p[:2]), clone_params(ours_p[2:])
    ours = MARS(ours_p, lr=lr, betas=betas, weight_decay=wd, gamma=0.0)
    adamw_2d = torch.optim.AdamW(ref_2d, lr=lr, betas=betas, weight_decay=wd, foreach=False)
    adamw_other = torch.optim.AdamW(ref_other, lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1, foreach=False)
    grads = make_grads(40)
    norms = [torch.linalg.vector_norm(g[0]).item() for g in grads]
    assert max(norms) > 1 > min(norms)  # the clip is hit on some steps only
    for g in grads:
        apply(ours, ours_p, g)
        apply(adamw_2d, ref_2d, [per_tensor_clip(x) for x in g[:2]])
        apply(adamw_other, ref_other, g[2:])  # raw: the AdamW branch has no clip
        for p, q in zip(ours_p, ref_2d + ref_other, strict=True):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-15)


@per_impl
def test_1d_branch_ignores_gamma_and_clip_and_uses_its_own_hyperparameters() -> None:
    """Only non-2-D tensors; gamma=0.5 and huge gradients would change any MARS-branch tensor."""
    ours_p = make_params(SHAPES_OTHER)
    ref_p = clone_params(ours_p)
    ours = MARS(ours_p, lr=2e-2, betas=(0.5, 0.6), weight_decay=0.0, gamma=0.5, lr_1d=5e-3, betas_1d=(0.8, 0.9),
                weight_decay_1d=0.3)
    assert ours.param_groups[0]["lr_1d_factor"] == 5e-3 / 2e-2
    ref = torch.optim.AdamW(ref_p, lr=5e-3, betas=(0.8, 0.9), weight_decay=0.3, foreach=False)
    for g in make_grads(30, SHAPES_OTHER, scale=10.0):
        apply(ours, ours_p, g)
        apply(ref, ref_p, g)
    for p, q in zip(ours_p, ref_p, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-15)


@per_impl
def test_optimize_1d_sends_a_vector_through_the_mars_branch() -> None:
    """With optimize_1d a (n,) tensor follows the 2-D rule: the same trajectory as a (1, n) tensor without it."""
    vec = make_params([(6,)])
    row = [torch.nn.Parameter(vec[0].detach().clone().reshape(1, 6))]
    kw = {"lr": 1e-2, "weight_decay": 0.1, "gamma": 0.3}
    opt_vec, opt_row = MARS(vec, optimize_1d=True, **kw), MARS(row, **kw)
    for g in make_grads(20, [(6,)]):
        apply(opt_vec, vec, g)
        apply(opt_row, row, [g[0].reshape(1, 6)])
    torch.testing.assert_close(vec[0], row[0].reshape(6), rtol=0, atol=0)
    # Without optimize_1d it is a different rule (AdamW branch), so the check above can fail.
    other = make_params([(6,)])
    opt_other = MARS(other, **kw)
    for g in make_grads(20, [(6,)]):
        apply(opt_other, other, g)
    assert not torch.allclose(other[0], vec[0])


# --- hand-derived steps -----------------------------------------------------------------------------


@per_impl
@pytest.mark.parametrize("grad_scale", [0.05, 3.0])  # c below and above the clip
def test_first_step_hand_derived(grad_scale: float) -> None:
    """c1 = g1 (1 + gamma b1/(1-b1)), clipped; m_hat = c1, sqrt(v_hat) = |c1|, so
    theta1 = theta0 - lr (wd theta0 + c1 / (|c1| + eps)). A large eps makes its placement visible."""
    lr, (b1, b2), eps, wd, gamma = 1e-2, (0.95, 0.99), 1e-2, 0.1, 0.025
    params = make_params(SHAPES_2D)
    theta0 = [p.detach().clone() for p in params]
    opt = MARS(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, gamma=gamma)
    g1 = [torch.randn(s, generator=torch.Generator().manual_seed(9), dtype=torch.float64) * grad_scale
          for s in SHAPES_2D]
    apply(opt, params, g1)
    for p, p0, g in zip(params, theta0, g1, strict=True):
        c1_raw = g * (1 + gamma * b1 / (1 - b1))
        assert (torch.linalg.vector_norm(c1_raw) > 1) == (grad_scale > 1)  # both sides of the clip are exercised
        c1 = per_tensor_clip(c1_raw)
        expected = p0 - lr * (wd * p0 + c1 / (c1.abs() + eps))
        torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-15)


@per_impl
@pytest.mark.parametrize("clip_c", [True, False])
def test_second_step_correction_elementwise_and_update(clip_c: bool) -> None:
    """c2 = g2 + gamma b1/(1-b1) (g2 - g1) before the clip. c2 is recovered from m: (m2 - b1 m1)/(1-b1)."""
    lr, (b1, b2), eps, wd, gamma = 1e-2, (0.9, 0.99), 1e-8, 0.1, 0.5
    params = make_params(SHAPES_2D)
    opt = MARS(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, gamma=gamma, clip_c=clip_c)
    g1, g2 = make_grads(2, SHAPES_2D)[::-1]  # g1 small, g2 large: the clip is hit at step 2 only
    apply(opt, params, g1)
    m1 = [opt.state[p]["exp_avg"].clone() for p in params]
    theta1 = [p.detach().clone() for p in params]
    apply(opt, params, g2)
    k = gamma * b1 / (1 - b1)
    for p, m, th, a, b in zip(params, m1, theta1, g1, g2, strict=True):
        c1 = per_tensor_clip(a * (1 + k)) if clip_c else a * (1 + k)
        c2_raw = b + k * (b - a)
        c2 = per_tensor_clip(c2_raw) if clip_c else c2_raw
        assert torch.linalg.vector_norm(c2_raw) > 1  # the clip matters here
        recovered = (opt.state[p]["exp_avg"] - b1 * m) / (1 - b1)
        torch.testing.assert_close(recovered, c2, rtol=1e-10, atol=1e-13)
        m2 = b1 * (1 - b1) * c1 + (1 - b1) * c2
        v2 = b2 * (1 - b2) * c1**2 + (1 - b2) * c2**2
        expected = th - lr * (wd * th + (m2 / (1 - b1**2)) / ((v2 / (1 - b2**2)).sqrt() + eps))
        torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-15)


@per_impl
def test_mars_m_efficient_invariant() -> None:
    """MARS-M (mars_m_efficient.py): unclipped approx momentum m_t = gamma g_t + b1 b_t with
    b_t = b1 b_{t-1} + (1-gamma)(1-b1)/b1 g_t, b_0 = 0: MARS-approx is a Nesterov-style momentum.
    Fused kernels (compiled, triton) round each expression once: near-cancelling entries drift ~1e-15 in 60 steps."""
    atol = 1e-14 if default_impl() in ("compiled", "triton") else 1e-15
    for gamma, b1 in [(0.025, 0.95), (0.6, 0.9)]:
        params = make_params(SHAPES_2D)
        opt = MARS(params, betas=(b1, 0.99), gamma=gamma, clip_c=False)
        buf = [torch.zeros_like(p) for p in params]
        for g in make_grads(60, SHAPES_2D):
            apply(opt, params, g)
            for i, p in enumerate(params):
                buf[i] = b1 * buf[i] + (1 - gamma) * (1 - b1) / b1 * g[i]
                torch.testing.assert_close(opt.state[p]["exp_avg"], gamma * g[i] + b1 * buf[i], rtol=1e-12, atol=atol)


# --- MARS-Lion --------------------------------------------------------------------------------------


def _run_lion_pair(gamma: float, mars_betas: tuple[float, float], lion_betas: tuple[float, float]) -> None:
    lr, wd = 1e-2, 0.1
    params = make_params(SHAPES_2D)
    ref = [p.detach().clone() for p in params]
    ref_m = [torch.zeros_like(p) for p in params]
    opt = MARS(params, lr=lr, betas=mars_betas, weight_decay=wd, gamma=gamma, mars_type="lion", clip_c=False)
    for g in make_grads(100, SHAPES_2D):
        apply(opt, params, g)
        for i, p in enumerate(params):
            ref[i], ref_m[i] = lion_reference(ref[i], ref_m[i], g[i], lr=lr, beta1=lion_betas[0],
                                              beta2=lion_betas[1], wd=wd)
            torch.testing.assert_close(p.detach(), ref[i], rtol=1e-12, atol=1e-15)
    assert not torch.allclose(params[0], make_params(SHAPES_2D)[0])


@per_impl
def test_lion_gamma0_is_signum_that_is_lion_with_equal_betas() -> None:
    """With gamma=0 and no clip MARS-Lion is Signum, theta <- theta - lr (wd theta + sign(EMA_b1(g)));
    Lion with beta1 = beta2 = b is exactly that (its interpolation equals its new momentum)."""
    _run_lion_pair(0.0, (0.9, 0.99), (0.9, 0.9))


@per_impl
def test_lion_is_mars_lion_at_the_papers_gamma() -> None:
    """Paper Lemma 3.4 (approximate mode): MARS-Lion with beta = Lion's beta2 and gamma = (beta2 - beta1)/beta2
    is Lion(beta1, beta2), exactly, from step 1 (last_grad = 0 matches Lion's zero momentum)."""
    lion_b1, lion_b2 = 0.9, 0.99
    _run_lion_pair((lion_b2 - lion_b1) / lion_b2, (lion_b2, 0.5), (lion_b1, lion_b2))


# --- MARS-Shampoo -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 3), (3, 6), (4, 4), (1, 5)])
def test_newton_schulz5_bf16_matches_float64_reference_to_bf16_tolerance(shape: tuple[int, int]) -> None:
    m = torch.randn(shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ref = ns5_reference(m, eps=1e-8)
    torch.testing.assert_close(newton_schulz5(m, eps=1e-8, dtype=torch.float64), ref, rtol=1e-12, atol=1e-14)
    out = newton_schulz5(m.float(), eps=1e-8)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=0.05)  # bf16: 8 mantissa bits, 5 iterations
    assert (out.double() - ref).abs().max() > 1e-4  # and it does run in bf16


def test_newton_schulz5_rejects_non_matrices() -> None:
    with pytest.raises(ValueError, match="2-D"):
        newton_schulz5(torch.ones(3))


@pytest.mark.parametrize("shape", [(6, 3), (3, 6), (4, 4)])
def test_shampoo_gamma0_is_the_hand_derived_update_step_by_step(shape: tuple[int, int]) -> None:
    """theta <- theta - lr (NS5(m/(1-b1)) max(1, rows/cols)^0.5 + wd theta), m = EMA_b1(g), float64 NS5 (test hook)."""
    lr, (b1, b2), wd, eps = 1e-2, (0.9, 0.99), 0.1, 1e-8
    params = make_params([shape])
    ref, ref_m = params[0].detach().clone(), torch.zeros(shape, dtype=torch.float64)
    opt = MARS(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, gamma=0.0, mars_type="shampoo", clip_c=False)
    opt._newton_schulz_dtype = torch.float64
    scale = max(1.0, shape[0] / shape[1]) ** 0.5
    for g in make_grads(25, [shape]):
        apply(opt, params, g)
        ref_m = b1 * ref_m + (1 - b1) * g[0]
        ref = ref - lr * (ns5_reference(ref_m / (1 - b1), eps) * scale + wd * ref)
        torch.testing.assert_close(params[0].detach(), ref, rtol=1e-12, atol=1e-14)
    assert not opt.state[params[0]]["exp_avg_sq"].any()  # v is allocated but never touched on 2-D tensors


def test_shampoo_default_uses_bf16_newton_schulz_and_muons_scale() -> None:
    """One step on a tall matrix: the update is sqrt(rows/cols) NS5(.) to bf16 tolerance, and differs from the float64
    one at the bf16 rounding level."""
    lr = 1.0
    params = make_params([(8, 2)])
    theta0 = params[0].detach().clone()
    opt = MARS(params, lr=lr, gamma=0.0, mars_type="shampoo")
    g = make_grads(1, [(8, 2)])[0]
    apply(opt, params, g)
    c = per_tensor_clip(g[0])
    expected = ns5_reference(c, 1e-8) * 2.0  # m/(1-b1) = c at t=1; max(1, 8/2)^0.5 = 2
    delta = theta0 - params[0].detach()
    torch.testing.assert_close(delta, expected, rtol=0, atol=0.1)
    assert (delta - expected).abs().max() > 1e-6


@per_impl
def test_shampoo_on_non_2d_tensors_with_optimize_1d_uses_the_adamw_rule_on_c() -> None:
    vec = make_params([(6,)])
    row = [torch.nn.Parameter(vec[0].detach().clone().reshape(1, 6))]
    kw = {"lr": 1e-2, "weight_decay": 0.1, "gamma": 0.3, "optimize_1d": True}
    opt_vec, opt_row = MARS(vec, mars_type="shampoo", **kw), MARS(row, mars_type="adamw", **kw)
    for g in make_grads(10, [(6,)]):
        apply(opt_vec, vec, g)
        apply(opt_row, row, [g[0].reshape(1, 6)])
    torch.testing.assert_close(vec[0], row[0].reshape(6), rtol=0, atol=0)


@per_impl
def test_sgd_type_is_storm_like_momentum_without_preconditioner() -> None:
    """mars_type "sgd": theta <- theta - lr (wd theta + m). With gamma=1, exact mode and no clip, m is STORM's d_t =
    g_t + b1 (d_{t-1} - grad f(x_{t-1}, xi_t)); here in approximate mode it is d_t = g_t + b1 (d_{t-1} - g_{t-1})."""
    lr, b1, wd = 1e-2, 0.9, 0.1
    params = make_params(SHAPES_2D)
    ref = [p.detach().clone() for p in params]
    d = [torch.zeros_like(p) for p in params]
    prev = [torch.zeros_like(p) for p in params]
    opt = MARS(params, lr=lr, betas=(b1, 0.99), weight_decay=wd, gamma=1.0, mars_type="sgd", clip_c=False)
    for g in make_grads(30, SHAPES_2D):
        apply(opt, params, g)
        for i, p in enumerate(params):
            d[i] = g[i] + b1 * (d[i] - prev[i])
            prev[i] = g[i]
            ref[i] = ref[i] - lr * (wd * ref[i] + d[i])
            torch.testing.assert_close(p.detach(), ref[i], rtol=1e-12, atol=1e-14)


# --- last_grad: a copy, never an alias --------------------------------------------------------------


def _train_linear(set_to_none: bool, steps: int = 12) -> tuple[list[torch.Tensor], list[float]]:
    gen = torch.Generator().manual_seed(5)
    model = torch.nn.Linear(4, 3, dtype=torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    opt = MARS(model.parameters(), lr=1e-2, gamma=0.5)
    gaps = []
    for _ in range(steps):
        x = torch.randn(8, 4, generator=gen, dtype=torch.float64)
        opt.zero_grad(set_to_none=set_to_none)
        model(x).pow(2).mean().backward()
        state = opt.state.get(model.weight)
        if state:
            assert state["last_grad"].data_ptr() != model.weight.grad.data_ptr()
            gaps.append(torch.linalg.vector_norm(model.weight.grad - state["last_grad"]).item())
        opt.step()
    return [p.detach().clone() for p in model.parameters()], gaps


@per_impl
def test_zero_grad_set_to_none_false_does_not_switch_the_correction_off() -> None:
    """Aliasing: with the official alias, set_to_none=False makes last_grad == g at every step."""
    params_none, gaps_none = _train_linear(set_to_none=True)
    params_zero, gaps_zero = _train_linear(set_to_none=False)
    for p, q in zip(params_none, params_zero, strict=True):
        assert torch.equal(p, q)
    assert gaps_none == gaps_zero and len(gaps_zero) == 11 and min(gaps_zero) > 1e-3


# --- exact mode -------------------------------------------------------------------------------------


def _run_exact_lookahead(batches, gamma: float = 0.5, record: list | None = None) -> torch.Tensor:
    """The official loop: a backward on the next batch at x_t, update_previous_grad, the real step, update_last_grad."""
    x = torch.nn.Parameter(torch.ones(4, 2, dtype=torch.float64))
    opt = MARS([x], lr=5e-2, gamma=gamma, is_approx=False)
    before_prev_step = None
    for t in range(len(batches) - 1):
        opt.zero_grad()
        quad_loss(x, batches[t + 1]).backward()
        opt.update_previous_grad()
        opt.zero_grad()
        quad_loss(x, batches[t]).backward()
        if record is not None and t >= 1:
            record.append((opt.state[x]["last_grad"].clone(), quad_grad(before_prev_step, batches[t])))
        before_prev_step = x.detach().clone()
        opt.step()
        opt.update_last_grad()
    return x.detach()


def _run_exact_lookback(batches, gamma: float = 0.5) -> torch.Tensor:
    """Two gradients on the same batch: swap x_{t-1} in, record and promote, swap x_t back, the real step."""
    x = torch.nn.Parameter(torch.ones(4, 2, dtype=torch.float64))
    opt = MARS([x], lr=5e-2, gamma=gamma, is_approx=False)
    prev = None
    for t in range(len(batches) - 1):
        if prev is not None:
            current = x.detach().clone()
            with torch.no_grad():
                x.copy_(prev)
            opt.zero_grad()
            quad_loss(x, batches[t]).backward()
            opt.update_previous_grad()
            opt.update_last_grad()
            with torch.no_grad():
                x.copy_(current)
        prev = x.detach().clone()
        opt.zero_grad()
        quad_loss(x, batches[t]).backward()
        opt.step()
    return x.detach()


def _run_approx(batches, gamma: float = 0.5) -> torch.Tensor:
    x = torch.nn.Parameter(torch.ones(4, 2, dtype=torch.float64))
    opt = MARS([x], lr=5e-2, gamma=gamma)
    for t in range(len(batches) - 1):
        opt.zero_grad()
        quad_loss(x, batches[t]).backward()
        opt.step()
    return x.detach()


@per_impl
def test_exact_mode_last_grad_is_the_gradient_of_the_current_batch_at_the_previous_parameters() -> None:
    """On f(x, xi) = 1/2 ||A_xi x - b_xi||^2, last_grad at step t equals grad f(x_{t-1}, xi_t) analytically."""
    record: list = []
    _run_exact_lookahead(quad_batches(12), record=record)
    assert len(record) == 10
    for stored, analytic in record:
        torch.testing.assert_close(stored, analytic, rtol=1e-12, atol=1e-14)


@per_impl
def test_exact_mode_both_call_orders_give_the_same_trajectory_and_differ_from_approx() -> None:
    batches = quad_batches(12)
    exact = _run_exact_lookahead(batches)
    assert torch.equal(exact, _run_exact_lookback(batches))
    assert not torch.allclose(exact, _run_approx(batches))
    # gamma = 0 switches the correction off, so the modes agree.
    assert torch.equal(_run_exact_lookahead(batches, gamma=0.0), _run_approx(batches, gamma=0.0))


@per_impl
def test_exact_sgd_type_with_gamma_1_is_storm() -> None:
    """The vr_methods parity, here on analytic gradients: MARS-sgd, gamma=1, exact, no clip, wd=0 is STORM
    (Cutkosky & Orabona 2019) with a = 1 - b1: d_t = g(x_t, xi_t) + (1-a)(d_{t-1} - g(x_{t-1}, xi_t)), d_1 = g_1,
    x_{t+1} = x_t - lr d_t."""
    lr, b1 = 5e-2, 0.9
    data = quad_batches(12)
    x = torch.nn.Parameter(torch.ones(4, 2, dtype=torch.float64))
    opt = MARS([x], lr=lr, betas=(b1, 0.99), gamma=1.0, is_approx=False, mars_type="sgd", clip_c=False)
    ref, ref_prev, d = x.detach().clone(), None, None
    for t in range(len(data) - 1):
        opt.zero_grad()
        quad_loss(x, data[t + 1]).backward()
        opt.update_previous_grad()
        opt.zero_grad()
        quad_loss(x, data[t]).backward()
        opt.step()
        opt.update_last_grad()
        g = quad_grad(ref, data[t])
        d = g if d is None else g + b1 * (d - quad_grad(ref_prev, data[t]))
        ref_prev, ref = ref, ref - lr * d
        torch.testing.assert_close(x.detach(), ref, rtol=1e-12, atol=1e-14)


@per_impl
def test_exact_mode_raises_when_the_loop_forgets_a_call() -> None:
    batches = quad_batches(5)
    x = torch.nn.Parameter(torch.ones(4, 2, dtype=torch.float64))
    bias = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))  # AdamW branch: never needs last_grad
    opt = MARS([x, bias], is_approx=False)

    def backward(batch) -> None:
        opt.zero_grad()
        (quad_loss(x, batch) + bias.sum()).backward()

    backward(batches[1])
    opt.update_previous_grad()
    backward(batches[0])
    opt.step()  # step 1 needs no last_grad
    # update_last_grad() forgotten:
    backward(batches[1])
    with pytest.raises(RuntimeError, match="update_previous_grad"):
        opt.step()

    opt = MARS([x], is_approx=False)
    for t in range(3):  # update_previous_grad() forgotten from t=1 on: caught when the stale value would be used
        if t == 0:
            backward(batches[t + 1])
            opt.update_previous_grad()
        backward(batches[t])
        if t < 2:
            opt.step()
            opt.update_last_grad()
        else:
            with pytest.raises(RuntimeError, match="last_grad was not recorded"):
                opt.step()


@per_impl
def test_exact_mode_methods_are_no_ops_in_approximate_mode() -> None:
    params = make_params(SHAPES_2D)
    opt = MARS(params)
    apply(opt, params, make_grads(1, SHAPES_2D)[0])
    before = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in opt.state[params[0]].items()}
    opt.update_previous_grad()
    opt.update_last_grad()
    after = opt.state[params[0]]
    assert set(after) == set(before) == {"step", "exp_avg", "exp_avg_sq", "last_grad"}
    assert all(torch.equal(after[k], v) if isinstance(v, torch.Tensor) else after[k] == v for k, v in before.items())


# --- state_dict -------------------------------------------------------------------------------------


def _exact_iteration(opt: MARS, params, grads_next, grads_now) -> None:
    for p, g in zip(params, grads_next, strict=True):
        p.grad = g.clone()
    opt.update_previous_grad()
    apply(opt, params, grads_now)
    opt.update_last_grad()


@per_impl
@pytest.mark.parametrize("is_approx", [True, False])
def test_state_dict_round_trip_at_step_7_continues_bit_identically(is_approx: bool) -> None:
    kw = {"lr": 1e-2, "weight_decay": 0.1, "gamma": 0.2, "is_approx": is_approx, "amsgrad": True}
    grads = make_grads(16, dtype=torch.float32)

    def run(opt: MARS, params, ts) -> None:
        for t in ts:
            if is_approx:
                apply(opt, params, grads[t])
            else:
                _exact_iteration(opt, params, grads[t + 1], grads[t])

    straight = make_params(dtype=torch.float32)
    run(MARS(straight, **kw), straight, range(15))

    params = make_params(dtype=torch.float32)
    opt = MARS(params, **kw)
    run(opt, params, range(7))
    opt.param_groups[0]["gamma"] = 0.2  # a scheduled value travels in the group
    sd = opt.state_dict()
    buffers = ["last_grad"] + ([] if is_approx else ["previous_grad"])
    for i, p in enumerate(params):
        for key in buffers:
            assert sd["state"][i][key].data_ptr() != p.grad.data_ptr()  # own tensors, not p.grad
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    resumed = clone_params(params)
    opt2 = MARS(resumed, lr=0.5, gamma=0.9, lr_1d=0.1, is_approx=True)  # all overwritten by the load
    opt2.load_state_dict(torch.load(buf))
    group = opt2.param_groups[0]
    assert group["gamma"] == 0.2 and group["lr_1d_factor"] == 3e-3 / 1e-2 and group["is_approx"] is is_approx
    for p, q in zip(params, resumed, strict=True):
        assert opt2.state[q]["step"] == 7
        for key in buffers:
            assert torch.equal(opt2.state[q][key], opt.state[p][key])
    run(opt2, resumed, range(7, 15))
    for p, q in zip(straight, resumed, strict=True):
        assert torch.equal(p, q)


@per_impl
@pytest.mark.parametrize("is_approx", [True, False])
def test_state_holds_step_and_buffers_and_groups_only_hyperparameters(is_approx: bool) -> None:
    params = make_params()
    opt = MARS(params, is_approx=is_approx)
    grads = make_grads(4)
    for t in range(3):
        _exact_iteration(opt, params, grads[t + 1], grads[t])
    sd = opt.state_dict()
    extra = set() if is_approx else {"previous_grad", "previous_grad_step", "last_grad_step"}
    for s in sd["state"].values():
        assert set(s) == {"step", "exp_avg", "exp_avg_sq", "last_grad"} | extra
        assert type(s["step"]) is int and s["step"] == 3
    for group in sd["param_groups"]:
        assert set(group) == HYPERPARAMETER_KEYS


@per_impl
def test_loads_an_official_checkpoint_layout_into_independent_buffers() -> None:
    """The official groups lack lr_1d_factor, betas_1d, is_approx, clip_c and spell mars_type "mars-lion". The live
    state_dict is loaded in memory: the two optimizers must not share buffers (torch's own load would)."""
    params = make_params()
    opt = MARS(params, mars_type="lion", lr_1d=6e-3)
    grads = make_grads(10)
    for g in grads[:5]:
        apply(opt, params, g)
    sd = opt.state_dict()
    sd["param_groups"] = [
        {k: v for k, v in g.items() if k not in ("lr_1d_factor", "betas_1d", "is_approx", "clip_c")}
        | {"mars_type": "mars-lion"}
        for g in sd["param_groups"]
    ]
    resumed = clone_params(params)
    opt2 = MARS(resumed, mars_type="adamw", lr_1d=6e-3)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["mars_type"] == "lion" and set(opt2.param_groups[0]) == HYPERPARAMETER_KEYS
    for p, q in zip(params, resumed, strict=True):
        assert opt2.state[q]["exp_avg"].data_ptr() != opt.state[p]["exp_avg"].data_ptr()
    for g in grads[5:]:
        apply(opt, params, g)
        apply(opt2, resumed, g)
    for p, q in zip(params, resumed, strict=True):
        assert torch.equal(p, q)


# --- optimizer API ----------------------------------------------------------------------------------


def test_defaults_are_the_official_ones() -> None:
    opt = MARS(make_params())
    assert opt.defaults == {
        "lr": 3e-3, "betas": (0.95, 0.99), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False, "gamma": 0.025,
        "is_approx": True, "mars_type": "adamw", "optimize_1d": False, "lr_1d_factor": 1.0, "betas_1d": (0.9, 0.95),
        "weight_decay_1d": 0.1, "clip_c": True,
    }
    assert MARS(make_params(), mars_type="mars-shampoo").defaults["mars_type"] == "shampoo"


@per_impl
def test_param_groups_equal_separate_optimizers() -> None:
    """Every hyperparameter is read from its group, gamma and mars_type included."""
    cfg_a = {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1, "gamma": 0.5, "mars_type": "lion"}
    cfg_b = {"lr": 3e-3, "betas": (0.8, 0.95), "weight_decay": 0.0, "gamma": 0.0, "lr_1d_factor": 2.0,
             "betas_1d": (0.5, 0.9), "weight_decay_1d": 0.0}
    joint = make_params([(4, 3), (3, 5), (4, 2), (5,)])
    a, b = clone_params(joint[:2]), clone_params(joint[2:])
    opt = MARS([{"params": joint[:2], **cfg_a}, {"params": joint[2:], **cfg_b}])
    opt_a = MARS(a, **cfg_a)
    opt_b = MARS(b, **{k: v for k, v in cfg_b.items() if k != "lr_1d_factor"}, lr_1d=6e-3)
    for g in make_grads(20, [(4, 3), (3, 5), (4, 2), (5,)]):
        apply(opt, joint, g)
        apply(opt_a, a, g[:2])
        apply(opt_b, b, g[2:])
    for p, q in zip(joint, a + b, strict=True):
        assert torch.equal(p, q)


@per_impl
def test_params_without_grad_are_skipped() -> None:
    params = make_params()
    frozen = params[1]
    before = frozen.detach().clone()
    opt = MARS(params)
    for g in make_grads(5):
        for p, gi in zip(params, g, strict=True):
            p.grad = None if p is frozen else gi.clone()
        opt.step()
    assert torch.equal(frozen, before)
    assert frozen not in opt.state
    assert opt.state[params[0]]["step"] == 5


def test_step_takes_only_a_closure() -> None:
    """The README's ``optimizer.step(bs=bs)`` (copied from Sophia) is a TypeError, here as in the official code."""
    with pytest.raises(TypeError):
        MARS(make_params()).step(bs=480)  # type: ignore[call-arg]


def test_sparse_gradients_raise_a_clear_error() -> None:
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = MARS(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="MARS does not support sparse gradients"):
        opt.step()
    opt = MARS(emb.parameters(), is_approx=False)
    with pytest.raises(RuntimeError, match="MARS does not support sparse gradients"):
        opt.update_previous_grad()


def test_complex_params_raise() -> None:
    p = torch.nn.Parameter(torch.randn(3, 2, dtype=torch.complex64))
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="complex"):
        MARS([p]).step()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"betas": (1.0, 0.99)}, "betas[0]"),
        ({"betas": (0.9, -0.1)}, "betas[1]"),
        ({"betas": (0.9,)}, "betas"),
        ({"eps": 0.0}, "eps"),
        ({"eps": -1e-8}, "eps"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"amsgrad": 1}, "amsgrad"),
        ({"gamma": -0.1}, "gamma"),
        ({"gamma": float("inf")}, "gamma"),
        ({"gamma": "0.025"}, "gamma"),
        ({"is_approx": "False"}, "is_approx"),
        ({"mars_type": "muon"}, "mars_type"),
        ({"mars_type": "mars-sophia"}, "mars_type"),
        ({"optimize_1d": 0}, "optimize_1d"),
        ({"lr_1d": -3e-3}, "lr_1d"),
        ({"betas_1d": (0.9, 1.0)}, "betas_1d[1]"),
        ({"betas_1d": 0.9}, "betas_1d"),
        ({"weight_decay_1d": -0.1}, "weight_decay_1d"),
        ({"weight_decay_1d": float("nan")}, "weight_decay_1d"),
        ({"clip_c": None}, "clip_c"),
    ],
)
def test_invalid_hyperparameters_raise_value_error_naming_the_argument(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(name)):
        MARS(make_params(), **kwargs)
    with pytest.raises(ValueError, match=re.escape(name)):  # the same check for a per-group override
        MARS([{"params": make_params(), **kwargs}])


def test_group_only_keys_and_the_1d_learning_rate_are_checked() -> None:
    with pytest.raises(ValueError, match="lr_1d_factor"):
        MARS([{"params": make_params(), "lr_1d_factor": -1.0}])
    with pytest.raises(ValueError, match="lr_1d"):  # lr = 0 leaves lr_1d / lr undefined
        MARS(make_params(), lr=0.0, lr_1d=3e-3)
    assert MARS(make_params(), lr=0.0, lr_1d=0.0).defaults["lr_1d_factor"] == 1.0


@per_impl
def test_lr_scheduler_scales_both_branches() -> None:
    """With wd=0 the update is linear in lr, so LambdaLR's factor shows in every delta, 1-D tensors included
    (lr_1d is a factor on the group lr, as in the official code)."""

    def factor(epoch: int) -> float:
        return 1.0 + epoch % 3

    const_p, sched_p = make_params(), make_params()
    kw = {"lr": 1e-2, "weight_decay_1d": 0.0, "lr_1d": 5e-3}
    const, sched_opt = MARS(const_p, **kw), MARS(sched_p, **kw)
    sched = torch.optim.lr_scheduler.LambdaLR(sched_opt, factor)
    for t, g in enumerate(make_grads(9), start=1):
        before_c = [p.detach().clone() for p in const_p]
        before_s = [p.detach().clone() for p in sched_p]
        apply(const, const_p, g)
        apply(sched_opt, sched_p, g)
        sched.step()
        for c0, c, s0, s in zip(before_c, const_p, before_s, sched_p, strict=True):
            torch.testing.assert_close(s.detach() - s0, factor(t - 1) * (c.detach() - c0), rtol=1e-10, atol=0)


# --- dtypes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl,dtypes", STATE_DTYPE_CASES)
def test_state_dtype_policy(impl: str, dtypes: tuple[torch.dtype, torch.dtype]) -> None:
    param_dtype, state_dtype = dtypes
    with using(impl):
        params = make_params(dtype=param_dtype)
        opt = MARS(params, is_approx=False, amsgrad=True)
        grads = make_grads(2, dtype=param_dtype)
        _exact_iteration(opt, params, grads[1], grads[0])
        for p in params:
            assert p.dtype == param_dtype
            for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "last_grad", "previous_grad"):
                assert opt.state[p][key].dtype == state_dtype


@per_impl
@pytest.mark.parametrize("mars_type", ["adamw", "shampoo"])
def test_bf16_update_equals_fp32_reference_then_cast(mars_type: str) -> None:
    kw = {"lr": 0.05, "weight_decay": 0.1, "gamma": 0.3, "mars_type": mars_type}
    bf16 = make_params(dtype=torch.bfloat16)
    theta0 = [p.detach().clone() for p in bf16]
    ref = [torch.nn.Parameter(p.detach().float()) for p in bf16]
    opt, ref_opt = MARS(bf16, **kw), MARS(ref, **kw)
    for g in make_grads(10, dtype=torch.bfloat16):
        with torch.no_grad():
            for r, p in zip(ref, bf16, strict=True):
                r.copy_(p.float())  # the reference starts every step from the bf16 value
        apply(opt, bf16, g)
        apply(ref_opt, ref, [gi.float() for gi in g])
        for p, r in zip(bf16, ref, strict=True):
            assert torch.equal(p, r.detach().to(torch.bfloat16))
            for key in ("exp_avg", "exp_avg_sq", "last_grad"):
                assert torch.equal(opt.state[p][key], ref_opt.state[r][key])
    assert not any(torch.equal(p, p0) for p, p0 in zip(bf16, theta0, strict=True))


@per_impl
def test_bf16_state_stays_fp32_after_load_state_dict() -> None:
    grads = make_grads(10, dtype=torch.bfloat16)
    params = make_params(dtype=torch.bfloat16)
    opt = MARS(params, is_approx=False)
    for t in range(5):
        _exact_iteration(opt, params, grads[t + 1], grads[t])
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    resumed = clone_params(params)
    opt2 = MARS(resumed, is_approx=False)
    opt2.load_state_dict(torch.load(buf))
    for p, q in zip(params, resumed, strict=True):
        for key in ("exp_avg", "exp_avg_sq", "last_grad", "previous_grad"):
            assert opt2.state[q][key].dtype == torch.float32
            assert torch.equal(opt2.state[q][key], opt.state[p][key])
    for t in range(5, 9):
        _exact_iteration(opt, params, grads[t + 1], grads[t])
        _exact_iteration(opt2, resumed, grads[t + 1], grads[t])
    for p, q in zip(params, resumed, strict=True):
        assert torch.equal(p, q)

