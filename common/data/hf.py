"""Hugging Face ``datasets`` corpora (OpenWebText, C4, FineWeb, local JSON-lines / parquet / text) -> token files.

The papers' real corpora are read through ``datasets`` when a machine is online (or has them cached), tokenized
once, and written as nanoGPT-style ``train.bin`` / ``val.bin`` that :class:`common.data.tokens.TokenFileDataModule`
memory-maps. ``datasets`` is optional and imported only when used. Examples::

    load_hf_text("Skylion007/openwebtext", "train")                    # nanoGPT's OpenWebText (Sophia, MARS)
    load_hf_text("allenai/c4", "train", config="en", streaming=True)   # C4 (SOAP, Stable-SPAM)
    load_hf_text("HuggingFaceFW/fineweb-edu", "train", config="sample-10BT", streaming=True)
    load_hf_text("docs.jsonl", "train")                                # local file, works offline
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from common.data.token_windows import _fraction, _held_out
from common.errors import DataError

__all__ = ["LOCAL_BUILDERS", "WrittenTokens", "load_hf_text", "tokenize_to_bin"]

# File suffix -> the ``datasets`` packaged builder that reads it.
LOCAL_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text", ".csv": "csv"}
MAX_UINT16_TOKEN = np.iinfo(np.uint16).max
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


class WrittenTokens(NamedTuple):
    """What :func:`tokenize_to_bin` wrote: paths (val None when val_fraction is 0) and token/document counts."""

    train: Path
    val: Path | None
    train_tokens: int
    val_tokens: int
    documents: int


Encoder = Callable[[str], Sequence[int]]


def tokenize_to_bin(texts: Iterable[str], tokenizer: Any, out_dir: str | Path, val_fraction: float = 0.0005,
                    eot: int | None = None) -> WrittenTokens:
    """Tokenize documents into nanoGPT-style ``out_dir/train.bin`` and ``val.bin`` (flat uint16 token ids).

    ``tokenizer`` has ``encode(str) -> ids`` (our Byte/CharTokenizer, a ``transformers`` tokenizer, which adds its
    own special tokens) or is that callable (for tiktoken pass ``enc.encode_ordinary`` and ``eot=enc.eot_token``,
    as nanoGPT's prepare.py does); ``eot`` is appended after every document. Whole documents go to val: document
    ``i`` when ``floor((i+1)·f) > floor(i·f)``, the deterministic rule of :func:`common.data.token_windows.split_tokens`
    (nanoGPT samples 0.05% at random). With ``val_fraction=0`` only train.bin is written (a stale val.bin is
    removed). Files are written under temporary names and renamed at the end, so an error (e.g. an id >= 65536,
    which uint16 cannot hold) leaves no partial file behind. Memory stays at one batch of documents.
    """
    f = _fraction("val_fraction", val_fraction)
    encode: Encoder = tokenizer.encode if hasattr(tokenizer, "encode") else tokenizer
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    names = ("train", "val") if f else ("train",)
    tmp = {name: out / f".{name}.bin.tmp" for name in names}
    try:
        counts, n_docs = _write_documents(texts, encode, eot, f, tmp)
        empty = [name for name in names if counts[name] == 0]
        if empty:
            raise DataError(f"tokenize_to_bin got no {' or '.join(empty)} tokens from {n_docs} documents "
                            f"(val_fraction={val_fraction} sends document i to val when floor((i+1)f) > floor(i f))")
        for name in names:
            tmp[name].replace(out / f"{name}.bin")
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)  # nothing left after a successful rename
    if not f:
        (out / "val.bin").unlink(missing_ok=True)
    return WrittenTokens(out / "train.bin", out / "val.bin" if f else None, counts["train"], counts.get("val", 0),
                         n_docs)


def _write_documents(texts: Iterable[str], encode: Encoder, eot: int | None, f: Fraction,
                     paths: dict[str, Path]) -> tuple[dict[str, int], int]:
    """Stream each document's uint16 ids to its split's file; (tokens per split, documents)."""
    counts = dict.fromkeys(paths, 0)
    pending: dict[str, list[np.ndarray]] = {name: [] for name in paths}
    n_docs = 0
    with ExitStack() as stack:
        files = {name: stack.enter_context(path.open("wb")) for name, path in paths.items()}
        for i, text in enumerate(texts):
            ids = np.asarray(_as_ids(encode(text)), dtype=np.int64)
            if eot is not None:
                ids = np.append(ids, eot)
            if ids.size and (ids.min() < 0 or ids.max() > MAX_UINT16_TOKEN):
                bad = int(ids.max()) if ids.max() > MAX_UINT16_TOKEN else int(ids.min())
                raise DataError(f"document {i} has token id {bad}; uint16 token files hold 0..{MAX_UINT16_TOKEN} "
                                "(a vocabulary over 65536 needs another format)")
            name = "val" if f and _held_out(i, f) else "train"
            pending[name].append(ids.astype(np.uint16))
            counts[name] += int(ids.size)
            n_docs += 1
            if n_docs % _BATCH_DOCS == 0:
                _flush(pending, files)
        _flush(pending, files)
    return counts, n_docs


def _as_ids(ids: Any) -> Any:
    """Token ids as something numpy reads: a torch tensor (our tokenizers), a ``tokenizers.Encoding``, a list."""
    if hasattr(ids, "ids"):
        return ids.ids
    return ids.numpy() if hasattr(ids, "numpy") else ids


def _flush(pending: dict[str, list[np.ndarray]], files: dict[str, Any]) -> None:
    for name, chunks in pending.items():
        if chunks:
            files[name].write(np.concatenate(chunks).tobytes())
            chunks.clear()
