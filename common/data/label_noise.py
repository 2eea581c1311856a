"""Symmetric label noise: the standard robustness test (a fraction of labels moved to another class)."""

from __future__ import annotations

import torch

from common.data.seeding import generator_for


def symmetric_label_noise(labels: torch.Tensor, rate: float, num_classes: int, seed: int) -> torch.Tensor:
    """A copy of ``labels`` where a random ``rate`` fraction (exactly round(rate * n) examples) is replaced by a
    class drawn uniformly from the *other* classes. Deterministic in ``seed``; ``labels`` is not modified."""
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes!r}")
    gen = generator_for(seed, 0x4E015E)
    noisy = labels.clone().to(torch.int64)
    n_flip = round(float(rate) * len(labels))
    which = torch.randperm(len(labels), generator=gen)[:n_flip]
    shift = torch.randint(1, num_classes, (n_flip,), generator=gen)
    noisy[which] = (noisy[which] + shift) % num_classes
    return noisy
