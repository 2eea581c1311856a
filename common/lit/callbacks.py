"""Callbacks that turn a Lightning run into a reproduction record: curves, divergence, cost, progress.

Step convention (shared by every callback here): the training loss "at step s" is the loss of the batch
seen by the model after s optimizer updates, i.e. the batch that drives update s + 1; a validation "at
step s" evaluates the model after s updates. So step 0 is the initial model for both curves, and the
final validation sits at ``max_steps``.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from torch.optim import Optimizer


def train_loss_value(trainer: pl.Trainer, outputs: Any) -> float | None:
    """The training loss of the batch just finished, as a float (one device sync), or None if unknown.

    Automatic optimization hands callbacks the loss divided by ``accumulate_grad_batches``; undo that so
    the value is the batch's mean loss. Modules that return nothing (manual optimization) fall back to
    the logged ``train/loss``.
    """
    loss = None
    if isinstance(outputs, torch.Tensor):
        loss = outputs
    elif isinstance(outputs, Mapping):
        loss = outputs.get("loss")
    if loss is not None and trainer.lightning_module.automatic_optimization:
        loss = loss * trainer.accumulate_grad_batches
    if loss is None:
        loss = trainer.callback_metrics.get("train/loss")
    return None if loss is None else float(loss)


def _sync(pl_module: pl.LightningModule) -> None:
    if pl_module.device.type == "cuda":
        torch.cuda.synchronize(pl_module.device)


def _log_once(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
    """Write one-off values straight to the loggers (``self.log`` would only flush on log_every_n_steps)."""
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=trainer.global_step)


class GradNormMonitor(Callback):
    """Logs ``train/grad_norm``: the global L2 norm of all gradients, before clipping and the update.

    Lightning calls ``on_before_optimizer_step`` after unscaling AMP gradients and before clipping, so
    this is the raw norm (nanoGPT logs the same). Under FSDP it is the local shard's norm.
    """

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every = every
        self.last: torch.Tensor | None = None

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: Optimizer) -> None:
        if trainer.global_step % self.every:
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        # at least fp32 (bf16 grads), never narrowing (fp64 models, precision="64-true")
        norms = torch.stack([torch.linalg.vector_norm(g.detach(), dtype=torch.promote_types(g.dtype, torch.float32))
                             for g in grads])
        self.last = torch.linalg.vector_norm(norms)
        pl_module.log("train/grad_norm", self.last, on_step=True, on_epoch=False)


class StepTimer(Callback):
    """Wall time per optimizer step (forward, backward, update; not data loading), ``train/step_time_ms``.

    With gradient accumulation a step spans all its micro-batches. On CUDA the device is synchronized at
    both ends so the time is the step's, not the launch's. ``median_ms`` is the number to report.
    """

    def __init__(self) -> None:
        self.times_ms: list[float] = []
        self._t0: float | None = None
        self._step0 = 0

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.times_ms) if self.times_ms else None

    def state_dict(self) -> dict[str, Any]:  # kept in checkpoints: a resumed run reports all its steps
        return {"times_ms": list(self.times_ms)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.times_ms = list(state_dict.get("times_ms", []))

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self._t0 is None:
            _sync(pl_module)
            self._t0 = time.perf_counter()
            self._step0 = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._t0 is None or trainer.global_step == self._step0:
            return  # mid-accumulation: the step is not finished
        _sync(pl_module)
        ms = (time.perf_counter() - self._t0) * 1e3
        self._t0 = None
        self.times_ms.append(ms)
        pl_module.log("train/step_time_ms", ms, on_step=True, on_epoch=False)


def tensor_bytes(obj: Any) -> int:
    """Bytes held by every tensor inside nested dicts / lists / tuples (an optimizer's ``state``)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, Mapping):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


class OptimizerStateBytes(Callback):
    """Measures optimizer memory once, after the first step (state is created lazily by ``step``).

    Logs ``optim/state_bytes`` and ``optim/state_bytes_per_param`` (e.g. 8 for fp32 Adam: two moments).
    """

    def __init__(self) -> None:
        self.state_bytes: int | None = None
        self.bytes_per_param: float | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.state_bytes is not None or trainer.global_step < 1:
            return
        total, params = 0, {}
        for optimizer in trainer.optimizers:
            total += tensor_bytes(dict(optimizer.state))
            for group in optimizer.param_groups:
                params.update((id(p), p.numel()) for p in group["params"])
        n = sum(params.values())
        self.state_bytes = total
        self.bytes_per_param = total / n if n else math.nan
        _log_once(trainer, {"optim/state_bytes": float(total),
                            "optim/state_bytes_per_param": self.bytes_per_param})


class DivergenceMonitor(Callback):
    """Stops a run cleanly when it diverges, and records why: divergence is a result, not a crash.

    A step is bad if the training loss is NaN/Inf (stops at once), if a parameter is non-finite (stops at
    once), or if the loss exceeds ``explode_factor`` x the first loss seen (stops after ``patience``
    consecutive bad steps). On stop it sets ``trainer.should_stop``; ``diverged`` and ``reason`` say what
    happened. Under DDP any rank's verdict stops all ranks, so none waits on a collective.
    """

    def __init__(self, explode_factor: float = 4.0, patience: int = 1, param_check_every: int = 1) -> None:
        if not explode_factor > 1.0:
            raise ValueError(f"explode_factor must be > 1, got {explode_factor!r}")
        if patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if param_check_every < 1:
            raise ValueError(f"param_check_every must be a positive integer, got {param_check_every!r}")
        self.explode_factor = explode_factor
        self.patience = patience
        self.param_check_every = param_check_every
        self.diverged = False
        self.reason: str | None = None
        self.first_loss: float | None = None
        self._bad_steps = 0
        self._step = 0

    def state_dict(self) -> dict[str, Any]:  # kept in checkpoints: the reference loss survives a resume
        return {"diverged": self.diverged, "reason": self.reason, "first_loss": self.first_loss,
                "bad_steps": self._bad_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.diverged, self.reason = state_dict["diverged"], state_dict["reason"]
        self.first_loss, self._bad_steps = state_dict["first_loss"], state_dict["bad_steps"]

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._step = trainer.global_step
        self._batch_start = time.perf_counter()

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any) -> str | None:
        step = self._step
        loss = train_loss_value(trainer, outputs)
        if loss is not None:
            if not math.isfinite(loss):
                return f"{'nan' if math.isnan(loss) else 'inf'} loss at step {step}"
            if self.first_loss is None:
                self.first_loss = loss
            elif self.first_loss > 0 and loss > self.explode_factor * self.first_loss:
                self._bad_steps += 1
                if self._bad_steps >= self.patience:
                    return (f"loss {loss:.4g} > {self.explode_factor:g} x initial loss {self.first_loss:.4g} "
                            f"at step {step}")
            else:
                self._bad_steps = 0
        if step % self.param_check_every == 0:
            finite = torch.stack([torch.isfinite(p).all() for p in pl_module.parameters()]).all()
            if not bool(finite):
                return f"non-finite parameters after step {step + 1}"
        return None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.diverged:
            return
        reason = self._check(trainer, pl_module, outputs)
        if trainer.strategy.reduce_boolean_decision(reason is not None, all=False):
            self.diverged = True
            self.reason = reason or f"diverged on another rank at step {self._step}"
            trainer.should_stop = True


class ValidateAtMaxSteps(Callback):
    """Makes the last step a validation step even when ``max_steps % val_every != 0``.

    Lightning validates when ``should_stop`` is set (the early-stopping path), so raising it at
    ``max_steps`` yields one final validation of the finished model, never two.
    """

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True


def _batch_size(batch: Any) -> int:
    first = batch[0] if isinstance(batch, (list, tuple)) else batch
    return first.size(0) if isinstance(first, torch.Tensor) else 1


def initial_validation(trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float] | None:
    """Evaluate the untrained model on the fit's validation data (first loader, ``limit_val_batches``).

    Needs ``pl_module.evaluate_batch(batch) -> {"loss": ..., ...}`` (our modules have it); the metrics are
    averaged over examples and summed across ranks. Runs in eval mode, under no_grad and the trainer's
    precision context, like Lightning's own validation.
    """
    evaluate = getattr(pl_module, "evaluate_batch", None)
    if evaluate is None:
        rank_zero_warn(f"{type(pl_module).__name__} has no evaluate_batch(); skipping the step-0 validation")
        return None
    # Lightning loads validation data lazily at the first validation; load it now, the same way, so the
    # loaders (with any distributed sampler) and batch limits are exactly the ones it will use.
    trainer.fit_loop.epoch_loop.val_loop.setup_data()
    loaders = trainer.val_dataloaders
    if isinstance(loaders, Mapping):
        loaders = list(loaders.values())
    if loaders is None or (isinstance(loaders, (list, tuple)) and not loaders):  # no validation (val_size 0)
        return None
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    limit = trainer.num_val_batches[0] if trainer.num_val_batches else math.inf
    totals: dict[str, torch.Tensor] = {}
    count = 0
    was_training = pl_module.training
    pl_module.eval()
    try:
        with torch.no_grad(), trainer.precision_plugin.val_step_context():
            for i, batch in enumerate(loader):
                if i >= limit:
                    break
                batch = trainer.strategy.batch_to_device(batch)
                n = _batch_size(batch)
                for name, value in evaluate(batch).items():
                    totals[name] = totals.get(name, 0.0) + value.detach().float() * n
                count += n
    finally:
        pl_module.train(was_training)
    if not totals:
        return None
    names = sorted(totals)
    packed = torch.stack([totals[k] for k in names] + [torch.tensor(float(count), device=pl_module.device)])
    packed = trainer.strategy.reduce(packed, reduce_op="sum")
    return {k: float(v / packed[-1]) for k, v in zip(names, packed[:-1], strict=True)}


class CurveRecorder(Callback):
    """Keeps the learning curves as plain lists, for records and plots.

    ``train``: ``(step, loss)`` every ``every`` steps. ``val``: ``(step, val_loss)`` or
    ``(step, val_loss, val_acc)`` at each validation, starting with an evaluation of the initial model at
    step 0 (see ``initial_validation``), so every curve starts from its initial value. ``val_train_s``:
    ``(step, seconds)`` of training time (batch start to batch end, so extra passes such as a Hessian
    estimate count and evaluations do not) spent before each validation: the x axis of wall-clock plots.
    """

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every = every
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[float, ...]] = []
        self.val_train_s: list[tuple[int, float]] = []
        self._step = 0
        self._train_s = 0.0
        self._batch_start = 0.0

    def state_dict(self) -> dict[str, Any]:  # kept in checkpoints: a resumed run returns whole curves
        return {"train": list(self.train), "val": list(self.val), "val_train_s": list(self.val_train_s),
                "train_s": self._train_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train = [tuple(x) for x in state_dict["train"]]
        self.val = [tuple(x) for x in state_dict["val"]]
        self.val_train_s = [tuple(x) for x in state_dict["val_train_s"]]
        self._train_s = float(state_dict["train_s"])

    def _add_val(self, step: int, loss: float, acc: float | None) -> None:
        entry = (step, loss) if acc is None else (step, loss, acc)
        if self.val and self.val[-1][0] == step:
            self.val[-1] = entry
            self.val_train_s[-1] = (step, self._train_s)
        else:
            self.val.append(entry)
            self.val_train_s.append((step, self._train_s))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == 0 and not self.val:
            metrics = initial_validation(trainer, pl_module)
            if metrics is not None and "loss" in metrics:
                self._add_val(0, metrics["loss"], metrics.get("acc"))

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._step = trainer.global_step
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._train_s += time.perf_counter() - self._batch_start
        if self._step % self.every == 0 and (not self.train or self.train[-1][0] != self._step):
            loss = train_loss_value(trainer, outputs)
            if loss is not None:
                self.train.append((self._step, loss))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        metrics = trainer.callback_metrics
        if "val/loss" in metrics:
            acc = metrics.get("val/acc")
            loss = float(metrics["val/loss"])
            self._add_val(trainer.global_step, loss, None if acc is None else float(acc))


def format_progress(label: str, step: int, total: int, loss: float | None, val: float | None,
                    elapsed_s: float) -> str:
    """``[label] step 200/400 loss 2.3114 val 2.40 (3.1 s)``; unknown values are left out."""
    parts = [f"[{label}] step {step}/{total}"]
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    if val is not None:
        parts.append(f"val {val:.2f}")
    parts.append(f"({elapsed_s:.1f} s)")
    return " ".join(parts)


class ProgressReporter(Callback):
    """One progress line per update, for long runs under the CLI (Lightning's bar is off).

    On a terminal the line is rewritten in place with ``\\r`` every step; otherwise (logs, CI) a plain line
    is printed every ``every`` steps and once at the end. Only global rank 0 writes.
    """

    def __init__(self, label: str, total_steps: int, every: int = 25, stream: IO[str] | None = None) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.label = label
        self.total_steps = total_steps
        self.every = every
        self.stream = stream if stream is not None else sys.stderr
        self._last_outputs: Any = None
        self._t0 = time.perf_counter()
        self._last_step_printed: int | None = None
        self._width = 0

    @property
    def _tty(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _line(self, trainer: pl.Trainer) -> str:
        val = trainer.callback_metrics.get("val/loss")
        loss = train_loss_value(trainer, self._last_outputs)  # converted only when a line is written
        return format_progress(self.label, trainer.global_step, self.total_steps, loss,
                               None if val is None else float(val), time.perf_counter() - self._t0)

    def _write(self, line: str, step: int, final: bool) -> None:
        if self._tty:
            self.stream.write("\r" + line.ljust(self._width) + ("\n" if final else ""))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last_step_printed = step

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not trainer.is_global_zero:
            return
        step = trainer.global_step
        self._last_outputs = outputs
        if self._tty or step % self.every == 0:
            self._write(self._line(trainer), step, final=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if self._tty or self._last_step_printed != trainer.global_step:
            self._write(self._line(trainer), trainer.global_step, final=True)
