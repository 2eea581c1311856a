"""Pre-tokenized corpora as nanoGPT's ``prepare.py`` writes them: flat binary files of token ids (uint16).

A directory holds ``train.bin`` and, usually, ``val.bin`` (nanoGPT's OpenWebText: ~9B and ~4M GPT-2 BPE tokens);
:func:`common.data.hf.tokenize_to_bin` writes the same layout. Files are memory-mapped and only the windows a batch
needs are read, so a corpus far larger than RAM works. Windows and batches come from
:mod:`common.data.token_windows`, the code :class:`common.data.text.TextDataModule` uses, so the two DataModules
draw batches the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from common.data.resumable import ResumableDataLoader
from common.data.token_windows import BLOCK_TOKENS, RandomWindowBatches, WindowIndex, gather_windows, split_ranges
from common.errors import ConfigError, DataError

__all__ = ["GPT2_VOCAB_SIZE", "TokenFile", "TokenFileDataModule", "check_vocab", "load_token_file"]

GPT2_VOCAB_SIZE = 50304  # nanoGPT: GPT-2's 50257 BPE tokens padded up to a multiple of 64
VOCAB_SAMPLE_CHUNKS, VOCAB_SAMPLE_TOKENS = 64, 4096


def load_token_file(path: str | Path, dtype: np.dtype | type = np.uint16) -> np.memmap:
    """Read-only memmap of a flat token file; DataError if it is missing, empty, or not whole ``dtype`` items."""
    path = Path(path).expanduser()
    dtype = np.dtype(dtype)
    if not path.exists():
        raise DataError(f"token file not found: {path} (write it with nanoGPT's prepare.py or "
                        "common.data.hf.tokenize_to_bin)")
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


def check_vocab(tokens: TokenFile, vocab_size: int) -> None:
    """DataError if a sample of the file (64 evenly spaced runs of 4096 tokens) has an id >= ``vocab_size``.

    A sample, not the whole file: reading 18 GB of OpenWebText to validate it would take minutes. It catches the
    usual mistake, a file written with another tokenizer (T5's 32000 vs GPT-2's 50304, or bytes vs BPE).
    """
    n = len(tokens)
    starts = np.unique(np.linspace(0, max(0, n - VOCAB_SAMPLE_TOKENS), VOCAB_SAMPLE_CHUNKS).astype(np.int64))
    low, top, at = 0, -1, 0
    for start in starts.tolist():
        chunk = np.asarray(tokens.array[start:min(n, start + VOCAB_SAMPLE_TOKENS)])
        low = min(low, int(chunk.min()))
        if int(chunk.max()) > top:
            top, at = int(chunk.max()), start + int(chunk.argmax())
    if low < 0:
        raise DataError(f"token file {tokens.path} holds a negative token id ({low}): wrong dtype?")
    if top >= vocab_size:
        raise DataError(f"token file {tokens.path} holds token id {top} (position {at}) but vocab_size is "
                        f"{vocab_size}; pass the tokenizer's vocabulary size (GPT-2 BPE: {GPT2_VOCAB_SIZE})")


class TokenFileDataModule(pl.LightningDataModule):
    """Next-token windows of ``block_size`` tokens from a local token file, batched like ``TextDataModule``.

    ``path`` is a directory with ``train.bin`` (+ ``val.bin``) or a single token file. With a ``val.bin`` the
    validation windows come from it and ``val_fraction`` is unused; otherwise the file is split by
    :func:`common.data.token_windows.split_ranges` with ``val_fraction`` and ``split_block_tokens``, as
    ``TextDataModule`` splits a text corpus. Train: endless random windows, batch ``i`` a function of
    ``(seed, i)``; stop it with ``max_steps``. Val: ``val_batches * eval_batch_size`` evenly spaced windows, the
    same for every seed. ``vocab_size`` is an argument (the file does not say which tokenizer wrote it) and is
    checked against a sample of the ids in ``setup``. Nothing is read at construction.
    """

    def __init__(self, path: str | Path, block_size: int = 64, batch_size: int = 16, val_fraction: float = 0.05,
                 seed: int = 0, max_tokens: int | None = None, val_batches: int = 8,
                 eval_batch_size: int | None = None, split_block_tokens: int = BLOCK_TOKENS,
                 vocab_size: int = GPT2_VOCAB_SIZE, dtype: np.dtype | type = np.uint16) -> None:
        super().__init__()
        sizes = {"block_size": block_size, "batch_size": batch_size, "val_batches": val_batches,
                 "eval_batch_size": 1 if eval_batch_size is None else eval_batch_size, "vocab_size": vocab_size}
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
        self._train_tokens: TokenFile | None = None
        self._train: RandomWindowBatches | None = None
        self._val: TensorDataset | None = None

    def files(self) -> tuple[Path, Path | None]:
        """(train file, val file or None) that ``path`` names."""
        if not self.path.is_dir():
            return self.path, None
        train, val = self.path / "train.bin", self.path / "val.bin"
        if not train.is_file():
            raise DataError(f"no train.bin in token directory {self.path} (write it with nanoGPT's prepare.py or "
                            "common.data.hf.tokenize_to_bin)")
        return train, val if val.is_file() else None

    def setup(self, stage: str | None = None) -> None:
        if self._train_tokens is not None:
            return
        train_path, val_path = self.files()
        tokens = TokenFile(train_path, self.dtype, self.max_tokens)
        check_vocab(tokens, self._vocab_size)
        if val_path is not None:
            val_tokens = TokenFile(val_path, self.dtype, self.max_tokens)
            check_vocab(val_tokens, self._vocab_size)
            train_ranges, val_ranges = [(0, len(tokens))], [(0, len(val_tokens))]
        else:
            val_tokens = tokens
            splits = split_ranges(len(tokens), self.val_fraction, 0.0, self.split_block_tokens)
            train_ranges, val_ranges = splits.train, splits.val
        train_index = WindowIndex(train_ranges, self.block_size, "train")
        # A TokenFile stands in for the in-memory token tensor TextDataModule passes (see TokenFile).
        self._train = RandomWindowBatches(tokens, train_index, self.batch_size, self.seed)  # type: ignore[arg-type]
        if val_ranges:
            val_index = WindowIndex(val_ranges, self.block_size, "val")
            starts = val_index.evenly_spaced(self.val_batches * self.eval_batch_size)
            self._val = TensorDataset(*gather_windows(val_tokens, starts, self.block_size))  # type: ignore[arg-type]
        self._train_tokens = tokens

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return ResumableDataLoader(self._train, batch_size=None)  # a resumed run continues the stream

    def val_dataloader(self) -> DataLoader | list:
        self.setup()
        if self._val is None:
            return []
        return DataLoader(self._val, batch_size=self.eval_batch_size, shuffle=False)
