"""Callback pieces that do not need a long run: progress output, state bytes, validation, seeding."""

import functools
import io
import re

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from common.lit import (
    ClassificationModule,
    CurveRecorder,
    DivergenceMonitor,
    FitResult,
    GradNormMonitor,
    ProgressReporter,
    fit,
    seed_all,
)
from common.lit.callbacks import format_progress, tensor_bytes
from common.models import linear

LINE = re.compile(r"\[lin\] step (\d+)/30 loss \d+\.\d{4}( val \d+\.\d{2})? \(\d+\.\d s\)")


class Linear2D(pl.LightningDataModule):
    """Two linearly separable classes in 2-D."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(256, 2, generator=g)
        self.data = TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=32, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=64)


def run_with(tmp_path, callback, max_steps=30, module=None, **trainer_kwargs):
    seed_all(0)
    module = module or ClassificationModule(linear(2, 2), functools.partial(torch.optim.SGD, lr=0.5))
    return fit(module, Linear2D(), max_steps=max_steps, out_dir=tmp_path, run_name="lin", val_every=20,
               limit_val_batches=1, trainer_kwargs={"callbacks": [callback], **trainer_kwargs})


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_progress():
    line = format_progress("radam", 200, 400, 2.31144, 2.4, 3.14)
    assert line == "[radam] step 200/400 loss 2.3114 val 2.40 (3.1 s)"
    assert format_progress("x", 0, 10, None, None, 0.0) == "[x] step 0/10 (0.0 s)"


def test_progress_plain_stream_prints_every_n_steps_and_at_the_end(tmp_path):
    stream = io.StringIO()
    run_with(tmp_path, ProgressReporter("lin", 30, every=10, stream=stream))
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert all(LINE.fullmatch(line) for line in lines), lines
    assert [int(LINE.fullmatch(line).group(1)) for line in lines] == [10, 20, 30]
    assert " val " in lines[-1]  # the final line carries the final validation


def test_progress_tty_rewrites_one_line(tmp_path):
    stream = FakeTTY()
    run_with(tmp_path, ProgressReporter("lin", 30, every=10, stream=stream))
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    updates = [u.rstrip() for u in text.rstrip("\n").split("\r")[1:]]
    assert all(LINE.fullmatch(u) for u in updates), updates
    assert [int(LINE.fullmatch(u).group(1)) for u in updates] == list(range(1, 31)) + [30]


class RecordsGradNorm(ClassificationModule):
    """Computes the global gradient norm itself, in the module hook that runs right after the callbacks'."""

    def on_before_optimizer_step(self, optimizer):
        self.expected = torch.cat([p.grad.flatten() for p in self.parameters()]).norm()


def test_grad_norm_monitor_reports_the_global_norm_before_clipping(tmp_path):
    module = RecordsGradNorm(linear(2, 2), functools.partial(torch.optim.SGD, lr=0.5))
    monitor = GradNormMonitor()
    run_with(tmp_path, monitor, max_steps=3, module=module, gradient_clip_val=1e-3)
    torch.testing.assert_close(monitor.last, module.expected)
    assert monitor.last.item() > 1e-3  # clipping to 1e-3 comes after the measurement


def test_curve_recorder_every(tmp_path):
    recorder = CurveRecorder(every=4)
    result = run_with(tmp_path, recorder, max_steps=10)
    assert [s for s, _ in result.train_curve] == [0, 4, 8]
    assert [e[0] for e in result.val_curve] == [0, 10]


def test_tensor_bytes_counts_nested_state():
    state = {"a": {"exp_avg": torch.zeros(10), "step": torch.tensor(1.0)},
             "b": [torch.zeros(3, dtype=torch.bfloat16)], "c": 5}
    assert tensor_bytes(state) == 10 * 4 + 4 + 3 * 2


def test_sgd_without_momentum_has_no_state(tmp_path):
    seed_all(0)
    module = ClassificationModule(linear(2, 2), functools.partial(torch.optim.SGD, lr=0.1))
    result = fit(module, Linear2D(), max_steps=2, out_dir=tmp_path, run_name="sgd", val_every=2,
                 limit_val_batches=1)
    assert result.state_bytes == 0 and result.state_bytes_per_param == 0.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: DivergenceMonitor(explode_factor=1.0),
        lambda: DivergenceMonitor(patience=0),
        lambda: CurveRecorder(every=0),
        lambda: GradNormMonitor(every=0),
        lambda: ProgressReporter("x", 10, every=0),
    ],
)
def test_callbacks_reject_bad_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_fit_result_to_dict_is_json_safe():
    result = FitResult(
        train_curve=[(0, 1.0), (1, float("nan"))], val_curve=[(0, 1.0, 0.5)],
        final_train_loss=float("nan"), final_val_loss=float("inf"), final_val_acc=None,
        test_metrics={"test/loss": float("nan")}, diverged=True, divergence_reason="nan loss at step 1",
        steps_done=2, wall_s=0.1, step_time_ms_median=1.0, state_bytes=8, log_dir=None,
    )
    d = result.to_dict()
    assert d["train_curve"] == [[0, 1.0], [1, None]]
    assert d["val_curve"] == [[0, 1.0, 0.5]]
    assert d["final_train_loss"] is None and d["final_val_loss"] is None
    assert d["test_metrics"] == {"test/loss": None}


def test_seed_all_makes_draws_repeatable():
    seed_all(123)
    a = torch.rand(3), torch.randint(0, 10**6, (1,))
    seed_all(123)
    b = torch.rand(3), torch.randint(0, 10**6, (1,))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
