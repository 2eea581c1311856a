"""The preset -> LM datamodule mapping."""

import numpy as np
import pytest

from common.data.lm import lm_datamodule
from common.data.text import TextDataModule
from common.data.tokens import TokenFileDataModule
from common.errors import DataError


def test_text_corpus_and_token_files(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("hello world " * 20000)
    dm = lm_datamodule({"corpus": f"file:{text}", "level": "byte"}, block_size=8, batch_size=2, seed=0,
                       val_batches=1)
    assert isinstance(dm, TextDataModule) and dm.vocab_size == 256 and dm.tokens_per_step == 16
    (tmp_path / "tok").mkdir()
    rng = np.random.default_rng(0)
    for name in ("train.bin", "val.bin"):
        rng.integers(0, 1000, size=20000, dtype=np.uint16).tofile(tmp_path / "tok" / name)
    dm = lm_datamodule({"corpus": f"tokens:{tmp_path / 'tok'}", "vocab_size": 1000}, block_size=8, batch_size=2,
                       seed=0, val_batches=1)
    assert isinstance(dm, TokenFileDataModule) and dm.vocab_size == 1000
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 8) and (x[:, 1:] == y[:, :-1]).all()


def test_missing_token_dir_is_a_data_error(tmp_path):
    with pytest.raises(DataError):
        dm = lm_datamodule({"corpus": f"tokens:{tmp_path / 'nope'}"}, block_size=8, batch_size=2, seed=0,
                           val_batches=1)
        dm.setup("fit")
