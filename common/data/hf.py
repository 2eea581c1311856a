"""Hugging Face ``datasets`` corpora (OpenWebText, C4, FineWeb, local JSON-lines / parquet / text) as documents.

The papers' real corpora are read through ``datasets`` when a machine is online (or has them cached);
:mod:`common.data.prepare` (``reproduce prepare``) tokenizes them once into token shards that
:class:`common.data.tokens.TokenFileDataModule` memory-maps. ``datasets`` is optional and imported only when used.
Examples::

    load_hf_text("Skylion007/openwebtext", "train")                    # nanoGPT's OpenWebText (Sophia, MARS)
    load_hf_text("allenai/c4", "train", config="en", streaming=True)   # C4 (SOAP, Stable-SPAM)
    load_hf_text("HuggingFaceFW/fineweb-edu", "train", config="sample-10BT", streaming=True)
    load_hf_text("docs.jsonl", "train")                                # local file, works offline
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.errors import DataError

__all__ = ["LOCAL_BUILDERS", "load_hf_text"]

# File suffix -> the ``datasets`` packaged builder that reads it.
LOCAL_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text", ".csv": "csv"}
_BATCH_DOCS = 1000


def _import_datasets() -> Any:
    try:
        return importlib.import_module("datasets")
    except ImportError:
        raise DataError("Hugging Face corpora need the `datasets` package: pip install datasets") from None


def load_hf_text(name_or_path: str | Path, split: str = "train", text_field: str = "text",
                 max_docs: int | None = None, streaming: bool = False, config: str | None = None,
                 cache_dir: str | Path | None = None) -> Iterator[str]:
    """The ``text_field`` of each document of a Hub dataset or a local file, in the dataset's order.

    ``name_or_path``: a Hub id (``config`` is its subset, e.g. C4's ``"en"``), or a local ``.json``/``.jsonl``/
    ``.parquet``/``.txt``/``.csv`` file (split ``"train"``), or a local dataset directory. ``streaming`` reads
    without downloading the whole corpus first (C4, FineWeb). The dataset is opened here, so a missing package,
    file or split raises DataError at the call; the documents are then read lazily.
    """
    if max_docs is not None and max_docs < 0:
        raise DataError(f"max_docs must be >= 0, got {max_docs}")
    datasets = _import_datasets()
    path = Path(name_or_path).expanduser()
    kwargs: dict[str, Any] = {"split": split, "streaming": streaming}
    if cache_dir is not None:
        kwargs["cache_dir"] = str(cache_dir)
    if path.suffix.lower() in LOCAL_BUILDERS and not path.exists():
        raise DataError(f"local dataset file not found: {path}")
    if path.is_file():
        builder = LOCAL_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise DataError(f"cannot read {path} with datasets: suffix {path.suffix!r} is not one of "
                            f"{', '.join(sorted(LOCAL_BUILDERS))}")
        args: tuple[str, ...] = (builder,)
        kwargs["data_files"] = str(path)
    else:
        args = (str(path) if path.is_dir() else str(name_or_path),) + (() if config is None else (config,))
    try:
        dataset = datasets.load_dataset(*args, **kwargs)
    except Exception as exc:  # datasets raises many types (hub, network, file, split errors): report them all alike
        offline = " (offline mode is on: HF_DATASETS_OFFLINE/HF_HUB_OFFLINE)" if _offline() else ""
        raise DataError(f"cannot load Hugging Face dataset {str(name_or_path)!r} split {split!r}{offline}: "
                        f"{type(exc).__name__}: {exc}") from exc
    columns = dataset.column_names
    if columns is not None and text_field not in columns:
        raise DataError(f"dataset {str(name_or_path)!r} has no field {text_field!r}; fields: {', '.join(columns)}")
    return _texts(dataset, text_field, max_docs, str(name_or_path))


def _offline() -> bool:
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"))


def _texts(dataset: Any, text_field: str, max_docs: int | None, name: str) -> Iterator[str]:
    n = 0
    if max_docs == 0:
        return
    for batch in dataset.iter(batch_size=_BATCH_DOCS):
        if text_field not in batch:  # streaming datasets may not know their columns before reading
            raise DataError(f"dataset {name!r} has no field {text_field!r}; fields: {', '.join(batch)}")
        for text in batch[text_field]:
            yield text
            n += 1
            if n == max_docs:
                return
