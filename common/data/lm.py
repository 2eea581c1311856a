"""One place that turns a preset's ``data`` section into a language-model datamodule.

``corpus`` is ``python-stdlib`` (the embedded default), ``file:PATH`` (a local UTF-8 text file) or
``tokens:PATH``: a folder of token shards written by ``reproduce prepare`` (OpenWebText, FineWeb-Edu, C4 or local
text; the manifest gives dtype and vocabulary) or nanoGPT-style uint16 ``train.bin``/``val.bin``. Any LM preset
switches to one with ``claims.<claim>.data.corpus=tokens:DIR``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl

from common.data.text import TextDataModule
from common.data.tokens import TokenFileDataModule


def lm_datamodule(data: Mapping[str, Any], *, block_size: int, batch_size: int, seed: int,
                  val_batches: int) -> pl.LightningDataModule:
    """The datamodule a preset's ``data`` section names (module docstring); ``vocab_size`` overrides a manifest's."""
    corpus = str(data.get("corpus", "python-stdlib"))
    if corpus.startswith("tokens:"):
        return TokenFileDataModule(corpus.removeprefix("tokens:"), block_size=block_size, batch_size=batch_size,
                                   seed=seed, val_batches=val_batches,
                                   vocab_size=None if data.get("vocab_size") is None else int(data["vocab_size"]),
                                   max_tokens=data.get("max_tokens"))
    return TextDataModule(corpus=corpus, level=str(data.get("level", "byte")), block_size=block_size,
                          batch_size=batch_size, seed=seed, max_bytes=data.get("max_bytes"), val_batches=val_batches)
