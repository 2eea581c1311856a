"""DQN / Adam LMCDQN: n-step targets, the batched network, Lightning = plain loop, bit-identical resume."""

import copy

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from common.models.mlp import mlp
from papers.rl_variance.dqn import BatchedMLP, DQNAgent, ReplayBuffer, fit_dqn

BASE = dict(n=6, hidden=[8], buffer_size=400, batch_size=8, n_step=3, gamma=0.9, target_update=5, step_per_collect=10,
            update_per_step=0.3, update_num=2, double=True, eps_start=1.0, eps_final=0.1, eps_decay_steps=50,
            explore="egreedy", optimizer={"name": "adam", "lr": 1e-2})


def _cfg(arm):
    cfg = OmegaConf.create(BASE)
    if arm == "lmc":
        cfg.explore = "greedy"
        cfg.optimizer = {"name": "asgld", "lr": 1e-2, "noise_scale": 0.1}
    return cfg


def test_nstep_returns_stop_at_episode_ends():
    buf = ReplayBuffer(1, 10, 1)
    rew = np.array([[1.0, 2.0, 4.0, 8.0, 16.0]])
    done = np.array([[False, True, False, False, False]])
    buf.add({"obs": np.zeros((1, 5, 1)), "obs_next": np.zeros((1, 5, 1)), "act": np.zeros((1, 5), dtype=int),
             "rew": rew, "done": done})
    ret, last, ended = buf.nstep(np.array([[0, 2, 4]]), 3, 0.5)
    np.testing.assert_allclose(ret, [[1 + 0.5 * 2, 4 + 0.5 * 8 + 0.25 * 16, 16]])
    assert last.tolist() == [[1, 4, 4]] and ended.tolist() == [[True, False, False]]


def test_batched_mlp_copy_equals_the_seeded_mlp():
    net = BatchedMLP([5, 7, 2], [3, 4])
    x = torch.randn(2, 6, 5)
    for i, seed in enumerate([3, 4]):
        torch.manual_seed(seed)
        ref = mlp(5, [7], 2)
        torch.testing.assert_close(net(x)[i], ref(x[i]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arm", ["dqn", "lmc"])
def test_lightning_run_equals_the_plain_loop(arm):
    plain = DQNAgent(_cfg(arm), [0, 1])
    plain.run(200, 50)
    lit = fit_dqn(_cfg(arm), [0, 1], 200, 50)
    assert plain.eval_curve == lit.eval_curve and plain.updates == lit.updates > 0
    for p, q in zip(plain.net.parameters(), lit.net.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("arm", ["dqn", "lmc"])
def test_resume_reproduces_an_uninterrupted_run(arm):
    straight = DQNAgent(_cfg(arm), [0, 1])
    straight.run(300, 50)
    first = DQNAgent(_cfg(arm), [0, 1])
    first.run(150, 50)
    saved = copy.deepcopy(first.state_dict())
    resumed = DQNAgent(_cfg(arm), [5, 6])  # other seeds: everything must come from the checkpoint
    resumed.load_state_dict(saved)
    resumed.run(300, 50)
    assert straight.eval_curve == resumed.eval_curve and straight.train_returns == resumed.train_returns
    for p, q in zip(straight.net.parameters(), resumed.net.parameters(), strict=True):
        assert torch.equal(p, q)


def test_greedy_lmc_never_explores_and_dqn_epsilon_decays():
    assert DQNAgent(_cfg("lmc"), [0]).epsilon() == 0.0
    agent = DQNAgent(_cfg("dqn"), [0])
    assert agent.epsilon() == 1.0
    agent.env_steps = 50
    assert agent.epsilon() == pytest.approx(0.1)
