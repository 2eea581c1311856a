"""N-chain (Osband et al.; the follow-up's N-chain table), one chain with a thermometer observation."""

from __future__ import annotations

import numpy as np

LEFT, RIGHT = 0, 1


class NChain:
    """States 1..N, start at 2, actions {left, right} (deterministic, clipped at the ends).

    A step that ends in state 1 pays 0.001, one that ends in state N pays 1; the horizon is N + 7 steps, so the
    optimal return (N - 2 right moves, then 9 more steps at N) is exactly 10, and always-left earns 0.001 per
    step. The observation is the thermometer encoding x_i = 1 for i <= s (N floats). The follow-up's exact
    definition is not published; this one is pinned by the tests.
    """

    def __init__(self, n: int) -> None:
        if n < 3:
            raise ValueError(f"n must be >= 3, got {n}")
        self.n = int(n)
        self.horizon = self.n + 7
        self.state = 2
        self.t = 0

    @property
    def optimal_return(self) -> float:
        return float(self.horizon - (self.n - 2) + 1)

    def observe(self) -> np.ndarray:
        return (np.arange(1, self.n + 1) <= self.state).astype(np.float32)

    def reset(self) -> np.ndarray:
        self.state, self.t = 2, 0
        return self.observe()

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        """Returns (observation, reward, done); done at the horizon."""
        state, reward = chain_step(np.array([self.state]), np.array([action]), self.n)
        self.state = int(state[0])
        self.t += 1
        return self.observe(), float(reward[0]), self.t >= self.horizon


def chain_step(state: np.ndarray, action: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The dynamics for many chains at once: (next states, rewards)."""
    nxt = np.where(action == RIGHT, np.minimum(state + 1, n), np.maximum(state - 1, 1))
    return nxt, np.where(nxt == n, 1.0, np.where(nxt == 1, 0.001, 0.0))
