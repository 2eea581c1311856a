"""Exact resume of ``fit``: a run killed after N steps and resumed from its last Lightning checkpoint ends with the
same parameters, curves and metrics as an uninterrupted run (CPU, bitwise), for a shuffled map-style loader across
epoch boundaries (with dropout) and for the endless language-model stream with a schedule; and a truncated
checkpoint (killed mid-write) starts the run over instead of crashing."""

from __future__ import annotations

import functools

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

from common.data.resumable import ResumableDataLoader
from common.data.text import TextDataModule
from common.lit import ClassificationModule, LanguageModelModule, fit, seed_all
from common.lit.checkpointing import checkpoint_dir, checkpointing
from common.models.gpt import GPT, GPTConfig
from common.optim.schedules import warmup_cosine
from tests.optimizer_zoo import ZOO


class Killed(Exception):
    """Stands in for SIGKILL / a node going away."""


class KillAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            raise Killed(f"killed after step {trainer.global_step}")


class Blobs(pl.LightningDataModule):
    """96 examples, batch 16: 6 batches an epoch, so 20 steps cross three epoch boundaries."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(96, 8, generator=g)
        self.train_set = TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())
        self.val_set = TensorDataset(x[:48], (x[:48, 0] + x[:48, 1] > 0).long())

    def train_dataloader(self):
        return ResumableDataLoader(self.train_set, batch_size=16, shuffle=True,
                                   generator=torch.Generator().manual_seed(3))

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=48)


def _blob_module(name: str = "AdaBelief") -> ClassificationModule:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 2))
    return ClassificationModule(model, functools.partial(ZOO[name].make))


def _same(a, b) -> None:
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def _compare(straight, resumed) -> None:
    assert resumed.steps_done == straight.steps_done
    assert resumed.train_curve == straight.train_curve
    assert resumed.val_curve == straight.val_curve
    assert resumed.final_val_loss == straight.final_val_loss and resumed.final_val_acc == straight.final_val_acc
    assert resumed.diverged == straight.diverged


@pytest.mark.parametrize("name", ["AdaBelief", "SOAP"])
def test_a_killed_fit_resumes_exactly_across_epochs(tmp_path, name):
    kw = dict(max_steps=20, run_name="blobs", val_every=4, checkpoint=True)
    seed_all(0)
    ref_module = _blob_module(name)
    straight = fit(ref_module, Blobs(), out_dir=tmp_path / "a", **kw)

    seed_all(0)
    with pytest.raises(Killed):  # checkpoints at the validations of steps 4 and 8, killed after step 10 (epoch 2)
        fit(_blob_module(name), Blobs(), out_dir=tmp_path / "b", trainer_kwargs={"callbacks": [KillAt(10)]}, **kw)
    assert (checkpoint_dir(tmp_path / "b", "blobs") / "last.ckpt").is_file()
    seed_all(123)  # a different process state: everything must come from the checkpoint
    module = _blob_module(name)
    resumed = fit(module, Blobs(), out_dir=tmp_path / "b", resume=True, **kw)
    _compare(straight, resumed)
    _same(ref_module, module)


@pytest.mark.parametrize("precision", ["32-true", "64-true"])
def test_the_language_model_stream_resumes_exactly(tmp_path, precision):
    """64-true: Lightning loads the weights before it converts the module, so fit converts first (a float32 module
    would round the float64 checkpoint to float32)."""

    def run(out, kill=None, resume=False):
        seed_all(0)
        dm = TextDataModule(corpus="python-stdlib", level="byte", block_size=16, batch_size=4, max_bytes=300_000,
                            val_batches=2, seed=0)
        dm.setup("fit")
        model = GPT(GPTConfig(vocab_size=dm.vocab_size, block_size=16, n_layer=1, n_head=2, d_model=16, dropout=0.1))
        module = LanguageModelModule(model, functools.partial(ZOO["SophiaG"].make), warmup_cosine(12, 3, 0.1))
        extra = {"callbacks": [KillAt(kill)], "precision": precision} if kill else {"precision": precision}
        return module, fit(module, dm, max_steps=12, out_dir=out, run_name="lm", val_every=3, checkpoint=True,
                           resume=resume, trainer_kwargs=extra)

    ref, straight = run(tmp_path / "a")
    with pytest.raises(Killed):
        run(tmp_path / "b", kill=7)
    module, resumed = run(tmp_path / "b", resume=True)
    _compare(straight, resumed)
    _same(ref, module)
    assert next(module.parameters()).dtype == (torch.float64 if precision == "64-true" else torch.float32)


def test_the_runner_context_checkpoints_resumes_and_cleans_up(tmp_path):
    kw = dict(max_steps=12, run_name="ctx", val_every=4)
    seed_all(0)
    straight = fit(_blob_module(), Blobs(), out_dir=tmp_path / "a", **kw)
    with checkpointing(enabled=True, resume=True):
        seed_all(0)
        with pytest.raises(Killed):
            fit(_blob_module(), Blobs(), out_dir=tmp_path / "b", trainer_kwargs={"callbacks": [KillAt(9)]}, **kw)
        assert (checkpoint_dir(tmp_path / "b", "ctx") / "last.ckpt").is_file()  # saved at the step-8 validation
        resumed = fit(_blob_module(), Blobs(), out_dir=tmp_path / "b", **kw)
    _compare(straight, resumed)
    assert not (tmp_path / "b" / "checkpoints").exists()  # finished runs leave no weights (or empty folders) behind


def test_a_truncated_checkpoint_starts_the_run_over(tmp_path):
    kw = dict(max_steps=8, run_name="trunc", val_every=4, checkpoint=True)
    seed_all(0)
    straight = fit(_blob_module(), Blobs(), out_dir=tmp_path / "a", **kw)
    ckpt = checkpoint_dir(tmp_path / "b", "trunc") / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 cut short")
    seed_all(0)
    again = fit(_blob_module(), Blobs(), out_dir=tmp_path / "b", resume=True, **kw)
    _compare(straight, again)
