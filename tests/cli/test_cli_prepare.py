"""``reproduce prepare``: local corpora to token shards offline, the C4 tokenizer note, and one error line for bad
input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reproduce.cli import main
from tests.one_error import one_error_line

DOCS = [f"Hello world {i}. " * (1 + i % 3) for i in range(40)]


@pytest.fixture
def jsonl(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS))
    return path




def test_prepare_a_local_jsonl_with_gpt2(capsys, tmp_path, jsonl):
    out = tmp_path / "tok"
    assert main(["prepare", str(jsonl), "--out", str(out), "--max-tokens", "200", "--val-fraction", "0.1",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"claims.<claim>.data.corpus=tokens:{out}" in printed
    m = json.loads((out / "manifest.json").read_text())
    assert m["tokenizer"]["name"] == "gpt2" and m["source"] == {"dataset": "local", "path": str(jsonl.resolve()),
                                                                "text_field": "text"}
    assert sum(m["tokens"].values()) == 200 and m["dtype"] == "uint16"
    first = np.fromfile(out / m["shards"]["train"][0]["file"], dtype=np.uint16)[:3].tolist()
    assert first == [15496, 995, 657]  # "Hello world 0"


def test_c4_from_local_files_says_which_tokenizer(capsys, tmp_path, jsonl):
    out = tmp_path / "c4"
    assert main(["prepare", "c4", "--from", str(jsonl), "--out", str(out), "--val-fraction", "0.1", "--quiet"]) == 0
    assert "not the papers' t5" in capsys.readouterr().err
    m = json.loads((out / "manifest.json").read_text())
    assert m["source"]["dataset"] == "c4" and m["tokenizer"]["name"] == "gpt2"
    assert "the papers tokenized c4 with t5" in m["tokenizer"]["note"]


def test_bad_input_is_one_error_line(capsys, tmp_path, jsonl):
    def error(argv: list[str]) -> str:  # argparse's and ours alike: exit 2, one line on stderr
        return one_error_line(capsys, ["prepare", *argv], code=2, alone=True)

    assert "unknown dataset 'owt'; valid: openwebtext, fineweb-edu, c4" in error(["owt", "--out", str(tmp_path / "o")])
    assert "local corpus not found" in error([str(tmp_path / "none/"), "--out", str(tmp_path / "o")])
    (tmp_path / "empty").mkdir()
    assert "no .jsonl/.json/.parquet/.txt files under" in error(
        [str(tmp_path / "empty"), "--out", str(tmp_path / "o2")])
    assert "--from gives the local copy of a named dataset" in error(
        [str(jsonl), "--from", str(jsonl), "--out", str(tmp_path / "o")])
    assert "the following arguments are required: --out" in error([str(jsonl)])
    assert "invalid choice: 'bert'" in error([str(jsonl), "--out", "x", "--tokenizer", "bert"])


def test_ctrl_c_then_the_same_command_resumes_to_the_same_shards(capsys, tmp_path, jsonl, monkeypatch):
    from common.data import prepare

    monkeypatch.setattr(prepare, "_BATCH_DOCS", 4)
    argv = [str(jsonl), "--val-fraction", "0.1", "--shard-tokens", "50", "--checkpoint-tokens", "60", "--quiet"]
    assert main(["prepare", *argv, "--out", str(tmp_path / "clean")]) == 0
    real = prepare.gpt2_encoder

    def interrupted() -> prepare.Encoder:
        enc = real()
        batches = iter(range(100))
        encode = enc.encode_batch

        def encode_batch(texts):
            if next(batches) == 6:
                raise KeyboardInterrupt
            return encode(texts)

        enc.encode_batch = encode_batch
        return enc

    monkeypatch.setattr(prepare, "TOKENIZERS", {**prepare.TOKENIZERS, "gpt2": interrupted})
    code = main(["prepare", *argv, "--out", str(tmp_path / "run")])
    assert code == 130 and "rerun the same command to resume" in capsys.readouterr().err
    assert (tmp_path / "run" / ".prepare-state.json").is_file()
    monkeypatch.setattr(prepare, "TOKENIZERS", {**prepare.TOKENIZERS, "gpt2": real})
    assert main(["prepare", *argv, "--out", str(tmp_path / "run")]) == 0
    clean, run = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("clean", "run"))
    assert run["sha256"] == clean["sha256"] and run["shards"] == clean["shards"]
