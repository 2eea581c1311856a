"""Batched image transforms on in-memory tensors (no per-sample Python loop, no torchvision).

All ops take and return float tensors shaped (B, C, H, W) in raw [0, 1] pixel space; normalisation is
the last step so that zero padding equals the black background of MNIST-style images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W) or (B, C, H, W) -> float32 (B, C, H, W) in [0, 1]."""
    x = images.to(torch.float32).div_(255.0)
    return x.unsqueeze(1) if x.dim() == 3 else x


def center_pad(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad the last two dims symmetrically up to ``size`` (extra pixel, if odd, goes right/bottom)."""
    h, w = x.shape[-2:]
    if h == size and w == size:
        return x
    if h > size or w > size:
        raise ValueError(f"cannot pad {h}x{w} images to a smaller size {size}")
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(x, (left, size - w - left, top, size - h - top))


def random_crop_flip(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Standard CIFAR augmentation: zero-pad by ``padding``, crop back at a random offset, flip half."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = dy[:, None] + torch.arange(h)  # (B, H)
    cols = dx[:, None] + torch.arange(w)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(-1), cols)
    bi = torch.arange(b)[:, None, None, None]
    ci = torch.arange(c)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def normalize(x: torch.Tensor, mean: float | Sequence[float], std: float | Sequence[float]) -> torch.Tensor:
    """(x - mean) / std, in place on ``x``; ``mean``/``std`` are one value or one per channel (dim 1)."""
    if isinstance(mean, (int, float)) and isinstance(std, (int, float)):
        return x.sub_(mean).div_(std)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    m, sd = (torch.as_tensor(v, dtype=x.dtype).view(shape) for v in (mean, std))
    return x.sub_(m).div_(sd)
