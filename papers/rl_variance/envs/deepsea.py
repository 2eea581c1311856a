"""DeepSea (Osband et al., bsuite), batched: R independent N x N grids stepped together with numpy."""

from __future__ import annotations

import numpy as np


class DeepSea:
    """N x N grid, start at the top-left, one row down per step, horizon N.

    Action 1 or 0 means "right" in a cell according to a random per-cell mapping drawn from ``seeds[r]`` (fixed
    per seed, the bsuite randomisation). A right move costs ``0.01 / N``; after N moves, standing in the bottom
    right cell (only reachable by N right moves) pays 1. Always-right therefore returns 1 - 0.01 = 0.99.
    ``R = len(seeds)`` copies run in lockstep; the state is (row, column) per copy.
    """

    def __init__(self, size: int, seeds: list[int]) -> None:
        if size < 2:
            raise ValueError(f"size must be >= 2, got {size}")
        self.size = int(size)
        self.seeds = list(seeds)
        self.mapping = np.stack([np.random.default_rng(s).integers(0, 2, (size, size)) for s in self.seeds])
        self.row = np.zeros(len(self.seeds), dtype=np.int64)
        self.col = np.zeros(len(self.seeds), dtype=np.int64)

    @property
    def horizon(self) -> int:
        return self.size

    def reset(self) -> np.ndarray:
        """Back to (0, 0) in every copy; returns the column (the state within a level)."""
        self.row[:] = 0
        self.col[:] = 0
        return self.col.copy()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Apply one action per copy; returns (next column, reward, episode over)."""
        r = np.arange(len(self.seeds))
        right = np.asarray(action) == self.mapping[r, self.row, self.col]
        reward = np.where(right, -0.01 / self.size, 0.0)
        self.col = np.clip(self.col + np.where(right, 1, -1), 0, self.size - 1)
        self.row = self.row + 1
        done = bool(self.row[0] >= self.size)
        if done:
            reward = reward + (self.col == self.size - 1).astype(float)
        return self.col.copy(), reward, done

    def right_action(self) -> np.ndarray:
        """The action that moves right in each copy's current cell (for tests and oracles)."""
        r = np.arange(len(self.seeds))
        return self.mapping[r, self.row, self.col].copy()
