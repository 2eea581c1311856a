"""How SOAP views a tensor for preconditioning: the official ``merge_dims`` reshaping, after the channels_last
permutation. Shared by the per-tensor reference (:mod:`papers.soap.optim`) and the batched step
(:mod:`papers.soap.batched`)."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["Layout", "from_layout", "merged_shape", "to_layout"]


class Layout(NamedTuple):
    """``merge``: reshape with :func:`merged_shape`; ``max_dim``: its bound; ``channels_last``: 4-D tensors are
    (O, H, W, I) and are merged as (O, I, H, W)."""

    merge: bool
    max_dim: int
    channels_last: bool


def merged_shape(shape: tuple[int, ...], max_dim: int) -> list[int]:
    """The official ``merge_dims``: fuse neighbouring dims while their product stays <= ``max_dim``."""
    new_shape: list[int] = []
    current = 1
    for size in shape:
        product = current * size
        if product > max_dim:
            if current > 1:
                new_shape.append(current)
                current = size
            else:
                new_shape.append(size)
                current = 1
        else:
            current = product
    if current > 1 or not new_shape:
        new_shape.append(current)
    return new_shape


def to_layout(t: torch.Tensor, layout: Layout) -> torch.Tensor:
    """View ``t`` the way the factors see it: channels_last 4-D -> (O, I, H, W), then merged (merge_dims only)."""
    if not layout.merge:
        return t
    if layout.channels_last and t.ndim == 4:
        t = t.permute(0, 3, 1, 2)
    return t.reshape(merged_shape(tuple(t.shape), layout.max_dim))


def from_layout(t: torch.Tensor, shape: torch.Size, layout: Layout) -> torch.Tensor:
    """Inverse of :func:`to_layout` for a tensor of the original ``shape``."""
    if not layout.merge:
        return t
    if layout.channels_last and len(shape) == 4:
        return t.reshape(shape[0], shape[3], shape[1], shape[2]).permute(0, 2, 3, 1)
    return t.reshape(shape)
