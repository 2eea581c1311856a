"""One call that seeds every generator a run touches, so a seed in a record means the same run twice."""

from __future__ import annotations

import lightning.pytorch as pl


def seed_all(seed: int) -> int:
    """Seed Python's ``random``, NumPy and torch (all devices), and dataloader workers; returns the seed."""
    return pl.seed_everything(seed, workers=True, verbose=False)
