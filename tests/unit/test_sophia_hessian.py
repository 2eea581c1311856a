"""Sophia's Hessian estimators (papers/sophia/hessian.py): GNB and Hutchinson against exact diagonals, the k-step
schedule and resume in a training loop.

Monte-Carlo checks use N = 20,000 independent draws in one vectorised call: the model's parameters are replicated N
times, so one backward gives N independent per-replica estimates. Each estimate is bounded or has all moments, so
the CLT holds well at this N; we require every coordinate to lie within 4 standard errors (estimated from the same
draws). Under the CLT a coordinate fails with probability 6.3e-5, so a family of <= 15 coordinates falses alarms
with probability < 1e-3 (Bonferroni); seeds are fixed, so the outcome never changes between runs. Each such test
also shows that the mistake it guards against would be many standard errors off.
"""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from papers.sophia.hessian import (
    gnb_hessian_step,
    hessian_update_due,
    hutchinson_hessian_step,
    sample_labels,
    sampled_label_loss,
)
from papers.sophia.optim import SophiaG, SophiaH

N_DRAWS = 20_000
Z_MAX = 4.0


def z_scores(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|mean - target| / standard error, per coordinate, for samples stacked along dim 0."""
    se = samples.std(dim=0) / math.sqrt(samples.shape[0])
    return (samples.mean(dim=0) - target).abs() / se


# --- schedule ----------------------------------------------------------------------------------------


def test_hessian_update_due_after_every_kth_step() -> None:
    """Official: after the step with 0-based iter_num % k == k - 1, i.e. after steps 10, 20, 30 for k = 10."""
    assert [s for s in range(0, 31) if hessian_update_due(s, 10)] == [10, 20, 30]
    assert [s for s in range(0, 4) if hessian_update_due(s, 1)] == [1, 2, 3]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k"):
            hessian_update_due(5, bad)  # type: ignore[arg-type]


# --- sampling ----------------------------------------------------------------------------------------


def test_sampled_labels_follow_the_models_softmax() -> None:
    """Per-cell frequencies of N draws against softmax(logits): binomial SE sqrt(p(1-p)/N), 12 cells, 4.5 SE
    (per-cell false alarm 7e-6)."""
    gen = torch.Generator().manual_seed(0)
    logits = 2 * torch.randn(3, 4, generator=gen, dtype=torch.float64)
    n = 40_000
    labels = sample_labels(logits.expand(n, 3, 4), generator=torch.Generator().manual_seed(1))
    assert labels.shape == (n, 3) and labels.dtype == torch.int64
    freq = F.one_hot(labels, 4).double().mean(dim=0)
    p = logits.softmax(dim=-1)
    z = (freq - p).abs() / (p * (1 - p) / n).sqrt()
    assert z.max() < 4.5
    # a uniform sampler (a typical bug: sampling ignores the logits) would be far off
    assert ((freq - 0.25).abs() / (p * (1 - p) / n).sqrt()).max() > 50
    again = sample_labels(logits.expand(n, 3, 4), generator=torch.Generator().manual_seed(1))
    assert torch.equal(labels, again)


def test_sampled_label_loss_is_cross_entropy_against_the_sampled_labels() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 7, generator=gen).to(torch.bfloat16)
    loss = sampled_label_loss(logits, generator=torch.Generator().manual_seed(5))
    labels = sample_labels(logits, generator=torch.Generator().manual_seed(5))
    assert loss.dtype == torch.float32  # bf16 logits: the loss is computed in fp32
    assert loss.item() == F.cross_entropy(logits.float().view(-1, 7), labels.view(-1)).item()


# --- GNB ---------------------------------------------------------------------------------------------


def test_gnb_estimate_matches_the_exact_gauss_newton_diagonal() -> None:
    """Bartlett identity: for a linear softmax model on a fixed batch of B inputs, the mean of B g_hat^2
    over sampled labels is diag((1/B) sum_b J_b^T (diag(p_b) - p_b p_b^T) J_b). Clipping off."""
    b, v, d = 4, 5, 3
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(b, d, generator=gen, dtype=torch.float64)
    w = torch.randn(v, d, generator=gen, dtype=torch.float64)
    y = torch.randint(v, (b,), generator=gen)
    p = (x @ w.T).softmax(dim=-1)
    gn = torch.einsum("bd,bv->vd", x**2, p * (1 - p)) / b  # J_b = e_v x_b^T: the diagonal in closed form
    # Independent check of the closed form: with linear logits the Hessian of the mean CE is the GN matrix.
    hess = torch.autograd.functional.hessian(lambda f: F.cross_entropy(x @ f.view(v, d).T, y), w.flatten())
    torch.testing.assert_close(hess.diagonal().view(v, d), gn, rtol=1e-12, atol=1e-15)

    replicas = torch.nn.Parameter(w.expand(N_DRAWS, v, d).clone())
    opt = SophiaG([replicas], betas=(0.9, 0.0), bs=N_DRAWS * b)  # beta2 = 0: h is this draw's g^2
    logits = torch.einsum("bd,nvd->nbv", x, replicas)
    gnb_hessian_step(opt, logits, grad_clip=None, generator=torch.Generator().manual_seed(1))
    # The loss is the mean over N*B positions, so replica n's gradient is g_hat_n / N: B g_hat_n^2 = B N^2 h_n.
    samples = b * N_DRAWS**2 * opt.state[replicas]["hessian"]
    assert z_scores(samples, gn).max() < Z_MAX

    # The mistakes this catches: h from the true-label gradient (optax#968), and forgetting the factor B.
    w_true = w.clone().requires_grad_()
    (g_true,) = torch.autograd.grad(F.cross_entropy(x @ w_true.T, y), w_true)
    assert z_scores(samples, b * g_true**2).max() > 20
    assert z_scores(samples, g_true**2).max() > 20
    assert z_scores(samples, gn / b).max() > 20


def tiny_lm(seed: int = 0) -> tuple[list[torch.nn.Parameter], torch.Tensor, torch.Tensor, torch.Tensor]:
    """A bigram-free 'language model': logits (B=2, T=3, V=5) = x W^T + c from fixed features; params, x, y, x_hess."""
    gen = torch.Generator().manual_seed(seed)
    params = [
        torch.nn.Parameter(0.5 * torch.randn(5, 4, generator=gen, dtype=torch.float64)),
        torch.nn.Parameter(torch.zeros(5, dtype=torch.float64)),
    ]
    x = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(5, (2, 3), generator=gen)
    x_hess = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64)
    return params, x, y, x_hess


def logits_of(params: list[torch.nn.Parameter], x: torch.Tensor) -> torch.Tensor:
    return x @ params[0].T + params[1]


def test_gnb_step_clips_like_the_training_gradient_and_clears_grads() -> None:
    runs = {}
    for clip in (None, "quarter", 1e6):
        params, _, _, x_hess = tiny_lm()
        opt = SophiaG(params, betas=(0.9, 0.0), bs=6)
        for p in params:
            p.grad = torch.ones_like(p)  # stale grads must not leak into g_hat
        if clip == "quarter":
            clip = runs[None][1]["estimator_grad_norm"] / 4
        stats = gnb_hessian_step(
            opt, logits_of(params, x_hess), grad_clip=clip, generator=torch.Generator().manual_seed(3)
        )
        assert all(p.grad is None for p in params)
        runs[clip] = ([opt.state[p]["hessian"].clone() for p in params], stats)

    h_free, stats_free = runs[None]
    quarter = stats_free["estimator_grad_norm"] / 4
    h_clip, stats_clip = runs[quarter]
    # pre-clip norm reported either way; beta2 = 0, so sum(h) is the squared norm of the g_hat folded in
    assert stats_clip["estimator_grad_norm"] == pytest.approx(stats_free["estimator_grad_norm"], rel=1e-12)
    assert math.sqrt(sum(h.sum().item() for h in h_free)) == pytest.approx(stats_free["estimator_grad_norm"])
    assert math.sqrt(sum(h.sum().item() for h in h_clip)) == pytest.approx(quarter, rel=1e-5)
    coef = quarter / (stats_free["estimator_grad_norm"] + 1e-6)  # torch's clip_grad_norm_ coefficient
    for hc, hf in zip(h_clip, h_free, strict=True):
        torch.testing.assert_close(hc, coef**2 * hf, rtol=1e-12, atol=0)
    for h_big, hf in zip(runs[1e6][0], h_free, strict=True):
        assert torch.equal(h_big, hf)  # a clip above the norm leaves g_hat untouched
    labels_loss = sampled_label_loss(logits_of(tiny_lm()[0], x_hess), generator=torch.Generator().manual_seed(3))
    assert stats_free["estimator_loss"] == labels_loss.item()


def test_estimators_refuse_the_other_optimizer() -> None:
    params, _, _, x_hess = tiny_lm()
    with pytest.raises(TypeError, match="SophiaG"):
        gnb_hessian_step(SophiaH(params), logits_of(params, x_hess))
    with pytest.raises(TypeError, match="SophiaH"):
        hutchinson_hessian_step(SophiaG(params, bs=6), logits_of(params, x_hess).sum())
    with pytest.raises(ValueError, match="grad_clip"):
        gnb_hessian_step(SophiaG(params, bs=6), logits_of(params, x_hess), grad_clip=0.0)
    with pytest.raises(ValueError, match="distribution"):
        hutchinson_hessian_step(SophiaH(params), logits_of(params, x_hess).sum(), distribution="normal")


# --- the estimator in a training loop ----------------------------------------------------------------

KW = {"lr": 0.05, "betas": (0.9, 0.5), "rho": 5.0, "weight_decay": 0.1, "bs": 6}


def train(
    opt: SophiaG,
    params: list[torch.nn.Parameter],
    x: torch.Tensor,
    y: torch.Tensor,
    x_hess: torch.Tensor,
    steps: range,
    k: int = 10,
) -> tuple[list[list[torch.Tensor]], dict[int, dict[str, float]]]:
    """The official loop: backward, clip 1.0, step; after every k-th step a GNB update on the extra batch.
    The sampling generator is seeded from the step, so a resumed run draws the same labels. Returns the clipped
    gradients each step used and the logged stats per Hessian update."""
    used, logged = [], {}
    for step in steps:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(logits_of(params, x).view(-1, 5), y.view(-1)).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        used.append([p.grad.clone() for p in params])
        opt.step()
        if hessian_update_due(step, k):
            gen = torch.Generator().manual_seed(1000 + step)
            logged[step] = gnb_hessian_step(opt, logits_of(params, x_hess), grad_clip=1.0, generator=gen)
    return used, logged


def test_loop_takes_sign_momentum_steps_until_the_first_hessian_update() -> None:
    params, x, y, x_hess = tiny_lm()
    theta = [p.detach().clone() for p in params]
    opt = SophiaG(params, **KW)
    lr, wd, beta1 = KW["lr"], KW["weight_decay"], KW["betas"][0]
    m = [torch.zeros_like(t) for t in theta]
    sign_steps = []
    for step in range(1, 12):
        used, logged = train(opt, params, x, y, x_hess, range(step, step + 1))
        for i, g in enumerate(used[0]):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            theta[i] = theta[i] * (1 - lr * wd) - lr * torch.sign(m[i])
        sign_steps.append(all(torch.equal(p.detach(), t) for p, t in zip(params, theta, strict=True)))
        if step < 10:
            assert all(not opt.state[p]["hessian"].any() for p in params)
        if step == 10:
            assert set(logged) == {10}
            assert logged[10]["hessian_min"] >= 0 and 0 < logged[10]["win_rate"] < 1
    assert sign_steps == [True] * 10 + [False]  # the step after the first update uses h


def test_resumed_loop_is_bit_identical_with_a_step_seeded_generator() -> None:
    """Save at step 15 (between the updates at 10 and 20), reload, continue to 30: identical to a run that
    never stopped, with h updated at the same steps."""
    params, x, y, x_hess = tiny_lm()
    opt = SophiaG(params, **KW)
    _, logged = train(opt, params, x, y, x_hess, range(1, 31))
    assert set(logged) == {10, 20, 30}

    part, _, _, _ = tiny_lm()
    opt_part = SophiaG(part, **KW)
    train(opt_part, part, x, y, x_hess, range(1, 16))
    buf = io.BytesIO()
    torch.save({"params": [p.detach() for p in part], "opt": opt_part.state_dict(), "global_step": 15}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    resumed = [torch.nn.Parameter(t.clone()) for t in ckpt["params"]]
    opt_resumed = SophiaG(resumed, **KW)
    opt_resumed.load_state_dict(ckpt["opt"])
    _, logged_resumed = train(opt_resumed, resumed, x, y, x_hess, range(ckpt["global_step"] + 1, 31))
    assert set(logged_resumed) == {20, 30}
    assert logged_resumed[30] == logged[30]
    for p, q in zip(params, resumed, strict=True):
        assert torch.equal(p, q)
        for key in ("step", "exp_avg", "hessian"):
            assert torch.equal(opt.state[p][key], opt_resumed.state[q][key])


@settings(max_examples=40, deadline=None)
@given(
    beta2=st.floats(0.0, 0.9999),
    estimates=st.lists(st.lists(st.floats(-1e100, 1e100), min_size=3, max_size=3), min_size=1, max_size=8),
    seed=st.integers(0, 2**16),
)
def test_gnb_hessian_ema_stays_nonnegative_and_steps_leave_it_alone(
    beta2: float, estimates: list[list[float]], seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter(torch.randn(3, generator=gen, dtype=torch.float64))
    opt = SophiaG([p], lr=0.1, betas=(0.9, beta2), rho=1.0, bs=4)
    for e in estimates:
        p.grad = torch.tensor(e, dtype=torch.float64)
        opt.update_hessian()
        h = opt.state[p]["hessian"].clone()
        assert (h >= 0).all() and torch.isfinite(h).all()
        p.grad = torch.randn(3, generator=gen, dtype=torch.float64)
        opt.step()
        assert torch.equal(opt.state[p]["hessian"], h)
        assert torch.isfinite(p).all()


# --- Hutchinson --------------------------------------------------------------------------------------


def symmetric_indefinite(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=gen, dtype=torch.float64)
    a = a + a.T
    assert (a.diagonal() < 0).any() and (a.diagonal() > 0).any()
    return a


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_hutchinson_is_u_times_hu_across_parameters(distribution: str) -> None:
    """With the probes replayed from the same generator: h = u * (A u) exactly, including the cross-parameter blocks
    of A; a parameter that enters the loss linearly has zero curvature."""
    a = symmetric_indefinite(5)
    gen = torch.Generator().manual_seed(0)
    xa = torch.nn.Parameter(torch.randn(3, generator=gen, dtype=torch.float64))
    xb = torch.nn.Parameter(torch.randn(2, generator=gen, dtype=torch.float64))
    c = torch.nn.Parameter(torch.randn(4, generator=gen, dtype=torch.float64))
    opt = SophiaH([xa, xb, c], betas=(0.9, 0.0))
    z = torch.cat([xa, xb])
    loss = 0.5 * z @ a @ z + (c * torch.arange(4.0, dtype=torch.float64)).sum()
    stats = hutchinson_hessian_step(opt, loss, distribution=distribution, generator=torch.Generator().manual_seed(7))

    replay = torch.Generator().manual_seed(7)
    if distribution == "gaussian":
        u = [torch.randn(s, generator=replay, dtype=torch.float64) for s in (3, 2, 4)]
    else:
        u = [(2 * torch.randint(0, 2, (s,), generator=replay) - 1).double() for s in (3, 2, 4)]
    uz = torch.cat(u[:2])
    expected = uz * (a @ uz)
    torch.testing.assert_close(
        torch.cat([opt.state[xa]["hessian"], opt.state[xb]["hessian"]]), expected, rtol=1e-12, atol=1e-14
    )
    assert torch.equal(opt.state[c]["hessian"], torch.zeros(4, dtype=torch.float64))
    assert all(p.grad is None for p in (xa, xb, c))
    assert stats["estimator_loss"] == loss.item()


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_hutchinson_mean_is_the_exact_hessian_diagonal_of_a_quadratic(distribution: str) -> None:
    """For 1/2 x^T A x the mean of u * (A u) is diag(A). N independent replicas of x in one call."""
    n = 5
    a = symmetric_indefinite(n)
    x = torch.nn.Parameter(torch.randn(N_DRAWS, n, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    opt = SophiaH([x], betas=(0.9, 0.0))  # beta2 = 0: h is this draw's estimate
    loss = 0.5 * torch.einsum("ni,ij,nj->", x, a, x)
    hutchinson_hessian_step(opt, loss, distribution=distribution, generator=torch.Generator().manual_seed(2))
    samples = opt.state[x]["hessian"]
    assert z_scores(samples, a.diagonal()).max() < Z_MAX
    # Estimating the diagonal of A^2 (a "(Hu)^2" mistake) or |diag A| (a relu'd or squared estimate) would fail.
    assert z_scores(samples, (a @ a).diagonal()).max() > 20
    assert z_scores(samples, a.diagonal().abs()).max() > 20
    if distribution == "rademacher":  # u_i^2 = 1: the variance is sum_{j != i} A_ij^2, without Gaussian's 2 A_ii^2
        off = (a**2).sum(dim=1) - a.diagonal() ** 2
        torch.testing.assert_close(samples.var(dim=0), off, rtol=0.1, atol=0)
