"""Text corpora: tokenizers, deterministic splits, window batches, and the python-stdlib corpus."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common.data import stdlib_corpus
from common.data.text import (
    ByteTokenizer,
    CharTokenizer,
    TextDataModule,
    load_corpus,
    python_stdlib_files,
    python_stdlib_text,
    split_ranges,
    split_tokens,
)
from common.data.token_windows import RandomWindowBatches, WindowIndex
from common.errors import ConfigError, DataError

SAMPLE = "déjà vu ✓ naïve — 日本語 😀\n"


@pytest.fixture
def text_file(tmp_path) -> Path:
    """~40 KB of varied UTF-8 text, deterministic."""
    lines = [f"line {i}: {SAMPLE if i % 7 == 0 else 'plain ascii text ' * (i % 5)}" for i in range(1200)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --- tokenizers and corpus loading -----------------------------------------------------------------------


def test_byte_tokenizer_round_trip():
    tok = ByteTokenizer()
    ids = tok.encode(SAMPLE)
    assert ids.dtype == torch.int64 and len(ids) == len(SAMPLE.encode("utf-8"))
    assert tok.decode(ids) == SAMPLE and tok.decode(ids.tolist()) == SAMPLE
    assert tok.vocab_size == 256
    with pytest.raises(ValueError):
        tok.decode([256])


def test_char_tokenizer_round_trip_and_unknown():
    tok = CharTokenizer.from_text(SAMPLE)
    assert tok.vocab_size == len(set(SAMPLE)) + 1
    ids = tok.encode(SAMPLE)
    assert len(ids) == len(SAMPLE) and int(ids.min()) >= 1
    assert tok.decode(ids) == SAMPLE
    assert tok.encode("\x00Zé").tolist() == [0, 0, tok.chars.index("é") + 1]
    assert tok.decode([0]) == "\ufffd"
    assert CharTokenizer("ba").encode("ab").tolist() == [1, 2]  # ids follow sorted order, not input order


def test_load_file_corpus_byte_and_char(text_file):
    text = text_file.read_text(encoding="utf-8")
    tokens, tok = load_corpus(f"file:{text_file}", "byte")
    assert tokens.dim() == 1 and tokens.dtype in (torch.int32, torch.int64)
    assert len(tokens) == len(text.encode("utf-8")) and tok.decode(tokens) == text
    tokens, tok = load_corpus(f"file:{text_file}", "char")
    assert len(tokens) == len(text) and tok.decode(tokens) == text
    assert tok.vocab_size == len(set(text)) + 1


def test_file_corpus_max_bytes_never_splits_a_character(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("aé" * 10, encoding="utf-8")  # 'é' is 2 bytes: a cut at 5 bytes falls inside one
    tokens, tok = load_corpus(f"file:{path}", "byte", max_bytes=5)
    assert tok.decode(tokens) == "aéa"


def test_corpus_errors(tmp_path):
    with pytest.raises(DataError, match="python-stdlib.*file:PATH"):
        load_corpus("shakespeare")
    with pytest.raises(DataError, match="not found") as err:
        load_corpus(f"file:{tmp_path / 'missing.txt'}")
    assert "missing.txt" in str(err.value)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_corpus(f"file:{tmp_path / 'latin1.txt'}")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_corpus(f"file:{tmp_path / 'empty.txt'}")
    with pytest.raises(ConfigError, match="level"):
        load_corpus("python-stdlib", "word")  # type: ignore[arg-type]


# --- splitting -------------------------------------------------------------------------------------------


def test_split_interleaves_blocks_deterministically():
    n = 100 * 4096 + 123
    tokens = torch.arange(n)
    splits = split_tokens(tokens, val_fraction=0.05)
    again = split_tokens(tokens, val_fraction=0.05)
    pairs = [(a, b) for s, t in zip(splits, again, strict=True) for a, b in zip(s, t, strict=True)]
    assert pairs and all(torch.equal(a, b) for a, b in pairs)
    assert [int(v[0]) for v in splits.val] == [19 * 4096, 39 * 4096, 59 * 4096, 79 * 4096, 99 * 4096]
    assert all(len(v) == 4096 for v in splits.val)
    assert splits.test == []
    assert len(splits.train) == 6  # runs between val blocks, merged, plus the tail after block 99
    everything = torch.cat([*splits.train, *splits.val]).sort().values
    assert torch.equal(everything, tokens)


def test_split_with_test_fraction():
    ranges = split_ranges(200 * 4096, val_fraction=0.05, test_fraction=0.05)
    val_blocks = [a // 4096 for a, _ in ranges.val]
    test_blocks = [a // 4096 for a, _ in ranges.test]
    assert len(val_blocks) == len(test_blocks) == 10
    assert not set(val_blocks) & set(test_blocks)
    assert val_blocks[0] < 20 and test_blocks[0] < 20 and max(val_blocks + test_blocks) > 180


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), block=st.integers(1, 300), val=st.sampled_from([0.0, 0.05, 0.1, 0.3]),
       test=st.sampled_from([0.0, 0.02, 0.25]))
def test_split_ranges_partition_the_stream(n, block, val, test):
    try:
        ranges = split_ranges(n, val, test, block)
    except DataError as err:  # allowed only for a split too small to get a block
        fraction = test if "test split" in str(err) else val
        assert -(-n // block) * fraction < 2
        return
    pieces = sorted(r for split in ranges for r in split)
    assert pieces[0][0] == 0 and pieces[-1][1] == n
    assert all(a < b for a, b in pieces)
    assert all(p[1] == q[0] for p, q in zip(pieces, pieces[1:], strict=False))
    held = sum(b - a for a, b in ranges.val + ranges.test)
    assert held <= (val + test) * n + 2 * block


def test_split_too_small_and_bad_fractions():
    with pytest.raises(DataError, match="too small for a val split"):
        split_ranges(10 * 4096, val_fraction=0.05)
    with pytest.raises(ConfigError):
        split_ranges(10_000, val_fraction=1.5)
    with pytest.raises(ConfigError):
        split_ranges(10_000, val_fraction=0.6, test_fraction=0.4)


# --- windows and the DataModule --------------------------------------------------------------------------


def test_windows_stay_inside_one_train_run():
    n, block_size = 50 * 256 + 17, 40
    tokens = torch.arange(n, dtype=torch.int32)
    ranges = split_ranges(n, 0.1, 0.0, block_tokens=256)
    stream = RandomWindowBatches(tokens, WindowIndex(ranges.train, block_size, "train"), 64, seed=3)
    for i in range(5):
        x, y = stream.batch(i)
        assert x.dtype == torch.int64 and x.shape == y.shape == (64, block_size)
        assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
        for s, e in zip(x[:, 0].tolist(), y[:, -1].tolist(), strict=True):
            assert any(a <= s and e < b for a, b in ranges.train)


def test_window_index_rejects_short_runs():
    with pytest.raises(DataError, match="block_size=64"):
        WindowIndex([(0, 50), (100, 164)], 64, "val")


def make_dm(text_file: Path, **kw) -> TextDataModule:
    args = {"corpus": f"file:{text_file}", "block_size": 32, "batch_size": 8, "val_batches": 3,
            "eval_batch_size": 4, "split_block_tokens": 512}
    return TextDataModule(**{**args, **kw})


def take(loader, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    it = iter(loader)
    return [next(it) for _ in range(k)]


@pytest.mark.parametrize("level", ["byte", "char"])
def test_train_batches_depend_on_seed_only(text_file, level):
    a = take(make_dm(text_file, level=level, seed=0).train_dataloader(), 4)
    b = take(make_dm(text_file, level=level, seed=0).train_dataloader(), 4)
    c = take(make_dm(text_file, level=level, seed=1).train_dataloader(), 4)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[0][0], c[0][0])
    assert not torch.equal(a[0][0], a[1][0])
    assert a[0][0].shape == (8, 32) and torch.equal(a[0][1][:, :-1], a[0][0][:, 1:])


def test_val_batches_fixed_across_seeds(text_file):
    dm0, dm1 = make_dm(text_file, seed=0), make_dm(text_file, seed=1)
    v0, v1 = list(dm0.val_dataloader()), list(dm1.val_dataloader())
    assert len(v0) == 3 and all(x.shape == (4, 32) for x, _ in v0)
    assert all(torch.equal(x0, x1) and torch.equal(y0, y1) for (x0, y0), (x1, y1) in zip(v0, v1, strict=True))
    assert torch.equal(v0[0][0], list(dm0.val_dataloader())[0][0])
    starts = torch.cat([x[:, 0] for x, _ in v0])
    assert len(set(starts.tolist())) > 1  # evenly spaced, not one window repeated


def test_val_windows_come_from_val_split(text_file):
    dm = make_dm(text_file, level="byte")
    dm.setup()
    tokens = dm._tokens
    ranges = split_ranges(len(tokens), dm.val_fraction, 0.0, 512)
    val_text = {tuple(tokens[a:b].tolist()) for a, b in ranges.val}
    for x, y in dm.val_dataloader():
        for row_x, row_y in zip(x.tolist(), y.tolist(), strict=True):
            window = row_x + row_y[-1:]
            assert any(_contains(run, window) for run in val_text)


def _contains(run: tuple[int, ...], window: list[int]) -> bool:
    n = len(window)
    return any(list(run[i:i + n]) == window for i in range(len(run) - n + 1))


def test_datamodule_attributes_are_lazy(text_file):
    dm = make_dm(text_file, level="char")
    assert dm.tokens_per_step == 8 * 32
    assert dm._tokens is None  # nothing loaded at construction
    text = text_file.read_text(encoding="utf-8")
    assert dm.vocab_size == len(set(text)) + 1
    assert isinstance(dm.tokenizer, CharTokenizer)
    assert make_dm(text_file, val_fraction=0.0).val_dataloader() == []


def test_datamodule_errors(text_file):
    with pytest.raises(DataError, match="block_size=5000"):
        make_dm(text_file, block_size=5000).setup()
    with pytest.raises(ConfigError, match="level"):
        make_dm(text_file, level="word")
    with pytest.raises(DataError, match="unknown text corpus"):
        TextDataModule(corpus="nope").setup()


# --- python-stdlib ---------------------------------------------------------------------------------------


def test_python_stdlib_corpus_small_and_deterministic():
    python_stdlib_text.cache_clear()
    first = python_stdlib_text(max_bytes=200_000)
    python_stdlib_text.cache_clear()
    second = python_stdlib_text(max_bytes=200_000)
    assert first is not second and first == second
    assert 190_000 < len(first.encode("utf-8")) <= 200_000
    tokens, tok = load_corpus("python-stdlib", "byte", max_bytes=200_000)
    assert len(tokens) == len(first.encode("utf-8"))
    assert tok.decode(tokens[:1000]) == first.encode()[:1000].decode()


def test_python_stdlib_corpus_order():
    from pydoc_data.topics import topics

    topic_text = "\n".join(topics[k] for k in sorted(topics))
    first_file = python_stdlib_files()[0]
    source_path = Path(sysconfig.get_paths()["stdlib"]) / first_file
    source = source_path.read_text(encoding="utf-8", errors="replace")
    text = python_stdlib_text(max_bytes=len(topic_text.encode("utf-8")) + 1 + len(source.encode("utf-8")))
    assert text.startswith(topic_text + "\n")
    assert text[len(topic_text) + 1:] == source


def test_python_stdlib_files_exclude_third_party_and_tests():
    files = python_stdlib_files()
    assert files == sorted(files) and "os.py" in files and "json/__init__.py" in files
    assert not [f for f in files if set(f.split("/")[:-1]) & stdlib_corpus.EXCLUDED_DIRS]
    assert 300 < len(files) < 3000


def test_python_stdlib_files_exclusion_rules(tmp_path):
    for rel in ["zz.py", "a/b.py", "a/notes.txt", "site-packages/pkg/x.py", "dist-packages/y.py", "test/t.py",
                "unittest/test/t.py", "idlelib/idle_test/t.py", "idlelib/keep.py", "lib2to3/tests/t.py",
                "testing/keep.py"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    assert python_stdlib_files(tmp_path) == ["a/b.py", "idlelib/keep.py", "testing/keep.py", "zz.py"]
