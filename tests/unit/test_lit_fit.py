"""``fit`` end to end on tiny synthetic data: curves, final validation, logs, costs, divergence."""

import functools
import json
import math
import re

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from common.lit import ClassificationModule, DivergenceMonitor, fit, seed_all
from common.models import mlp


class BlobData(pl.LightningDataModule):
    """Three Gaussian blobs in 8-D: separable, so a small MLP learns it in tens of steps."""

    def __init__(self, batch_size: int = 32, n_train: int = 384, n_val: int = 192) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        centers = 3.0 * torch.randn(3, 8, generator=g)

        def draw(n):
            y = torch.randint(0, 3, (n,), generator=g)
            return centers[y] + torch.randn(n, 8, generator=g), y

        self.train_set = TensorDataset(*draw(n_train))
        self.val_set = TensorDataset(*draw(n_val))
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)


def make_module(lr: float = 1e-2) -> ClassificationModule:
    return ClassificationModule(mlp(8, [16], 3), functools.partial(torch.optim.Adam, lr=lr))


def tb_scalar_tags(log_dir: str) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(log_dir)
    acc.Reload()
    return set(acc.Tags()["scalars"])


def test_fit_trains_and_returns_complete_curves(tmp_path):
    seed_all(0)
    data = BlobData()
    module = make_module()
    # The step-0 value must be the untrained model on the first limit_val_batches=2 val batches.
    x, y = data.val_set.tensors
    with torch.no_grad():
        initial = F.cross_entropy(module.model(x[:64]), y[:64]).item()

    result = fit(module, data, max_steps=50, out_dir=tmp_path, run_name="blobs", val_every=20,
                 limit_val_batches=2, test=True)

    assert [entry[0] for entry in result.val_curve] == [0, 20, 40, 50]
    assert result.val_curve[0][1] == pytest.approx(initial, rel=1e-5)
    assert [step for step, _ in result.train_curve] == list(range(50))
    assert result.final_val_loss == result.val_curve[-1][1]
    assert result.final_val_loss < 0.5 * result.val_curve[0][1]
    assert result.final_train_loss == result.train_curve[-1][1]
    assert 0.0 <= result.final_val_acc <= 1.0 and result.final_val_acc == result.val_curve[-1][2]
    assert result.steps_done == 50 and not result.diverged and result.divergence_reason is None
    assert set(result.test_metrics) == {"test/loss", "test/acc"}
    assert result.step_time_ms_median > 0
    # Adam keeps two fp32 moments per parameter, plus a scalar step per tensor.
    assert result.state_bytes > 0
    assert 8.0 <= result.state_bytes_per_param < 9.0
    assert result.log_dir == str(tmp_path / "tb" / "blobs")
    tags = tb_scalar_tags(result.log_dir)
    assert {"train/loss", "train/acc", "train/lr", "train/grad_norm", "train/step_time_ms", "val/loss",
            "val/acc", "test/loss", "optim/state_bytes"} <= tags
    json.dumps(result.to_dict(), allow_nan=False)


def test_val_every_dividing_max_steps_validates_once_at_the_end(tmp_path):
    seed_all(0)
    result = fit(make_module(), BlobData(), max_steps=20, out_dir=tmp_path, run_name="r", val_every=10,
                 limit_val_batches=1)
    assert [entry[0] for entry in result.val_curve] == [0, 10, 20]


def test_huge_learning_rate_diverges_and_fit_returns(tmp_path):
    seed_all(0)
    module = ClassificationModule(mlp(8, [16], 3), functools.partial(torch.optim.SGD, lr=1e6))
    result = fit(module, BlobData(), max_steps=100, out_dir=tmp_path, run_name="boom", val_every=50,
                 limit_val_batches=1)
    assert result.diverged
    reason = result.divergence_reason
    assert re.search(r"(nan|inf) loss at step \d+|x initial loss|non-finite parameters", reason)
    assert result.steps_done < 100
    record = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert record["diverged"] is True


class NanAtStep(ClassificationModule):
    """Returns a NaN loss from the given step on, as a blown-up run would."""

    def __init__(self, nan_step: int) -> None:
        super().__init__(mlp(8, [16], 3), functools.partial(torch.optim.SGD, lr=0.1))
        self.nan_step = nan_step

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * math.nan if self.global_step >= self.nan_step else loss


def test_nan_loss_stops_the_run_with_the_step_in_the_reason(tmp_path):
    seed_all(0)
    result = fit(NanAtStep(7), BlobData(), max_steps=40, out_dir=tmp_path, run_name="nan", val_every=10,
                 limit_val_batches=1)
    assert result.diverged
    assert result.divergence_reason == "nan loss at step 7"
    assert result.steps_done == 8
    assert math.isnan(result.final_train_loss)
    assert result.to_dict()["final_train_loss"] is None


class SpikesAt(ClassificationModule):
    """Reports a 10x loss at the given steps without changing the gradients."""

    def __init__(self, steps: set[int]) -> None:
        super().__init__(mlp(8, [16], 3), functools.partial(torch.optim.SGD, lr=0.01))
        self.spike_steps = steps

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss + 9 * loss.detach() if self.global_step in self.spike_steps else loss


def test_explosion_needs_patience_consecutive_bad_steps(tmp_path):
    seed_all(0)
    monitor = DivergenceMonitor(explode_factor=4.0, patience=2)
    result = fit(SpikesAt({5, 12, 13}), BlobData(), max_steps=30, out_dir=tmp_path, run_name="spike",
                 val_every=10, limit_val_batches=1, trainer_kwargs={"callbacks": [monitor]})
    assert monitor.diverged and result.diverged  # the caller's monitor replaced the default one
    assert re.fullmatch(r"loss \S+ > 4 x initial loss \S+ at step 13", result.divergence_reason)
    assert result.steps_done == 14


class CorruptsUnusedWeight(ClassificationModule):
    """Writes inf into a parameter the loss never reads, so only the parameter check can notice."""

    def __init__(self, step: int) -> None:
        super().__init__(mlp(8, [16], 3), functools.partial(torch.optim.SGD, lr=0.1))
        self.spare = torch.nn.Parameter(torch.zeros(4))
        self.corrupt_step = step

    def on_before_optimizer_step(self, optimizer):
        if self.global_step == self.corrupt_step:
            with torch.no_grad():
                self.spare[0] = math.inf


def test_non_finite_parameters_stop_the_run(tmp_path):
    seed_all(0)
    result = fit(CorruptsUnusedWeight(3), BlobData(), max_steps=20, out_dir=tmp_path, run_name="inf",
                 val_every=10, limit_val_batches=1)
    assert result.diverged
    assert result.divergence_reason == "non-finite parameters after step 4"
    assert result.steps_done == 4
    assert math.isfinite(result.final_train_loss)


def test_fit_rejects_bad_step_counts(tmp_path):
    with pytest.raises(ValueError, match="max_steps"):
        fit(make_module(), BlobData(), max_steps=0, out_dir=tmp_path, run_name="r", val_every=1)
    with pytest.raises(ValueError, match="val_every"):
        fit(make_module(), BlobData(), max_steps=5, out_dir=tmp_path, run_name="r", val_every=0)
