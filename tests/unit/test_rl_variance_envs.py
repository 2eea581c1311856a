"""The in-repo environments: DeepSea and N-chain dynamics and rewards, the token MDP's enumeration."""

import numpy as np
import pytest
import torch

from papers.rl_variance.envs import Bandit, DeepSea, NChain, TokenMDP, kl_rows
from papers.rl_variance.envs.nchain import LEFT, RIGHT


@pytest.mark.parametrize("size", [2, 5, 10])
def test_deepsea_always_right_returns_099(size):
    env = DeepSea(size, [0, 1, 2])
    env.reset()
    total, done = np.zeros(3), False
    while not done:
        _, r, done = env.step(env.right_action())
        total += r
    np.testing.assert_allclose(total, 0.99)
    assert (env.col == size - 1).all()


def test_deepsea_always_left_and_random_mappings():
    env = DeepSea(6, [3, 4])
    env.reset()
    total, done = np.zeros(2), False
    while not done:
        _, r, done = env.step(1 - env.right_action())
        total += r
    np.testing.assert_allclose(total, 0.0)
    assert (env.col == 0).all()
    # the per-cell mapping is fixed per seed and differs between seeds
    assert np.array_equal(DeepSea(6, [3]).mapping[0], env.mapping[0])
    assert not np.array_equal(env.mapping[0], env.mapping[1])


def test_deepsea_right_move_costs_001_over_n():
    env = DeepSea(4, [0])
    env.reset()
    _, r, _ = env.step(env.right_action())
    assert r[0] == pytest.approx(-0.01 / 4)
    _, r, _ = env.step(1 - env.right_action())
    assert r[0] == 0.0


@pytest.mark.parametrize("n", [5, 25, 50])
def test_nchain_optimal_return_is_10(n):
    env = NChain(n)
    env.reset()
    total, done = 0.0, False
    while not done:
        _, r, done = env.step(RIGHT)
        total += r
    assert total == pytest.approx(10.0) == env.optimal_return
    assert env.t == n + 7


def test_nchain_left_pays_0001_per_step_at_state_1_and_thermometer():
    env = NChain(10)
    obs = env.reset()
    assert obs.tolist() == [1, 1] + [0] * 8
    total, done = 0.0, False
    while not done:
        _, r, done = env.step(LEFT)
        total += r
    assert total == pytest.approx(0.001 * 17)  # 17 steps, each ending in state 1
    with pytest.raises(ValueError, match="n"):
        NChain(2)


def test_token_mdp_enumerates_every_response_once_with_total_probability_one():
    mdp = TokenMDP.make(prompts=3, max_len=5, seed=1)
    assert mdp.n_responses == (2**5 - 1) + 2**5
    table = torch.randn(mdp.n_rows, 3, dtype=torch.float64)
    p = mdp.seq_logprobs(table).exp()
    torch.testing.assert_close(p.sum(-1), torch.ones(3, dtype=torch.float64))
    assert set(mdp.lengths.int().tolist()) == set(range(1, 6))


def test_token_mdp_exact_gradient_equals_autograd_of_the_exact_objective():
    mdp = TokenMDP.make(prompts=2, max_len=4, seed=0)
    table = torch.randn(mdp.n_rows, 3, dtype=torch.float64, requires_grad=True)
    mdp.expected_reward(table).backward()
    torch.testing.assert_close(mdp.exact_gradient(table), table.grad.flatten(), rtol=1e-10, atol=1e-12)


def test_token_mdp_reward_is_the_verifiable_sum_mod_3():
    mdp = TokenMDP.make(prompts=4, max_len=3, seed=0)
    for s in range(mdp.n_responses):
        toks = [t for t, m in zip(mdp.tok[0, s].tolist(), mdp.mask[0, s].tolist(), strict=True) if m and t != 2]
        for p in range(4):
            assert mdp.rewards[p, s] == float(sum(toks) % 3 == mdp.targets[p])


def test_bandit_optimum_is_the_kl_regularised_solution():
    b = Bandit.make(3, 5, seed=0)
    beta = 0.1
    logq = b.optimal_logits(beta)
    # pi* maximises E_pi[R] - beta KL(pi || pi_ref): compare with random policies
    ref = torch.log_softmax(b.ref_logits, -1)

    def objective(logp):
        return (logp.exp() * b.rewards).sum(-1) - beta * kl_rows(logp, ref)

    best = objective(logq)
    for _ in range(20):
        other = torch.log_softmax(logq + 0.3 * torch.randn_like(logq), -1)
        assert (objective(other) <= best + 1e-12).all()
