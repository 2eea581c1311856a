"""The scale keys of a preset's ``trainer`` section in one process (the multi-process runs are in test_ddp.py and
tests/cli/test_cli_ddp.py): ``global_batch`` -> gradient accumulation, ``precision=bf16-mixed`` autocast,
``compile_model`` -> torch.compile, and bad values as one-line errors."""

from __future__ import annotations

import functools
import types

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from common.data.text import TextDataModule
from common.errors import ConfigError
from common.lit import LanguageModelModule, fit, seed_all
from common.lit.fit import accumulation
from common.models.gpt import GPT, GPTConfig
from reproduce.cli import main


def _lm(batch_size: int = 4) -> tuple[TextDataModule, LanguageModelModule]:
    seed_all(0)
    dm = TextDataModule(corpus="python-stdlib", level="byte", block_size=16, batch_size=batch_size,
                        max_bytes=100_000, val_batches=1, seed=0)
    dm.setup("fit")
    model = GPT(GPTConfig(vocab_size=dm.vocab_size, block_size=16, n_layer=1, n_head=2, d_model=16, dropout=0.0))
    return dm, LanguageModelModule(model, functools.partial(torch.optim.AdamW, lr=1e-2))


class Batches(Callback):
    """Counts micro-batches."""

    def __init__(self) -> None:
        self.n = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.n += 1


def test_accumulation_counts_the_global_batch_the_way_the_data_is_split():
    stream = types.SimpleNamespace(batch_size=8, batch_is_global=True)  # LM stream: ranks share one batch
    images = types.SimpleNamespace(batch_size=8)  # map-style: each rank draws batch_size of its own
    assert accumulation(64, stream, world_size=4) == 8
    assert accumulation(64, images, world_size=4) == 2
    assert accumulation(64, images, world_size=4, accumulate_grad_batches=2) == 2
    with pytest.raises(ConfigError, match=r"global_batch=48 is not a multiple of the 32 examples one forward pass "
                                          r"takes \(batch_size 8 on each of 4 processes\)"):
        accumulation(48, images, world_size=4)
    with pytest.raises(ConfigError, match="accumulate_grad_batches=4 contradicts trainer.global_batch=64"):
        accumulation(64, stream, world_size=2, accumulate_grad_batches=4)
    with pytest.raises(ConfigError, match="must be a positive integer, got 0"):
        accumulation(0, stream, world_size=1)
    with pytest.raises(ConfigError, match="needs a datamodule with an integer batch_size"):
        accumulation(8, types.SimpleNamespace(), world_size=1)


def test_fit_reaches_the_global_batch_by_accumulation(tmp_path):
    dm, module = _lm(batch_size=4)
    seen = Batches()
    res = fit(module, dm, max_steps=2, out_dir=tmp_path, run_name="acc", val_every=1,
              trainer_kwargs={"global_batch": 12, "callbacks": [seen], "accelerator": "cpu"})
    assert res.steps_done == 2 and seen.n == 6  # 3 micro-batches of 4 per optimizer step
    assert [s for s, *_ in res.val_curve] == [0, 1, 2]  # validation still counts optimizer steps


def test_bf16_mixed_autocasts_the_forward_and_keeps_float32_weights(tmp_path):
    dm, module = _lm()
    dtypes: set[torch.dtype] = set()
    module.model.lm_head.register_forward_hook(lambda m, i, out: dtypes.add(out.dtype))
    res = fit(module, dm, max_steps=2, out_dir=tmp_path, run_name="bf16", val_every=2,
              trainer_kwargs={"precision": "bf16-mixed", "accelerator": "cpu"})
    assert dtypes == {torch.bfloat16} and res.steps_done == 2 and not res.diverged
    assert all(p.dtype == torch.float32 for p in module.parameters())


def test_compile_model_compiles_in_place_and_trains_like_eager(tmp_path):
    import torch._dynamo

    dm, eager = _lm()
    fit(eager, dm, max_steps=2, out_dir=tmp_path / "e", run_name="e", val_every=2,
        trainer_kwargs={"accelerator": "cpu"})
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    dm, compiled = _lm()
    fit(compiled, dm, max_steps=2, out_dir=tmp_path / "c", run_name="c", val_every=2,
        trainer_kwargs={"compile_model": "aot_eager", "accelerator": "cpu"})  # inductor's C++ build is minutes here
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert list(compiled.state_dict()) == list(eager.state_dict())  # no _orig_mod. prefix: checkpoints interchange
    for a, b in zip(compiled.parameters(), eager.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()


@pytest.mark.parametrize(("value", "message"), [(3, "must be true/false or a torch.compile backend name, got 3"),
                                                ("nope", "unknown torch.compile backend 'nope'")])
def test_bad_compile_model_values(tmp_path, value, message):
    dm, module = _lm()
    with pytest.raises(ConfigError, match=message):
        fit(module, dm, max_steps=1, out_dir=tmp_path, run_name="x", val_every=1,
            trainer_kwargs={"compile_model": value, "accelerator": "cpu"})


def test_the_cli_takes_the_scale_keys_and_reports_a_bad_global_batch(capsys, tmp_path):
    """radam c2 smoke: batch_size 8 of one LM stream, so global_batch=12 cannot be reached."""
    code = main(["radam", "c2", "--preset", "smoke", "--seeds", "1", "trainer.global_batch=12",
                 "trainer.compile_model=false", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: trainer.global_batch=12 is not a multiple of the 8 examples")
    assert sum(line.startswith("error") for line in err) == 1


def test_the_world_size_fit_divides_by_counts_devices_times_nodes():
    """fit reads the Trainer's world size before training; with devices=2 and num_nodes=3 it is 6 (nothing is
    launched: the Trainer is only built)."""
    import lightning.pytorch as pl

    trainer = pl.Trainer(strategy="ddp", devices=2, num_nodes=3, accelerator="cpu", logger=False,
                         enable_progress_bar=False, enable_checkpointing=False)
    images = types.SimpleNamespace(batch_size=16)
    assert trainer.world_size == 6 and accumulation(16 * 6 * 4, images, trainer.world_size) == 4
