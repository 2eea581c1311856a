"""Token shards (common.data.prepare): the offline GPT-2 tokenizer, local sources, shard layout and manifest, exact
resume after a crash, and TokenFileDataModule reading the shards memory-mapped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from common.data import prepare as prep
from common.data.lm import lm_datamodule
from common.data.tokens import TokenFileDataModule
from common.errors import ConfigError, DataError

DOCS = [f"doc {i}: " + "lorem ipsum " * (i % 5) + "naïve ✓" for i in range(60)]
SOURCE = {"dataset": "test"}


def byte_encoder(vocab: int = 256) -> prep.Encoder:
    return prep.Encoder("bytes", vocab, lambda texts: [list(t.encode("utf-8")) for t in texts], eot=0)


def expected(docs: list[str]) -> list[int]:
    return [t for d in docs for t in [*d.encode("utf-8"), 0]]


def read_split(out: Path, manifest: dict, split: str) -> list[int]:
    dtype = np.dtype(manifest["dtype"])
    return [t for s in manifest["shards"][split] for t in np.fromfile(out / s["file"], dtype=dtype).tolist()]


def test_gpt2_bpe_works_offline():
    enc = prep.gpt2_encoder()
    assert enc.encode_batch(["Hello world", " naïve"])[0] == [15496, 995]
    assert (enc.vocab_size, enc.eot) == (50257, 50256)


def test_shards_manifest_and_val_rule(tmp_path):
    m = prep.prepare_tokens(DOCS, byte_encoder(), tmp_path, source=SOURCE, shard_tokens=500, val_fraction=0.1,
                            progress=False)
    val_docs = DOCS[9::10]
    train_docs = [d for i, d in enumerate(DOCS) if i % 10 != 9]
    assert read_split(tmp_path, m, "train") == expected(train_docs)
    assert read_split(tmp_path, m, "val") == expected(val_docs)
    assert [s["tokens"] for s in m["shards"]["train"]][:-1] == [500] * (len(m["shards"]["train"]) - 1)
    assert m["tokens"] == {"train": len(expected(train_docs)), "val": len(expected(val_docs))}
    assert m["dtype"] == "uint16" and m["documents"] == 60 and m["source"] == SOURCE
    assert m["tokenizer"]["name"] == "bytes" and json.loads((tmp_path / "manifest.json").read_text()) == m
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no state or partial left
    assert prep.prepare_tokens(DOCS, byte_encoder(), tmp_path, source=SOURCE, shard_tokens=500, val_fraction=0.1,
                               progress=False) == m  # a finished folder is reused, not rewritten


def test_max_tokens_is_exact_and_large_vocabularies_get_uint32(tmp_path):
    m = prep.prepare_tokens(DOCS, byte_encoder(70_000), tmp_path, source=SOURCE, max_tokens=1234, val_fraction=0.0,
                            progress=False)
    assert m["dtype"] == "uint32" and m["tokens"] == {"train": 1234}
    assert read_split(tmp_path, m, "train") == expected(DOCS)[:1234]


class Crash(RuntimeError):
    pass


def crashing(docs: list[str], at: int):
    for i, d in enumerate(docs):
        if i == at:
            raise Crash(f"killed at document {at}")
        yield d


@pytest.mark.parametrize("crash_at", [37, 300])
def test_a_killed_run_resumes_to_identical_shards(tmp_path, monkeypatch, crash_at):
    """Checkpoints every 1000 tokens (after whole batches of 4 documents), shards of 150: the crash lands after
    shards were finished past the last checkpoint, which the resume must reopen and cut back."""
    monkeypatch.setattr(prep, "_BATCH_DOCS", 4)
    docs = DOCS * 6
    kw = dict(source=SOURCE, shard_tokens=150, val_fraction=0.05, checkpoint_tokens=1000, progress=False)
    clean = prep.prepare_tokens(docs, byte_encoder(), tmp_path / "clean", **kw)
    with pytest.raises(Crash):
        prep.prepare_tokens(crashing(docs, crash_at), byte_encoder(), tmp_path / "run", **kw)
    state = json.loads((tmp_path / "run" / prep.STATE).read_text())
    assert 0 < state["documents"] < crash_at
    after_checkpoint = tmp_path / "run" / f"train_{len(state['splits']['train']['finished']):06d}.bin"
    assert after_checkpoint.exists()  # finished after the checkpoint: the resume must reopen and cut it back
    with pytest.raises(DataError, match="unfinished prepare with other settings"):
        prep.prepare_tokens(docs, byte_encoder(), tmp_path / "run", **{**kw, "shard_tokens": 151})
    resumed = prep.prepare_tokens(docs, byte_encoder(), tmp_path / "run", **kw)
    assert resumed == clean and resumed["sha256"] == prep.set_hash(clean["shards"])
    for shard in clean["shards"]["train"] + clean["shards"]["val"]:
        assert (tmp_path / "run" / shard["file"]).read_bytes() == (tmp_path / "clean" / shard["file"]).read_bytes()
    names = [sorted(p.name for p in (tmp_path / d).iterdir()) for d in ("run", "clean")]
    assert names[0] == names[1]


def test_bad_settings_and_folders(tmp_path):
    few = prep.prepare_tokens(DOCS[:5], byte_encoder(), tmp_path / "a", source=SOURCE, val_fraction=0.1,
                              progress=False)
    assert few["shards"]["val"] == [] and "none of the 5 documents is held out" in few["val_note"]
    assert TokenFileDataModule(tmp_path / "a").files()[1] == []  # the datamodule splits the train shards instead
    with pytest.raises(DataError, match="no train tokens from 0 documents"):
        prep.prepare_tokens([], byte_encoder(), tmp_path / "a0", source=SOURCE, progress=False)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty and holds no prepare state"):
        prep.prepare_tokens(DOCS, byte_encoder(), tmp_path / "b", source=SOURCE, progress=False)
    with pytest.raises(ConfigError, match="--max-tokens must be >= 1"):
        prep.prepare_tokens(DOCS, byte_encoder(), tmp_path / "c", source=SOURCE, max_tokens=0)
    with pytest.raises(DataError, match="document 0 has token id 300 outside the tokenizer's 0..255"):
        prep.prepare_tokens(DOCS, prep.Encoder("bad", 256, lambda ts: [[300] for _ in ts]), tmp_path / "d",
                            source=SOURCE, progress=False)
    prep.prepare_tokens(DOCS, byte_encoder(), tmp_path / "e", source=SOURCE, val_fraction=0.1, progress=False)
    with pytest.raises(DataError, match="already holds token shards prepared with other settings"):
        prep.prepare_tokens(DOCS, byte_encoder(), tmp_path / "e", source={"dataset": "other"}, val_fraction=0.1)


def test_local_sources_jsonl_parquet_and_text_folder(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "corpus"
    (folder / "b").mkdir(parents=True)
    (folder / "a.jsonl").write_text("".join(json.dumps({"text": d, "n": i}) + "\n" for i, d in enumerate(DOCS[:3])))
    pq.write_table(pa.table({"text": DOCS[3:6]}), folder / "b" / "c.parquet")
    (folder / "b" / "d.txt").write_text(DOCS[6], encoding="utf-8")
    (folder / "ignored.md").write_text("not a corpus file")
    assert list(prep.local_documents(folder)) == DOCS[:7]  # sorted paths: a.jsonl, b/c.parquet, b/d.txt
    with pytest.raises(DataError, match="a.jsonl:1 has no field 'body' \\(has: text, n\\)"):
        list(prep.local_documents(folder, "body"))
    with pytest.raises(DataError, match="local corpus not found"):
        list(prep.local_documents(tmp_path / "missing"))
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match="bad.jsonl:1 is not a JSON line"):
        list(prep.local_documents(tmp_path / "bad.jsonl"))
    with pytest.raises(ConfigError, match="unknown dataset 'owt'; valid: openwebtext, fineweb-edu, c4"):
        prep.corpus_documents("owt")
    texts, source = prep.corpus_documents("c4", folder)
    assert list(texts)[:1] == DOCS[:1] and source["dataset"] == "c4" and source["path"] == str(folder.resolve())


def test_datamodule_reads_shards_memory_mapped_without_crossing_them(tmp_path):
    """Each token is its own position (mod 200) so windows are traceable; shards of 1000 tokens."""
    stream = [str(i % 200) for i in range(6000)]
    enc = prep.Encoder("ids", 200, lambda texts: [[int(t)] for t in texts])
    m = prep.prepare_tokens(stream, enc, tmp_path, source=SOURCE, shard_tokens=1000, val_fraction=0.0,
                            progress=False)
    assert len(m["shards"]["train"]) == 6
    dm = TokenFileDataModule(tmp_path, block_size=50, batch_size=64, val_fraction=0.2, split_block_tokens=500,
                             val_batches=2, eval_batch_size=4)
    assert dm.vocab_size == 256  # the manifest's 200, padded to a multiple of 64
    dm.setup()
    assert isinstance(dm._train_tokens.files[0].array, np.memmap)
    for x, y in [next(iter(dm.train_dataloader())), *dm.val_dataloader()]:
        full = torch.cat([x, y[:, -1:]], dim=1)
        assert ((full[:, 1:] - full[:, :-1]) % 200 == 1).all()  # contiguous: no window spans a shard boundary
    assert read_split(tmp_path, m, "train")[995:1005] == [195, 196, 197, 198, 199, 0, 1, 2, 3, 4]


def test_any_lm_preset_points_at_a_prepared_folder(tmp_path):
    m = prep.prepare_tokens(DOCS * 4, prep.gpt2_encoder(), tmp_path, source=SOURCE, shard_tokens=2000,
                            val_fraction=0.1, progress=False)
    dm = lm_datamodule({"corpus": f"tokens:{tmp_path}"}, block_size=16, batch_size=4, seed=0, val_batches=1)
    assert isinstance(dm, TokenFileDataModule) and dm.vocab_size == 50304 and m["tokenizer"]["vocab_size"] == 50257
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 16) and int(x.max()) < 50257
    (tmp_path / m["shards"]["train"][0]["file"]).write_bytes(b"\0\0")
    with pytest.raises(DataError, match="is 2 bytes, the manifest says"):
        lm_datamodule({"corpus": f"tokens:{tmp_path}"}, block_size=16, batch_size=4, seed=0, val_batches=1).setup()


def test_named_corpora_stream_from_the_hub(monkeypatch):
    """Without --from, a named corpus streams its Hugging Face dataset (load_hf_text is exercised offline in
    test_data_hf.py); here only the arguments it gets are checked."""
    import common.data.hf as hf

    calls = []

    def fake(name, split, text_field, streaming, config):
        calls.append((name, split, text_field, streaming, config))
        return iter(["a", "b"])

    monkeypatch.setattr(hf, "load_hf_text", fake)
    for name, (hub, config) in {"openwebtext": ("Skylion007/openwebtext", None), "c4": ("allenai/c4", "en"),
                                "fineweb-edu": ("HuggingFaceFW/fineweb-edu", "sample-10BT")}.items():
        texts, source = prep.corpus_documents(name)
        assert list(texts) == ["a", "b"] and source["hub_id"] == hub and source["config"] == config
        assert calls[-1] == (hub, "train", "text", True, config)


def test_t5_tokenizer_loads_through_transformers_or_says_what_it_needs(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "transformers", None)  # not installed
    with pytest.raises(DataError, match="needs transformers and sentencepiece.*--tokenizer gpt2 works offline"):
        prep.get_encoder("t5")

    class FakeT5:
        def __len__(self) -> int:
            return 32100

        def __call__(self, texts, add_special_tokens):
            assert add_special_tokens  # T5 ends each document with </s> (id 1) itself
            return {"input_ids": [[len(t), 1] for t in texts]}

    loaded = []

    def from_pretrained(name):
        loaded.append(name)
        if name != "google-t5/t5-base":
            raise OSError("not cached")
        return FakeT5()

    fake = types.SimpleNamespace(AutoTokenizer=types.SimpleNamespace(from_pretrained=from_pretrained))
    monkeypatch.setitem(sys.modules, "transformers", fake)
    enc = prep.get_encoder("t5")
    assert (enc.name, enc.vocab_size, enc.eot) == ("t5", 32100, None) and loaded == ["google-t5/t5-base"]
    assert enc.encode_batch(["abc"]) == [[3, 1]]
    monkeypatch.setattr(prep, "T5_HUB_ID", "offline/t5")
    with pytest.raises(DataError, match=r"cannot load T5's tokenizer offline/t5 \(not cached\)"):
        prep.get_encoder("t5")
    with pytest.raises(ConfigError, match="unknown tokenizer 'bert'; valid: gpt2, t5"):
        prep.get_encoder("bert")
