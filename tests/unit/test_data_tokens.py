"""Local token files (nanoGPT's train.bin / val.bin): loading, errors, and TokenFileDataModule batches."""

from __future__ import annotations

import functools
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from common.data.text import TextDataModule
from common.data.token_windows import split_ranges
from common.data.tokens import TokenFile, TokenFileDataModule, load_token_file
from common.errors import ConfigError, DataError

N_TRAIN, N_VAL, VAL_BASE = 30_000, 5_000, 40_000


@pytest.fixture
def token_dir(tmp_path) -> Path:
    """train.bin holds its own positions (0..29999), val.bin holds 40000 + its positions: every window is traceable."""
    np.arange(N_TRAIN, dtype=np.uint16).tofile(tmp_path / "train.bin")
    (VAL_BASE + np.arange(N_VAL)).astype(np.uint16).tofile(tmp_path / "val.bin")
    return tmp_path


def make_dm(path: Path, **kw) -> TokenFileDataModule:
    args = {"block_size": 32, "batch_size": 8, "val_batches": 3, "eval_batch_size": 4}
    return TokenFileDataModule(path, **{**args, **kw})


def take(loader, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    it = iter(loader)
    return [next(it) for _ in range(k)]


# --- load_token_file and TokenFile -----------------------------------------------------------------------


def test_load_token_file_round_trip(tmp_path):
    ids = np.array([0, 1, 50256, 65535, 7], dtype=np.uint16)
    ids.tofile(tmp_path / "t.bin")
    mm = load_token_file(tmp_path / "t.bin")
    assert isinstance(mm, np.memmap) and mm.dtype == np.uint16 and not mm.flags.writeable
    assert mm.tolist() == ids.tolist()
    np.arange(3, dtype=np.uint32).tofile(tmp_path / "u32.bin")
    assert load_token_file(tmp_path / "u32.bin", np.uint32).tolist() == [0, 1, 2]


def test_load_token_file_errors(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        load_token_file(tmp_path / "missing.bin")
    assert "missing.bin" in str(err.value) and "prepare.py" in str(err.value)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_token_file(tmp_path / "empty.bin")
    (tmp_path / "odd.bin").write_bytes(b"\x01\x00\x02")
    with pytest.raises(DataError, match="3 bytes, not a whole number of uint16"):
        load_token_file(tmp_path / "odd.bin")
    (tmp_path / "six.bin").write_bytes(bytes(6))
    assert len(load_token_file(tmp_path / "six.bin")) == 3
    with pytest.raises(DataError, match="uint32"):
        load_token_file(tmp_path / "six.bin", np.uint32)
    with pytest.raises(DataError, match="not a regular file"):
        load_token_file(tmp_path)


def test_token_file_indexes_like_a_tensor_and_pickles_small(token_dir):
    tokens = TokenFile(token_dir / "train.bin")
    assert len(tokens) == N_TRAIN
    got = tokens[torch.tensor([[5, 6], [29_999, 0]])]
    assert got.dtype == torch.int64 and got.tolist() == [[5, 6], [29_999, 0]]
    with pytest.raises(IndexError):
        tokens[torch.tensor([N_TRAIN])]
    clone = pickle.loads(pickle.dumps(tokens))
    assert len(pickle.dumps(tokens)) < 1000  # the path travels, not 60 KB of tokens
    assert clone[torch.tensor([123])].tolist() == [123]
    short = TokenFile(token_dir / "train.bin", max_tokens=100)
    assert len(short) == 100
    with pytest.raises(IndexError):
        short[torch.tensor([100])]


# --- the DataModule --------------------------------------------------------------------------------------


def test_train_batches_depend_on_seed_only(token_dir):
    a = take(make_dm(token_dir, seed=0).train_dataloader(), 4)
    b = take(make_dm(token_dir, seed=0).train_dataloader(), 4)
    c = take(make_dm(token_dir, seed=1).train_dataloader(), 4)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[0][0], c[0][0])
    assert not torch.equal(a[0][0], a[1][0])
    x, y = a[0]
    assert x.dtype == torch.int64 and x.shape == y.shape == (8, 32)
    assert torch.equal(y[:, :-1], x[:, 1:])
    # Tokens equal positions in train.bin: every row is a contiguous window inside the file.
    assert torch.equal(x, x[:, :1] + torch.arange(32)) and torch.equal(y, x + 1)
    assert int(y.max()) < N_TRAIN


def test_val_windows_come_from_val_bin_and_ignore_the_seed(token_dir):
    v0, v1 = list(make_dm(token_dir, seed=0).val_dataloader()), list(make_dm(token_dir, seed=5).val_dataloader())
    assert len(v0) == 3 and all(x.shape == (4, 32) for x, _ in v0)
    assert all(torch.equal(x0, x1) and torch.equal(y0, y1) for (x0, y0), (x1, y1) in zip(v0, v1, strict=True))
    xs = torch.cat([x for x, _ in v0])
    assert int(xs.min()) >= VAL_BASE and int(xs.max()) < VAL_BASE + N_VAL
    assert len(set(xs[:, 0].tolist())) == 12  # evenly spaced starts
    train_x = torch.cat([x for x, _ in take(make_dm(token_dir).train_dataloader(), 20)])
    assert int(train_x.max()) < N_TRAIN  # val.bin never leaks into training


def test_single_file_is_split_like_a_text_corpus(tmp_path):
    n = 60 * 512
    np.arange(n, dtype=np.uint16).tofile(tmp_path / "all.bin")
    dm = make_dm(tmp_path / "all.bin", val_fraction=0.1, split_block_tokens=512)
    ranges = split_ranges(n, 0.1, 0.0, 512)

    def inside(rows: torch.Tensor, runs) -> bool:
        return all(any(a <= s and s + 32 < b for a, b in runs) for s in rows[:, 0].tolist())

    for x, _ in take(dm.train_dataloader(), 10):
        assert inside(x, ranges.train)
    for x, _ in dm.val_dataloader():
        assert inside(x, ranges.val)
    assert make_dm(tmp_path / "all.bin", val_fraction=0.0).val_dataloader() == []


def test_same_tokens_give_the_same_batches_as_text_datamodule(tmp_path):
    # One window-sampling implementation: a byte corpus as text and as a token file yields identical batches.
    text = "".join(f"line {i}: the quick brown fox {i * i % 97}\n" for i in range(900))
    (tmp_path / "c.txt").write_text(text, encoding="utf-8")
    np.frombuffer(text.encode(), dtype=np.uint8).astype(np.uint16).tofile(tmp_path / "c.bin")
    common = {"block_size": 24, "batch_size": 6, "val_fraction": 0.1, "seed": 3, "val_batches": 2,
              "eval_batch_size": 5, "split_block_tokens": 256}
    text_dm = TextDataModule(corpus=f"file:{tmp_path / 'c.txt'}", level="byte", **common)
    token_dm = TokenFileDataModule(tmp_path / "c.bin", vocab_size=256, **common)
    for (xa, ya), (xb, yb) in zip(take(text_dm.train_dataloader(), 3), take(token_dm.train_dataloader(), 3),
                                  strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    for (xa, ya), (xb, yb) in zip(text_dm.val_dataloader(), token_dm.val_dataloader(), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_reads_windows_without_loading_the_file(tmp_path):
    path = tmp_path / "big.bin"
    with path.open("wb") as f:
        f.truncate(1 << 30)  # 512M zero tokens, sparse on disk
    dm = make_dm(path, val_fraction=0.01, split_block_tokens=1 << 20)
    tracemalloc.start()
    try:
        dm.setup()
        take(dm.train_dataloader(), 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20  # a whole-file read would allocate 1 GiB (numpy allocations are traced)


def test_vocab_size_is_checked_on_a_sample(token_dir):
    assert make_dm(token_dir).vocab_size == 50304  # nanoGPT's padded GPT-2 vocabulary
    make_dm(token_dir, vocab_size=VAL_BASE + N_VAL).setup()
    with pytest.raises(DataError, match=r"token id 44999 .* vocab_size is 44999"):
        make_dm(token_dir, vocab_size=VAL_BASE + N_VAL - 1).setup()  # the top id sits in val.bin's last run
    with pytest.raises(DataError, match=r"token id 29999 .*vocab_size is 256"):
        make_dm(token_dir, vocab_size=256).setup()
    np.array([1, 2, -3, 4] * 10, dtype=np.int32).tofile(token_dir / "signed.bin")
    with pytest.raises(DataError, match="negative"):
        make_dm(token_dir / "signed.bin", dtype=np.int32, block_size=4, val_fraction=0.0).setup()


def test_sizes_per_step_and_laziness(tmp_path):
    dm = make_dm(tmp_path / "not-yet-written", block_size=128, batch_size=16)
    assert dm.tokens_per_step == 16 * 128 and dm.effective_batch == 16  # nothing read at construction
    text_dm = TextDataModule(corpus="file:/nonexistent", block_size=64, batch_size=8)
    assert text_dm.tokens_per_step == 512 and text_dm.effective_batch == 8
    with pytest.raises(DataError, match="not found"):
        dm.setup()


def test_datamodule_errors(token_dir, tmp_path):
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match="no manifest.json or train.bin"):
        make_dm(tmp_path / "empty_dir").setup()
    with pytest.raises(DataError, match="block_size=6000"):
        make_dm(token_dir, block_size=6000).setup()  # val.bin has 5000 tokens
    with pytest.raises(ConfigError, match="batch_size"):
        make_dm(token_dir, batch_size=0)
    with pytest.raises(ConfigError, match="vocab_size"):
        make_dm(token_dir, vocab_size=0)
    with pytest.raises(ConfigError, match="max_tokens"):
        make_dm(token_dir, max_tokens=0).setup()


def test_max_tokens_limits_both_files(token_dir):
    dm = make_dm(token_dir, max_tokens=1000)
    train_x = torch.cat([x for x, _ in take(dm.train_dataloader(), 10)])
    val_x = torch.cat([x for x, _ in dm.val_dataloader()])
    assert int(train_x.max()) < 1000 and int(val_x.max()) < VAL_BASE + 1000


def test_trains_a_gpt_with_lightning(token_dir, tmp_path):
    from common.lit import LanguageModelModule, fit, seed_all
    from common.models.gpt import GPT, llama_config

    seed_all(0)
    dm = make_dm(token_dir, vocab_size=VAL_BASE + N_VAL, block_size=16, batch_size=4)
    model = GPT(llama_config(dm.vocab_size, 16, n_layer=1, n_head=2, d_model=16))
    module = LanguageModelModule(model, functools.partial(torch.optim.AdamW, lr=1e-3))
    res = fit(module, dm, max_steps=2, out_dir=tmp_path / "out", run_name="tokens", val_every=2,
              limit_val_batches=1)
    assert res.steps_done == 2 and np.isfinite(res.final_val_loss)
