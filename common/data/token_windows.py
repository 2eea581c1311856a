"""Deterministic train/val/test splitting of a token stream, and (x, y) windows drawn from the splits.

A split is a list of contiguous ``(start, stop)`` runs of the original token tensor. Windows never cross a
run boundary, so no training or evaluation example glues together two pieces of text that were not
adjacent in the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import NamedTuple

import torch
from torch.utils.data import IterableDataset

from common.data.seeding import generator_for
from common.errors import ConfigError, DataError

BLOCK_TOKENS = 4096

Ranges = list[tuple[int, int]]


class TokenSplits(NamedTuple):
    """Per split, the contiguous pieces (views of one token tensor, or (start, stop) ranges)."""

    train: list
    val: list
    test: list


def held_out(i: int, f: Fraction) -> bool:
    """Bresenham rule: True for an evenly spaced fraction ``f`` of all i (every 1/f-th i if 1/f is whole)."""
    return (i + 1) * f // 1 > i * f // 1


def checked_fraction(name: str, value: float) -> Fraction:
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), got {value}")
    return Fraction(value).limit_denominator(1_000_000)


def split_ranges(n_tokens: int, val_fraction: float = 0.05, test_fraction: float = 0.0,
                 block_tokens: int = BLOCK_TOKENS) -> TokenSplits:
    """Like :func:`split_tokens` but returns ``(start, stop)`` ranges into a stream of ``n_tokens``."""
    vf, tf = checked_fraction("val_fraction", val_fraction), checked_fraction("test_fraction", test_fraction)
    held = vf + tf
    if held >= 1:
        raise ConfigError(f"val_fraction + test_fraction must be < 1, got {float(held)}")
    if block_tokens < 1:
        raise ConfigError(f"block_tokens must be >= 1, got {block_tokens}")
    out: dict[str, Ranges] = {"train": [], "val": [], "test": []}
    n_held = 0
    for b, start in enumerate(range(0, n_tokens, block_tokens)):
        stop = min(start + block_tokens, n_tokens)
        name = "train"
        if held and held_out(b, held):
            name = "test" if held_out(n_held, tf / held) else "val"
            n_held += 1
        runs = out[name]
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], stop)  # merge adjacent blocks of the same split
        else:
            runs.append((start, stop))
    for name, frac in (("val", vf), ("test", tf)):
        if frac and not out[name]:
            n_blocks = -(-n_tokens // block_tokens)
            raise DataError(f"corpus too small for a {name} split: {n_tokens} tokens = {n_blocks} blocks of "
                            f"{block_tokens}, {name}_fraction={float(frac)} selects none; use more text")
    return TokenSplits(out["train"], out["val"], out["test"])


def split_tokens(tokens: torch.Tensor, val_fraction: float = 0.05, test_fraction: float = 0.0,
                 block_tokens: int = BLOCK_TOKENS) -> TokenSplits:
    """Split a 1-D token tensor into train/val/test lists of contiguous views (no copies).

    Rule: the stream is cut into consecutive blocks of ``block_tokens`` (4096) tokens, the last possibly
    shorter. With ``f = val_fraction + test_fraction``, block ``i`` is held out when
    ``floor((i+1)·f) > floor(i·f)``, i.e. every ``1/f``-th block (blocks 19, 39, ... for f = 0.05), so the
    held-out text is spread over the whole corpus rather than being its tail. The ``j``-th held-out block
    goes to test when ``floor((j+1)·t/f) > floor(j·t/f)`` with ``t = test_fraction``, else to val.
    Adjacent blocks of the same split are merged into one piece. The rule depends only on the token
    count, so it is identical across seeds and machines. An empty requested split raises DataError.
    """
    if tokens.dim() != 1:
        raise DataError(f"split_tokens needs a 1-D token tensor, got shape {list(tokens.shape)}")
    ranges = split_ranges(len(tokens), val_fraction, test_fraction, block_tokens)
    return TokenSplits(*([tokens[a:b] for a, b in split] for split in ranges))


class WindowIndex:
    """Maps a flat index over all valid window starts of some runs to positions in the token stream.

    A window of ``block_size`` inputs needs ``block_size + 1`` tokens (targets are shifted by one).
    """

    def __init__(self, ranges: Ranges, block_size: int, what: str) -> None:
        counts = [max(0, b - a - block_size) for a, b in ranges]
        self.total = sum(counts)
        if self.total == 0:
            longest = max((b - a for a, b in ranges), default=0)
            raise DataError(f"{what} split too short for block_size={block_size}: longest piece has "
                            f"{longest} tokens, need at least {block_size + 1}")
        kept = [(r, c) for r, c in zip(ranges, counts, strict=True) if c > 0]
        self.run_starts = torch.tensor([a for (a, _), _ in kept], dtype=torch.int64)
        self.cum = torch.cumsum(torch.tensor([c for _, c in kept], dtype=torch.int64), 0)
        self.block_size = block_size

    def starts(self, flat: torch.Tensor) -> torch.Tensor:
        """Token positions of the windows with flat indices ``flat`` (each in [0, total))."""
        run = torch.searchsorted(self.cum, flat, right=True)
        before = torch.cat([torch.zeros(1, dtype=torch.int64), self.cum])[run]
        return self.run_starts[run] + (flat - before)

    def evenly_spaced(self, n: int) -> torch.Tensor:
        """Starts of ``n`` windows at evenly spaced flat indices (repeats if there are fewer than n)."""
        flat = torch.div(torch.arange(n, dtype=torch.int64) * self.total, n, rounding_mode="floor")
        return self.starts(flat)


def gather_windows(tokens: torch.Tensor, starts: torch.Tensor,
                   block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) int64 tensors (B, T): x = tokens[s:s+T], y = tokens[s+1:s+T+1] for each start s."""
    w = tokens[starts[:, None] + torch.arange(block_size + 1)].to(torch.int64)
    return w[:, :-1], w[:, 1:]


class RandomWindowBatches(IterableDataset):
    """Endless stream of (x, y) batches of random training windows; use with ``DataLoader(batch_size=None)``.

    Batch ``i`` depends only on ``(seed, i)``: the same seed gives the same batches, and ``start_batch``
    lets a resumed run continue the stream instead of replaying it. Stop it with ``max_steps``. ``batch_size``
    is the global batch: under torch.distributed each rank yields its contiguous share of batch ``i``.
    """

    def __init__(self, tokens: torch.Tensor, index: WindowIndex, batch_size: int, seed: int,
                 start_batch: int = 0) -> None:
        super().__init__()
        self.tokens, self.index, self.batch_size = tokens, index, batch_size
        self.seed, self.start_batch = seed, start_batch

    def batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        flat = torch.randint(self.index.total, (self.batch_size,), generator=generator_for(self.seed, i))
        return gather_windows(self.tokens, self.index.starts(flat), self.index.block_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rank, world = _rank_and_world()
        if self.batch_size % world:
            raise DataError(f"batch_size {self.batch_size} (the global batch) must be divisible by the "
                            f"{world} processes of the distributed run")
        share = self.batch_size // world
        i = self.start_batch
        while True:
            x, y = self.batch(i)
            if world > 1:  # each rank trains on its slice of the same global batch: DDP == one process
                x, y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
            yield x, y
            i += 1


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
