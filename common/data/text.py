"""Text corpora for language-model arms: loading, tokenizing, splitting, and a Lightning DataModule.

Corpora: ``python-stdlib`` (see :mod:`common.data.stdlib_corpus`; needs no download) and ``file:PATH`` for
any local UTF-8 text file. Tokens are byte- or character-level.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from common.data.resumable import ResumableDataLoader
from common.data.stdlib_corpus import python_stdlib_files, python_stdlib_text
from common.data.token_windows import (
    BLOCK_TOKENS,
    RandomWindowBatches,
    TokenSplits,
    WindowIndex,
    gather_windows,
    split_ranges,
    split_tokens,
)
from common.data.tokenizers import ByteTokenizer, CharTokenizer
from common.errors import ConfigError, DataError

__all__ = [
    "CORPORA", "ByteTokenizer", "CharTokenizer", "TextDataModule", "TokenSplits", "load_corpus",
    "python_stdlib_files", "python_stdlib_text", "read_text_file", "split_ranges", "split_tokens",
]

Level = Literal["byte", "char"]
Tokenizer = ByteTokenizer | CharTokenizer
CORPORA = {"python-stdlib": python_stdlib_text}


def read_text_file(path: str | Path, max_bytes: int | None = None) -> str:
    """A local UTF-8 file's text (its first ``max_bytes`` bytes, never splitting a character)."""
    path = Path(path).expanduser()
    try:
        with path.open("rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes)
    except FileNotFoundError:
        raise DataError(f"text corpus file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read text corpus file {path}: {exc.strerror or exc}") from None
    try:
        complete = max_bytes is None or len(data) < max_bytes
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=complete)
    except UnicodeDecodeError as exc:
        raise DataError(f"text corpus file {path} is not UTF-8 (bad byte at offset {exc.start})") from None
    if not text:
        raise DataError(f"text corpus file {path} is empty")
    return text


def corpus_text(name: str, max_bytes: int | None = None) -> str:
    """Raw text of corpus ``name`` (a key of CORPORA or ``file:PATH``)."""
    if name.startswith("file:"):
        return read_text_file(name[len("file:"):], max_bytes)
    if name not in CORPORA:
        raise DataError(f"unknown text corpus {name!r}; valid: {', '.join(sorted(CORPORA))} or file:PATH")
    return CORPORA[name](max_bytes)


def load_corpus(name: str = "python-stdlib", level: Level = "byte",
                max_bytes: int | None = None) -> tuple[torch.Tensor, Tokenizer]:
    """(1-D int32 token tensor, tokenizer) for a corpus; int32 halves memory, batches are int64.

    The char-level vocabulary is the corpus's own character set, so it depends on ``max_bytes``.
    """
    if level not in ("byte", "char"):
        raise ConfigError(f"unknown tokenization level {level!r}; valid: byte, char")
    text = corpus_text(name, max_bytes)
    tokenizer: Tokenizer = ByteTokenizer() if level == "byte" else CharTokenizer.from_text(text)
    return tokenizer.encode(text).to(torch.int32), tokenizer


class TextDataModule(pl.LightningDataModule):
    """Next-token prediction windows of ``block_size`` tokens from a corpus.

    Train: an endless stream of random windows, batch ``i`` a function of ``(seed, i)``; the trainer must
    stop it with ``max_steps``. Val: a fixed set of ``val_batches * eval_batch_size`` windows at evenly
    spaced positions of the val split, the same for every seed. The split follows :func:`split_tokens`
    with blocks of ``split_block_tokens`` tokens. Data is built lazily (``setup`` or first attribute use).
    ``batch_size`` is the global batch of one forward pass: under DDP each rank trains on its share of it.
    """

    batch_is_global = True  # common.lit.fit.accumulation counts batch_size once, not once per process

    def __init__(self, corpus: str = "python-stdlib", level: Level = "byte", block_size: int = 64,
                 batch_size: int = 16, val_fraction: float = 0.05, seed: int = 0,
                 max_bytes: int | None = None, val_batches: int = 8, eval_batch_size: int | None = None,
                 split_block_tokens: int = BLOCK_TOKENS) -> None:
        super().__init__()
        if level not in ("byte", "char"):
            raise ConfigError(f"unknown tokenization level {level!r}; valid: byte, char")
        sizes = {"block_size": block_size, "batch_size": batch_size, "val_batches": val_batches,
                 "eval_batch_size": 1 if eval_batch_size is None else eval_batch_size}
        for arg, value in sizes.items():
            if value < 1:
                raise ConfigError(f"{arg} must be >= 1, got {value}")
        self.corpus, self.level, self.block_size, self.batch_size = corpus, level, block_size, batch_size
        self.val_fraction, self.seed, self.max_bytes = val_fraction, seed, max_bytes
        self.val_batches = val_batches
        self.eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        self.split_block_tokens = split_block_tokens
        self.tokens_per_step = batch_size * block_size
        self.effective_batch = batch_size  # sequences per optimizer step; gradient accumulation is the trainer's
        self._tokens: torch.Tensor | None = None
        self._tokenizer: Tokenizer | None = None
        self._train: RandomWindowBatches | None = None
        self._val: TensorDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._tokens is not None:
            return
        tokens, tokenizer = load_corpus(self.corpus, self.level, self.max_bytes)
        splits = split_ranges(len(tokens), self.val_fraction, 0.0, self.split_block_tokens)
        train_index = WindowIndex(splits.train, self.block_size, "train")
        self._train = RandomWindowBatches(tokens, train_index, self.batch_size, self.seed)
        if self.val_fraction > 0:
            val_index = WindowIndex(splits.val, self.block_size, "val")
            starts = val_index.evenly_spaced(self.val_batches * self.eval_batch_size)
            self._val = TensorDataset(*gather_windows(tokens, starts, self.block_size))
        self._tokens, self._tokenizer = tokens, tokenizer

    @property
    def tokenizer(self) -> Tokenizer:
        self.setup()
        assert self._tokenizer is not None
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return ResumableDataLoader(self._train, batch_size=None)  # a resumed run continues the stream

    def val_dataloader(self) -> DataLoader | list:
        self.setup()
        if self._val is None:
            return []
        return DataLoader(self._val, batch_size=self.eval_batch_size, shuffle=False)
