"""LMC-LSVI's Langevin sampler (hand-derived step, stationary mean and variance) and the DeepSea behaviour."""

import numpy as np
import pytest

from papers.rl_variance.envs import DeepSea
from papers.rl_variance.lsvi import langevin_steps, run_lsvi, stationary_variance


def test_one_langevin_step_matches_the_hand_derived_update():
    rng = np.random.default_rng(0)
    w, ysum, n = rng.normal(size=6), rng.normal(size=6) * 3, rng.integers(0, 5, 6).astype(float)
    lam, c, inv_beta = 1.0, 0.25, 0.5
    eps = np.random.default_rng(1).standard_normal((1, 6))[0]
    eta = c / (n + lam)
    expected = w - eta * 2 * ((n + lam) * w - ysum) + np.sqrt(2 * eta * inv_beta) * eps
    got = langevin_steps(w, ysum, n, lam, c, inv_beta, 1, np.random.default_rng(1))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_sampler_long_run_mean_and_variance_match_the_discretised_values():
    M = 20_000
    rng = np.random.default_rng(0)
    n = rng.integers(0, 20, M).astype(float)
    ysum = rng.normal(size=M) * 5
    lam, c, inv_beta = 1.0, 0.25, 0.5
    w = langevin_steps(np.zeros(M), ysum, n, lam, c, inv_beta, 60, rng)
    z = (w - ysum / (n + lam)) / np.sqrt(stationary_variance(n, lam, c, inv_beta))
    assert abs(z.mean()) < 3 / np.sqrt(M)
    assert abs(z.var() - 1) < 3 * np.sqrt(2 / M)
    # 4/3 of the posterior variance (2 beta Lambda)^-1 = inv_beta / (2 (n + lam)) at c = 0.25
    np.testing.assert_allclose(stationary_variance(n, lam, c, inv_beta) / (inv_beta / (2 * (n + lam))), 4 / 3)


def test_lmc_solves_a_small_deepsea_that_epsilon_greedy_does_not():
    env_seeds = [0, 1, 2]
    lmc = run_lsvi(DeepSea(6, env_seeds), 300, method="lmc", rng=np.random.default_rng(0), langevin_steps_per_level=10)
    eg = run_lsvi(DeepSea(6, env_seeds), 300, method="egreedy", rng=np.random.default_rng(0), epsilon=0.1)
    assert lmc.success.any(1).all()
    assert lmc.success.mean() > eg.success.mean()


def test_bad_method_is_an_error():
    with pytest.raises(ValueError, match="method"):
        run_lsvi(DeepSea(3, [0]), 1, method="ucb", rng=np.random.default_rng(0))
