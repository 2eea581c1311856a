"""Hugging Face corpora: load_hf_text on local JSON-lines / parquet files offline, and its documents as token shards.

The loading tests need the ``datasets`` package (a dev dependency) and fail, not skip, without it; the message a
user gets without it is tested separately by hiding the package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from common.data.hf import _texts, load_hf_text
from common.data.prepare import Encoder, prepare_tokens
from common.data.tokenizers import ByteTokenizer
from common.data.tokens import TokenFileDataModule
from common.errors import DataError

DOCS = [f"document {i}: {'lorem ipsum ' * (i % 4)}naïve ✓ end" for i in range(40)]


@pytest.fixture
def offline_hf(monkeypatch, tmp_path) -> Path:
    """No network and no writes outside tmp_path: offline flags (read at import and at call time) and a cache dir."""
    import datasets
    import huggingface_hub.constants

    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "hf_cache"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "datasets")  # read at import, like the flags
    return cache


@pytest.fixture
def jsonl(tmp_path) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(DOCS)), encoding="utf-8")
    return path


def test_missing_datasets_package_is_a_clear_data_error(monkeypatch, jsonl):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(DataError, match="pip install datasets"):
        load_hf_text(jsonl)


@pytest.mark.parametrize("streaming", [False, True])
def test_load_local_jsonl(offline_hf, jsonl, streaming):
    texts = load_hf_text(jsonl, "train", streaming=streaming, cache_dir=offline_hf)
    assert list(texts) == DOCS
    assert list(load_hf_text(jsonl, max_docs=3, streaming=streaming, cache_dir=offline_hf)) == DOCS[:3]
    assert list(load_hf_text(jsonl, max_docs=0, streaming=streaming, cache_dir=offline_hf)) == []


def test_load_local_parquet_and_other_field(offline_hf, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"content": DOCS[::-1], "n": list(range(len(DOCS)))}), path)
    assert list(load_hf_text(path, text_field="content", cache_dir=offline_hf)) == DOCS[::-1]
    with pytest.raises(DataError, match="no field 'text'; fields: content, n"):
        load_hf_text(path, cache_dir=offline_hf)


def test_missing_field_is_reported_when_the_columns_are_known_only_after_reading(offline_hf, jsonl):
    import datasets

    with pytest.raises(DataError, match="no field 'body'; fields: id, text"):
        load_hf_text(jsonl, text_field="body", streaming=True, cache_dir=offline_hf)  # json infers its columns
    unknown = datasets.IterableDataset.from_generator(lambda: iter([{"body": "a"}]))
    assert unknown.column_names is None
    with pytest.raises(DataError, match="no field 'text'; fields: body"):
        list(_texts(unknown, "text", None, "generated"))


def test_load_errors_are_data_errors(offline_hf, tmp_path, jsonl):
    with pytest.raises(DataError, match="not found"):
        load_hf_text(tmp_path / "missing.jsonl")
    (tmp_path / "docs.xml").write_text("<doc/>")
    with pytest.raises(DataError, match="suffix '.xml'"):
        load_hf_text(tmp_path / "docs.xml")
    with pytest.raises(DataError, match="split 'validation'"):
        load_hf_text(jsonl, "validation", cache_dir=offline_hf)
    with pytest.raises(DataError, match="offline mode is on"):
        load_hf_text("optrepro-test/no-such-dataset", cache_dir=offline_hf)  # must not touch the network


# --- a local corpus to token shards and batches -----------------------------------------------------------


def test_local_corpus_to_token_datamodule(offline_hf, jsonl, tmp_path):
    """load_hf_text's documents through reproduce prepare's writer (tests/unit/test_data_prepare.py covers it) into
    the memory-mapped datamodule: val windows come only from the held-out documents."""
    encoder = Encoder("bytes", 256, lambda texts: [ByteTokenizer().encode(t).tolist() for t in texts], eot=0)
    prepare_tokens(load_hf_text(jsonl, cache_dir=offline_hf), encoder, tmp_path / "bin", source={"dataset": "t"},
                   val_fraction=0.1, progress=False)
    dm = TokenFileDataModule(tmp_path / "bin", block_size=8, batch_size=4, val_batches=2, eval_batch_size=2)
    assert dm.vocab_size == 256
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 8) and torch.equal(y[:, :-1], x[:, 1:])
    val_text = b"\0".join(d.encode("utf-8") for d in DOCS[9::10])
    for vx, _ in dm.val_dataloader():
        assert all(bytes(row) in val_text for row in vx.tolist())
