"""Pre-tokenized corpora: flat binary files of token ids, read memory-mapped.

Two layouts: the shards and ``manifest.json`` that ``reproduce prepare`` writes (:mod:`common.data.prepare`; dtype,
tokenizer and vocabulary come from the manifest), and nanoGPT's ``prepare.py`` output, ``train.bin`` and usually
``val.bin`` of uint16 ids (nanoGPT's OpenWebText: ~9B and ~4M GPT-2 BPE tokens). Files are memory-mapped and only
the windows a batch needs are read, so a corpus far larger than RAM works. Windows and batches come from
:mod:`common.data.token_windows`, the code :class:`common.data.text.TextDataModule` uses, so the two DataModules
draw batches the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from common.data.resumable import ResumableDataLoader
from common.data.token_windows import BLOCK_TOKENS, RandomWindowBatches, WindowIndex, gather_windows, split_ranges
from common.errors import ConfigError, DataError

__all__ = ["GPT2_VOCAB_SIZE", "TokenFile", "TokenFileDataModule", "TokenShards", "check_vocab", "load_token_file",
           "read_manifest"]

GPT2_VOCAB_SIZE = 50304  # nanoGPT: GPT-2's 50257 BPE tokens padded up to a multiple of 64
VOCAB_SAMPLE_CHUNKS, VOCAB_SAMPLE_TOKENS = 64, 4096


def load_token_file(path: str | Path, dtype: np.dtype | type = np.uint16) -> np.memmap:
    """Read-only memmap of a flat token file; DataError if it is missing, empty, or not whole ``dtype`` items."""
    path = Path(path).expanduser()
    dtype = np.dtype(dtype)
    if not path.exists():
        raise DataError(f"token file not found: {path} (write token shards with reproduce prepare, or nanoGPT's "
                        "prepare.py)")
    if not path.is_file():
        raise DataError(f"token file {path} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"token file {path} is empty")
    if size % dtype.itemsize:
        raise DataError(f"token file {path} has {size} bytes, not a whole number of {dtype.name} tokens "
                        f"({dtype.itemsize} bytes each): truncated, or written with another dtype")
    return np.memmap(path, dtype=dtype, mode="r")


class TokenFile:
    """A token file that indexes like a 1-D int64 tensor, reading only the requested positions.

    :func:`common.data.token_windows.gather_windows` indexes it with an int64 tensor of positions, exactly as it
    indexes an in-memory token tensor. The memmap is opened lazily and dropped when pickled, so DataLoader
    workers reopen the file instead of receiving a copy of it. ``max_tokens`` keeps only the file's first tokens.
    """

    def __init__(self, path: str | Path, dtype: np.dtype | type = np.uint16, max_tokens: int | None = None) -> None:
        self.path, self.dtype = Path(path).expanduser(), np.dtype(dtype)
        n = len(load_token_file(self.path, self.dtype))
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}")
        self.length = n if max_tokens is None else min(n, max_tokens)
        self._array: np.memmap | None = None

    @property
    def array(self) -> np.memmap:
        if self._array is None:
            self._array = load_token_file(self.path, self.dtype)
        return self._array

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        flat = np.asarray(index, dtype=np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= self.length):
            raise IndexError(f"token positions {flat.min()}..{flat.max()} outside 0..{self.length - 1} of {self.path}")
        return torch.from_numpy(self.array[flat].astype(np.int64))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r}, dtype={self.dtype.name}, tokens={self.length})"


class TokenShards:
    """Token files read as one stream: positions index their concatenation (``ranges()`` keeps windows in one file).

    Indexes like :class:`TokenFile`; ``max_tokens`` keeps only the first tokens of the concatenation.
    """

    def __init__(self, paths: Sequence[Path], dtype: np.dtype | type = np.uint16,
                 max_tokens: int | None = None) -> None:
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}")
        self.files: list[TokenFile] = []
        left = max_tokens
        for path in paths:
            if left is not None and left <= 0:
                break
            self.files.append(TokenFile(path, dtype, left))
            left = None if left is None else left - len(self.files[-1])
        self.offsets = np.cumsum([0, *(len(f) for f in self.files)])
        self.length = int(self.offsets[-1])

    def ranges(self) -> list[tuple[int, int]]:
        """(start, stop) of each file in the concatenated positions."""
        return [(int(a), int(b)) for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        flat = np.asarray(index, dtype=np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= self.length):
            raise IndexError(f"token positions {flat.min()}..{flat.max()} outside 0..{self.length - 1}")
        shard = np.searchsorted(self.offsets, flat, side="right") - 1
        out = np.empty(flat.shape, dtype=np.int64)
        for k in np.unique(shard).tolist():
            at = shard == k
            out[at] = self.files[k].array[flat[at] - self.offsets[k]]
        return torch.from_numpy(out)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """``directory/manifest.json`` of ``reproduce prepare`` (None when absent), with every shard's size checked."""
    path = directory / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        itemsize = np.dtype(manifest["dtype"]).itemsize
        shards = manifest["shards"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a token-shard manifest ({type(exc).__name__}: {exc}); rerun reproduce "
                        "prepare") from None
    for split in shards.values():
        for s in split:
            f = directory / s["file"]
            if not f.is_file() or f.stat().st_size != s["tokens"] * itemsize:
                have = f"{f.stat().st_size} bytes" if f.is_file() else "missing"
                raise DataError(f"token shard {f} is {have}, the manifest says {s['tokens']} tokens of "
                                f"{manifest['dtype']}; rerun reproduce prepare into a new folder")
    return manifest


def _clip(ranges: list[tuple[int, int]], bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``ranges`` inside each of ``bounds`` (so no piece crosses a file boundary)."""
    return [(max(a, lo), min(b, hi)) for a, b in ranges for lo, hi in bounds if max(a, lo) < min(b, hi)]


def check_vocab(tokens: TokenFile | TokenShards, vocab_size: int) -> None:
    """DataError if a sample of the file (64 evenly spaced runs of 4096 tokens) has an id >= ``vocab_size``.

    A sample, not the whole file: reading 18 GB of OpenWebText to validate it would take minutes. It catches the
    usual mistake, a file written with another tokenizer (T5's 32000 vs GPT-2's 50304, or bytes vs BPE).
    """
    for file in tokens.files if isinstance(tokens, TokenShards) else [tokens]:
        n = len(file)
        starts = np.unique(np.linspace(0, max(0, n - VOCAB_SAMPLE_TOKENS), VOCAB_SAMPLE_CHUNKS).astype(np.int64))
        low, top, at = 0, -1, 0
        for start in starts.tolist():
            chunk = np.asarray(file.array[start:min(n, start + VOCAB_SAMPLE_TOKENS)])
            low = min(low, int(chunk.min()))
            if int(chunk.max()) > top:
                top, at = int(chunk.max()), start + int(chunk.argmax())
        if low < 0:
            raise DataError(f"token file {file.path} holds a negative token id ({low}): wrong dtype?")
        if top >= vocab_size:
            raise DataError(f"token file {file.path} holds token id {top} (position {at}) but vocab_size is "
                            f"{vocab_size}; pass the tokenizer's vocabulary size (GPT-2 BPE: {GPT2_VOCAB_SIZE})")


class TokenFileDataModule(pl.LightningDataModule):
    """Next-token windows of ``block_size`` tokens from local token files, batched like ``TextDataModule``.

    ``path`` is a folder of ``reproduce prepare`` shards (``manifest.json``), a folder with nanoGPT's ``train.bin``
    (+ ``val.bin``), or a single token file. Windows never cross a file boundary. With val files the validation
    windows come from them and ``val_fraction`` is unused; otherwise the train tokens are split by
    :func:`common.data.token_windows.split_ranges` with ``val_fraction`` and ``split_block_tokens``, as
    ``TextDataModule`` splits a text corpus. Train: endless random windows, batch ``i`` a function of
    ``(seed, i)``; stop it with ``max_steps``. Val: ``val_batches * eval_batch_size`` evenly spaced windows, the
    same for every seed. ``vocab_size`` (None: the manifest's tokenizer padded up to a multiple of 64, as nanoGPT
    pads GPT-2's 50257 to 50304, or 50304 without a manifest) and ``dtype`` (a manifest's wins) are checked against
    a sample of the ids in ``setup``. Nothing is read at construction. ``batch_size`` is the global batch of one
    forward pass: under DDP each rank trains on its share of it.
    """

    batch_is_global = True  # common.lit.fit.accumulation counts batch_size once, not once per process

    def __init__(self, path: str | Path, block_size: int = 64, batch_size: int = 16, val_fraction: float = 0.05,
                 seed: int = 0, max_tokens: int | None = None, val_batches: int = 8,
                 eval_batch_size: int | None = None, split_block_tokens: int = BLOCK_TOKENS,
                 vocab_size: int | None = None, dtype: np.dtype | type = np.uint16) -> None:
        super().__init__()
        sizes = {"block_size": block_size, "batch_size": batch_size, "val_batches": val_batches,
                 "eval_batch_size": 1 if eval_batch_size is None else eval_batch_size,
                 "vocab_size": 1 if vocab_size is None else vocab_size}
        for arg, value in sizes.items():
            if value < 1:
                raise ConfigError(f"{arg} must be >= 1, got {value}")
        self.path, self.block_size, self.batch_size = Path(path).expanduser(), block_size, batch_size
        self.val_fraction, self.seed, self.max_tokens = val_fraction, seed, max_tokens
        self.val_batches = val_batches
        self.eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        self.split_block_tokens, self.dtype = split_block_tokens, np.dtype(dtype)
        self._vocab_size = vocab_size
        self.tokens_per_step = batch_size * block_size
        self.effective_batch = batch_size  # sequences per optimizer step; gradient accumulation is the trainer's
        self._train_tokens: TokenShards | None = None
        self._train: RandomWindowBatches | None = None
        self._val: TensorDataset | None = None

    def files(self) -> tuple[list[Path], list[Path]]:
        """(train files, val files, possibly none) that ``path`` names; a manifest also sets dtype and vocab."""
        if not self.path.is_dir():
            return [self.path], []
        manifest = read_manifest(self.path)
        if manifest is not None:
            self.dtype = np.dtype(manifest["dtype"])
            if self._vocab_size is None:
                self._vocab_size = -(-int(manifest["tokenizer"]["vocab_size"]) // 64) * 64
            return [[self.path / s["file"] for s in manifest["shards"].get(split, [])] for split in ("train", "val")]
        train, val = self.path / "train.bin", self.path / "val.bin"
        if not train.is_file():
            raise DataError(f"no manifest.json or train.bin in token directory {self.path} (write it with "
                            "reproduce prepare, or nanoGPT's prepare.py)")
        return [train], [val] if val.is_file() else []

    def setup(self, stage: str | None = None) -> None:
        if self._train_tokens is not None:
            return
        train_paths, val_paths = self.files()
        tokens = TokenShards(train_paths, self.dtype, self.max_tokens)
        check_vocab(tokens, self.vocab_size)
        if val_paths:
            val_tokens = TokenShards(val_paths, self.dtype, self.max_tokens)
            check_vocab(val_tokens, self.vocab_size)
            train_ranges, val_ranges = tokens.ranges(), val_tokens.ranges()
        else:
            val_tokens = tokens
            splits = split_ranges(len(tokens), self.val_fraction, 0.0, self.split_block_tokens)
            train_ranges, val_ranges = _clip(splits.train, tokens.ranges()), _clip(splits.val, tokens.ranges())
        train_index = WindowIndex(train_ranges, self.block_size, "train")
        # TokenShards stand in for the in-memory token tensor TextDataModule passes (they index alike).
        self._train = RandomWindowBatches(tokens, train_index, self.batch_size, self.seed)  # type: ignore[arg-type]
        if val_ranges:
            val_index = WindowIndex(val_ranges, self.block_size, "val")
            starts = val_index.evenly_spaced(self.val_batches * self.eval_batch_size)
            self._val = TensorDataset(*gather_windows(val_tokens, starts, self.block_size))  # type: ignore[arg-type]
        self._train_tokens = tokens

    @property
    def vocab_size(self) -> int:
        if self._vocab_size is None:
            self.files()  # a manifest sets it
        return GPT2_VOCAB_SIZE if self._vocab_size is None else self._vocab_size

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return ResumableDataLoader(self._train, batch_size=None)  # a resumed run continues the stream

    def val_dataloader(self) -> DataLoader | list:
        self.setup()
        if self._val is None:
            return []
        return DataLoader(self._val, batch_size=self.eval_batch_size, shuffle=False)
