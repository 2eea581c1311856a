"""Loss aggregators on a hand-made batch (lengths 1, 2, 4), Delta-L's weights, the exact-gradient statistics
and the GVPO loss (zero at pi*, gradient closed form, detached mean, whole groups)."""

import itertools

import numpy as np
import pytest
import torch

from papers.rl_variance.aggregation import (
    AggConfig,
    aggregate,
    deltal_weights,
    group_advantages,
    gvpo_loss,
    sequence_coefficients,
)
from papers.rl_variance.envs import Bandit, TokenMDP
from papers.rl_variance.exp_aggregation import bias_variance, estimates, sample_batches

L = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
MASK = (torch.arange(4)[None, :] < L[:, None]).to(torch.float64)
TOK = torch.tensor([[1.0, 9, 9, 9], [2.0, 3.0, 9, 9], [4.0, 5.0, 6.0, 7.0]], dtype=torch.float64)  # 9 = padding
GIDS = torch.zeros(3, dtype=torch.long)


def _agg(name, **kw):
    return aggregate(TOK, MASK, GIDS, L, AggConfig(name, max_len=8, **kw)).item()


def test_each_aggregator_equals_its_closed_form():
    assert _agg("grpo") == pytest.approx((1 + (2 + 3) / 2 + (4 + 5 + 6 + 7) / 4) / 3)
    assert _agg("dapo") == pytest.approx(28 / 7)
    assert _agg("drgrpo") == pytest.approx(28 / (3 * 8))  # the configured constant 8, not the padded width 4
    w = np.array([1, 1 / 2, 1 / 4]) / np.mean([1, 1 / 2, 1 / 4])
    assert _agg("deltal", alpha=1.0) == pytest.approx((w[0] * 1 + w[1] * 5 + w[2] * 22) / (3 * 8))


def test_drgrpo_divisor_is_a_constant_not_the_padded_width():
    wider = torch.cat([TOK, torch.full((3, 4), 9.0, dtype=torch.float64)], 1)
    wider_mask = torch.cat([MASK, torch.zeros(3, 4, dtype=torch.float64)], 1)
    cfg = AggConfig("drgrpo", max_len=8)
    assert aggregate(wider, wider_mask, GIDS, L, cfg).item() == pytest.approx(_agg("drgrpo"))  # verl#3741


def test_deltal_alpha0_is_drgrpo_and_alpha1_weights_are_inverse_length_with_mean_1():
    assert _agg("deltal", alpha=0.0) == pytest.approx(_agg("drgrpo"))
    w = deltal_weights(L, 1.0)
    assert w.mean().item() == pytest.approx(1.0)
    torch.testing.assert_close(w * L, torch.full((3,), (w * L)[0].item(), dtype=torch.float64))


def test_deltal_weights_are_the_minimum_variance_unbiased_combination():
    # g_i independent with mean mu and Var = V L_i: unbiased combinations have sum(x) = 1, variance V sum(x^2 L).
    x = (deltal_weights(L, 1.0) / 3).numpy()
    assert x.sum() == pytest.approx(1.0)
    best = (x**2 * L.numpy()).sum()
    assert best == pytest.approx(1 / (1 / L.numpy()).sum())  # the Lagrange optimum 1 / sum(1/L_i)
    rng = np.random.default_rng(0)
    for _ in range(200):
        y = x + rng.normal(0, 0.1, 3)
        y = y - (y.sum() - 1) / 3
        assert (y**2 * L.numpy()).sum() >= best - 1e-12


def test_sequence_coefficients_are_the_token_weights():
    for name, kw in [("grpo", {}), ("dapo", {}), ("drgrpo", {}), ("deltal", {"alpha": 0.75})]:
        cfg = AggConfig(name, max_len=8, **kw)
        k = sequence_coefficients(MASK, GIDS, L, cfg)
        assert (k * (TOK * MASK).sum(-1)).sum().item() == pytest.approx(aggregate(TOK, MASK, GIDS, L, cfg).item())


def test_group_advantages_with_and_without_std():
    r = torch.tensor([1.0, 0.0, 1.0, 3.0, 5.0, 4.0], dtype=torch.float64)
    g = torch.tensor([0, 0, 0, 1, 1, 1])
    a = group_advantages(r, g, std_normalize=False)
    torch.testing.assert_close(a, torch.tensor([1 / 3, -2 / 3, 1 / 3, -1.0, 1.0, 0.0], dtype=torch.float64))
    s = group_advantages(r, g, std_normalize=True, eps=0.0)
    torch.testing.assert_close(s[3:], torch.tensor([-1.0, 1.0, 0.0], dtype=torch.float64))


def test_invalid_aggregator_config():
    with pytest.raises(ValueError, match="name"):
        AggConfig("mean", max_len=4)
    with pytest.raises(ValueError, match="alpha"):
        AggConfig("deltal", max_len=4, alpha=-1)


def test_drgrpo_monte_carlo_mean_converges_to_c_times_the_exact_gradient():
    mdp = TokenMDP.make(prompts=2, max_len=3, seed=0)
    g = torch.Generator().manual_seed(0)
    table = 0.5 * torch.randn(mdp.n_rows, 3, generator=g, dtype=torch.float64)
    G = 4
    idx = sample_batches(mdp, table, G, 20000, g)
    arms = {"drgrpo": (AggConfig("drgrpo", max_len=3), False), "grpo": (AggConfig("grpo", max_len=3), False)}
    est = estimates(mdp, table, idx, arms, G)
    true = mdp.exact_gradient(table).numpy()
    c = (1 - 1 / G) / 3  # E[(R_i - mean R) score_i] = (1 - 1/G) grad J_x, divided by L_max
    mean = est["drgrpo"].mean(0)
    se = est["drgrpo"].std(0) / np.sqrt(20000)
    assert np.all(np.abs(mean - c * true) < 4 * se + 1e-12)
    st = bias_variance(est["drgrpo"], true, 50, np.random.default_rng(0))
    assert st["c"] == pytest.approx(c, rel=0.05) and st["b2"] < 3 * st["b2_se"]
    assert bias_variance(est["grpo"], true, 50, np.random.default_rng(0))["b2"] > 0  # computed, whatever its sign


# --- GVPO -----------------------------------------------------------------------------------------------------
def _groups(P, k):
    return torch.arange(P).repeat_interleave(k)


@pytest.mark.parametrize("mu", ["uniform", "ref", "random"])
def test_gvpo_expected_loss_and_gradient_are_zero_at_pi_star(mu):
    b = Bandit.make(1, 4, seed=0)
    beta, k = 0.1, 2
    ref = torch.log_softmax(b.ref_logits, -1)[0]
    logits = b.optimal_logits(beta)[0].clone().requires_grad_(True)
    probs = {"uniform": torch.full((4,), 0.25, dtype=torch.float64), "ref": ref.exp(),
             "random": torch.softmax(torch.randn(4, dtype=torch.float64), 0)}[mu]
    total = 0.0
    for pair in itertools.product(range(4), repeat=k):  # every group of k, weighted by its mu-probability
        idx = torch.tensor(pair)
        logp = torch.log_softmax(logits, -1)[idx]
        total = total + probs[idx].prod() * gvpo_loss(logp, ref[idx], b.rewards[0][idx], _groups(1, k), beta, k)
    total.backward()
    assert abs(total.item()) < 1e-20
    assert logits.grad.abs().max().item() < 1e-12


def test_gvpo_gradient_matches_its_closed_form_and_the_detached_mean_changes_nothing():
    torch.manual_seed(0)
    P, k, beta = 3, 4, 0.1
    logp = torch.randn(P * k, dtype=torch.float64, requires_grad=True)
    anchor, rew, gids = torch.randn(P * k, dtype=torch.float64), torch.rand(P * k, dtype=torch.float64), _groups(P, k)
    gvpo_loss(logp, anchor, rew, gids, beta, k).backward()
    detached = logp.grad.clone()
    logp.grad = None
    gvpo_loss(logp, anchor, rew, gids, beta, k, detach_mean=False).backward()
    torch.testing.assert_close(detached, logp.grad, rtol=1e-12, atol=1e-15)
    r_theta = beta * (logp.detach() - anchor)
    def centred(x):
        return x - x.view(P, k).mean(1).repeat_interleave(k)

    resid = centred(r_theta) - centred(rew)
    torch.testing.assert_close(detached, beta * resid / (k - 1) / P, rtol=1e-12, atol=1e-15)


def test_gvpo_split_group_is_an_error():
    logp = torch.zeros(5, dtype=torch.float64)
    with pytest.raises(ValueError, match="whole groups"):
        gvpo_loss(logp, logp, logp, torch.tensor([0, 0, 0, 1, 1]), 0.1, 3)
