"""LMC-LSVI and epsilon-greedy LSVI with tabular (one-hot) features, batched over independent runs.

One-hot features make a finite-horizon tabular MDP a linear MDP with d = S*A per level, and the regularised
least-squares loss of LMC-LSVI

    L_h(w) = sum_tau (y_tau - w[s_tau, a_tau])^2 + lam ||w||^2,   y = r + max_a w_{h+1}[s', a]

separates per coordinate: grad = 2 ((n + lam) w - sum y), with n the visit count and sum y computed from the
stored reward sums and next-state counts. The paper's algorithm (no official code for the linear setting) runs J
Langevin steps w <- w - eta grad + sqrt(2 eta / beta) N(0, I) per level, h = H..1, every episode, then acts
greedily on the sampled Q. Our choices, all config keys and labelled as ours: the diagonal preconditioned step
eta(s, a) = c / (n(s, a) + lam), a warm start from the previous episode's sample, ``inv_beta`` = 1/beta.

On fixed data the chain per coordinate is AR(1): w' = (1 - 2c) w + 2c w_hat + sqrt(2 c inv_beta / (n + lam)) eps,
so its stationary law is N(w_hat, 2 / (beta a (2 - 2c))) with a = 2 (n + lam): 4/3 of the posterior variance
(2 beta Lambda)^-1 at c = 0.25 (the tests check both moments).

A plain numpy loop, not Lightning: the method is tabular (no network, no gradient-based training and no data
loader; each "update" is a closed-form regression plus a few noisy steps on a few hundred numbers), and batching
the R runs as one array is what makes 5 seeds x 5000 episodes fit the cpu budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from papers.rl_variance.envs.deepsea import DeepSea


def langevin_steps(w: np.ndarray, ysum: np.ndarray, n: np.ndarray, lam: float, c: np.ndarray | float,
                   inv_beta: np.ndarray | float, steps: int, rng: np.random.Generator) -> np.ndarray:
    """``steps`` preconditioned Langevin steps on the per-coordinate loss; returns the new w (a copy).

    w <- w - eta * 2 ((n + lam) w - ysum) + sqrt(2 eta inv_beta) eps,  eta = c / (n + lam)."""
    w = np.array(w, dtype=np.float64, copy=True)
    prec = n + lam
    eta = c / prec
    w_hat = ysum / prec
    step = 2.0 * eta * prec  # eta * d grad / d w = 2c; the gradient step is w - eta grad = w - 2c (w - w_hat)
    noise = np.sqrt(2.0 * eta * inv_beta) * rng.standard_normal((steps, *w.shape))
    for j in range(steps):
        w += step * (w_hat - w) + noise[j]
    return w


def stationary_variance(n: np.ndarray | float, lam: float, c: float, inv_beta: float) -> np.ndarray | float:
    """Stationary variance of :func:`langevin_steps` per coordinate: 2 inv_beta / (a (2 - h a)), a = 2(n+lam),
    h a = 2c."""
    a = 2.0 * (np.asarray(n) + lam)
    return 2.0 * inv_beta / (a * (2.0 - 2.0 * c))


@dataclass
class LSVIResult:
    success: np.ndarray  # (R, episodes) bool: reached the treasure
    returns: np.ndarray  # (R, episodes)


def run_lsvi(env: DeepSea, episodes: int, *, method: str, rng: np.random.Generator, lam: float = 1.0,
             c: float = 0.25, inv_beta: np.ndarray | float = 0.5, langevin_steps_per_level: int = 15,
             epsilon: float = 0.1) -> LSVIResult:
    """Run ``method`` in {"lmc", "egreedy"} on every copy of ``env`` for ``episodes`` episodes.

    ``inv_beta`` may be one value per copy (shape (R,)), for the temperature sweep."""
    if method not in ("lmc", "egreedy"):
        raise ValueError(f"method must be 'lmc' or 'egreedy', got {method!r}")
    R, H, S, A = len(env.seeds), env.horizon, env.size, 2
    n = np.zeros((R, H, S, A))
    rsum = np.zeros((R, H, S, A))
    nxt = np.zeros((R, H, S, A, S))
    w = np.zeros((R, H, S, A))
    temp = np.broadcast_to(np.asarray(inv_beta, dtype=np.float64).reshape(-1, 1, 1), (R, 1, 1))
    runs = np.arange(R)
    success = np.zeros((R, episodes), dtype=bool)
    returns = np.zeros((R, episodes))
    for ep in range(episodes):
        # Backward pass: regression targets from level h+1's (sampled) values.
        v_next = np.zeros((R, S))
        for h in range(H - 1, -1, -1):
            ysum = rsum[:, h] + (nxt[:, h].reshape(R, S * A, S) @ v_next[:, :, None]).reshape(R, S, A)
            if method == "lmc":
                w[:, h] = langevin_steps(w[:, h], ysum, n[:, h], lam, c, temp, langevin_steps_per_level, rng)
            else:
                w[:, h] = ysum / (n[:, h] + lam)
            v_next = w[:, h].max(-1)
        # Forward pass: greedy on the sample (LMC) or epsilon-greedy on the ridge solution; ties broken at random.
        s = env.reset()
        total = np.zeros(R)
        for h in range(H):
            q = w[runs, h, s]
            a = np.where(q[:, 0] == q[:, 1], rng.integers(0, 2, R), q.argmax(-1))
            if method == "egreedy":
                a = np.where(rng.random(R) < epsilon, rng.integers(0, 2, R), a)
            s2, r, _ = env.step(a)
            n[runs, h, s, a] += 1
            rsum[runs, h, s, a] += r
            if h + 1 < H:
                nxt[runs, h, s, a, s2] += 1
            total += r
            s = s2
        returns[:, ep] = total
        success[:, ep] = env.col == S - 1
    return LSVIResult(success, returns)
