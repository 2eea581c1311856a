"""``fit``: one Lightning run, configured the way every experiment needs it, returned as a ``FitResult``.

Experiments call this instead of building a Trainer, so every arm of every paper gets the same
TensorBoard layout, validation schedule (step 0, every ``val_every`` steps, and ``max_steps``),
divergence handling and cost measurements.

Scale, as the papers ran it, comes from the preset's ``trainer`` section (``reproduce ... trainer.key=value``): any
Lightning Trainer argument (``strategy=ddp``, ``devices=N``, ``num_nodes=M``, ``precision=bf16-mixed`` for bf16
autocast, ``accumulate_grad_batches=K``) plus two of ours, :data:`SCALE_KEYS`: ``global_batch`` (examples per
optimizer step over all processes; the gradient accumulation that reaches it is computed from the batch size, the
devices and the nodes) and ``compile_model`` (``true``: ``torch.compile`` the model with inductor; a string names
another torch.compile backend).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from common.errors import ConfigError, DivergedError
from common.lit.callbacks import (
    CurveRecorder,
    DivergenceMonitor,
    GradNormMonitor,
    OptimizerStateBytes,
    ProgressReporter,
    StepTimer,
    ValidateAtMaxSteps,
)
from common.lit.checkpointing import LAST, DataPosition, RngState, checkpoint_dir, resumable_checkpoint
from common.lit.checkpointing import defaults as checkpoint_defaults
from common.results.record import json_safe

_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric")
SCALE_KEYS = ("global_batch", "compile_model")  # trainer-section keys fit reads itself (not Trainer arguments)
# Trainer precisions that store the parameters in another dtype. Lightning loads a checkpoint's weights before it
# converts the module, so a float32 module would round a float64 checkpoint to float32 on resume: convert first.
_PARAM_DTYPES = {"64-true": "float64", "64": "float64", "bf16-true": "bfloat16", "16-true": "float16"}


@dataclass
class FitResult:
    """What one run produced. Curves follow the step convention of ``common.lit.callbacks``."""

    train_curve: list[tuple[int, float]]
    val_curve: list[tuple[float, ...]]
    final_train_loss: float
    final_val_loss: float
    final_val_acc: float | None
    test_metrics: dict[str, float]
    diverged: bool
    divergence_reason: str | None
    steps_done: int
    wall_s: float
    step_time_ms_median: float | None
    state_bytes: int | None
    log_dir: str | None
    state_bytes_per_param: float | None = None
    val_train_s: list[tuple[int, float]] = field(default_factory=list)  # training seconds before each val

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: tuples become lists and non-finite floats become None."""
        return json_safe(asdict(self))


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's INFO banners (GPU available, tips, "max_steps reached") during a fit.

    Also hides one upstream FutureWarning (Lightning 2.6's use of torch's deprecated ``LeafSpec``), which
    otherwise prints on every run and says nothing about ours.
    """
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                    category=FutureWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _merge_callbacks(defaults: list[Callback], user: Any) -> list[Callback]:
    """Ours plus the caller's; a caller's instance of one of our types (or a subclass) replaces ours."""
    if user is None:
        user = []
    elif isinstance(user, Callback):
        user = [user]
    merged = list(defaults)
    for cb in user:
        for i, default in enumerate(merged):
            if i < len(defaults) and isinstance(cb, type(default)):
                merged[i] = cb
                break
        else:
            merged.append(cb)
    return merged


def accumulation(global_batch: int, datamodule: pl.LightningDataModule, world_size: int,
                 accumulate_grad_batches: int | None = None) -> int:
    """Micro-batches per optimizer step so that one step sees ``global_batch`` examples over ``world_size`` processes.

    One forward pass takes ``batch_size`` examples per process from a map-style datamodule (Lightning's distributed
    sampler gives each rank its own batches), but ``batch_size`` in all from a datamodule with
    ``batch_is_global = True`` (the language-model streams, where each rank takes its share of one global batch).
    """
    batch = getattr(datamodule, "batch_size", None)
    if isinstance(global_batch, bool) or not isinstance(global_batch, int) or global_batch < 1:
        raise ConfigError(f"trainer.global_batch must be a positive integer, got {global_batch!r}")
    if not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"trainer.global_batch needs a datamodule with an integer batch_size, "
                          f"{type(datamodule).__name__} has {batch!r}")
    is_global = bool(getattr(datamodule, "batch_is_global", False))
    per_pass = batch if is_global else batch * world_size
    how = (f"batch_size {batch}, split over {world_size} processes" if is_global
           else f"batch_size {batch} on each of {world_size} processes")
    if global_batch % per_pass:
        raise ConfigError(f"trainer.global_batch={global_batch} is not a multiple of the {per_pass} examples one "
                          f"forward pass takes ({how})")
    steps = global_batch // per_pass
    if accumulate_grad_batches is not None and int(accumulate_grad_batches) != steps:
        raise ConfigError(f"trainer.accumulate_grad_batches={accumulate_grad_batches} contradicts "
                          f"trainer.global_batch={global_batch} ({how}: {steps} micro-batches); set one of them")
    return steps


def compile_model(module: pl.LightningModule, how: bool | str) -> None:
    """``torch.compile`` the module's network in place (``nn.Module.compile``: parameter names and checkpoints stay
    as they are, so a compiled run resumes an eager one's checkpoint and vice versa)."""
    if isinstance(how, bool):
        if not how:
            return
        backend = "inductor"
    elif isinstance(how, str) and how:
        backend = how
    else:
        raise ConfigError(f"trainer.compile_model must be true/false or a torch.compile backend name, got {how!r}")
    import torch

    if backend not in torch._dynamo.list_backends(exclude_tags=()):
        raise ConfigError(f"trainer.compile_model: unknown torch.compile backend {backend!r}; valid: "
                          f"{', '.join(torch._dynamo.list_backends())}")
    target = getattr(module, "model", module)
    target.compile(backend=backend)


def _find(callbacks: list[Callback], kind: type) -> Any:
    return next(cb for cb in callbacks if isinstance(cb, kind))


def fit(
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    *,
    max_steps: int,
    out_dir: str | Path,
    run_name: str,
    val_every: int,
    limit_val_batches: int | float = 1.0,
    progress_label: str | None = None,
    test: bool = False,
    trainer_kwargs: dict[str, Any] | None = None,
    checkpoint: bool | None = None,
    resume: bool | None = None,
) -> FitResult:
    """Train ``module`` for ``max_steps`` optimizer steps and return curves, final metrics and costs.

    Validation runs at step 0 (before training), every ``val_every`` steps and at ``max_steps``.
    TensorBoard events go to ``out_dir/tb/run_name``. A diverging run stops early and returns normally
    with ``diverged=True``. ``trainer_kwargs`` override any Trainer argument set here (strategy, devices,
    precision, gradient_clip_val, ...); ``callbacks`` in it are added to ours, replacing ours of the same
    type (e.g. a ``DivergenceMonitor`` with another ``explode_factor``).

    Checkpoints: with ``checkpoint=True`` the run saves ``out_dir/checkpoints/run_name/last.ckpt`` after every
    validation (every ``val_every`` steps: a save between validations would make Lightning skip the next one);
    with ``resume=True`` it continues from that file when it exists, exactly (model, optimizer, scheduler,
    loops, curves, RNG and, with a ``ResumableDataLoader``, the data position). Both default to what the runner
    set with ``common.lit.checkpointing.checkpointing`` (``reproduce --resume``): then a checkpoint at every
    validation, deleted once the run has finished.
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    if isinstance(val_every, bool) or not isinstance(val_every, int) or val_every < 1:
        raise ValueError(f"val_every must be a positive integer, got {val_every!r}")
    out_dir = Path(out_dir)
    kwargs = dict(trainer_kwargs or {})
    global_batch = kwargs.pop("global_batch", None)
    compile_how = kwargs.pop("compile_model", False)
    ctx_ckpt = checkpoint_defaults()
    keep_ckpt = checkpoint is not None or ctx_ckpt.keep
    checkpoint = ctx_ckpt.enabled if checkpoint is None else bool(checkpoint)
    resume = ctx_ckpt.resume if resume is None else bool(resume)

    defaults: list[Callback] = [
        StepTimer(), GradNormMonitor(), OptimizerStateBytes(), DivergenceMonitor(), CurveRecorder(),
        ValidateAtMaxSteps(), DataPosition(), RngState(),
    ]
    if progress_label is not None:
        defaults.append(ProgressReporter(progress_label, max_steps))
    callbacks = _merge_callbacks(defaults, kwargs.pop("callbacks", None))
    ckpt_dir = checkpoint_dir(out_dir, run_name)
    ckpt_path = resumable_checkpoint(ckpt_dir) if resume else None
    if checkpoint:
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename=Path(LAST).stem, save_top_k=1,
                                         enable_version_counter=False, save_on_train_epoch_end=False))

    # version="" puts the events directly in out_dir/tb/run_name; give each run its own run_name.
    logger = TensorBoardLogger(save_dir=str(out_dir / "tb"), name=run_name, version="",
                               default_hp_metric=False)
    # Lightning counts val_check_interval in batches; scale it so val_every stays in optimizer steps.
    accumulate = int(kwargs.get("accumulate_grad_batches", 1))
    settings: dict[str, Any] = {
        "max_steps": max_steps,
        "accelerator": "auto",
        "devices": 1,
        "logger": logger,
        "callbacks": callbacks,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": checkpoint,
        "num_sanity_val_steps": 0,
        "val_check_interval": val_every * accumulate,
        "check_val_every_n_epoch": None,
        "limit_val_batches": limit_val_batches,
        "log_every_n_steps": max(1, min(50, max_steps // 20)),
        "default_root_dir": str(out_dir),
    }
    settings.update(kwargs)

    with quiet_lightning():
        trainer = pl.Trainer(**settings)
        if global_batch is not None:  # the world size is known only now (devices="auto", num_nodes, strategy)
            accumulate = accumulation(global_batch, datamodule, trainer.world_size,
                                      kwargs.get("accumulate_grad_batches"))
            trainer.accumulate_grad_batches = accumulate
            if "val_check_interval" not in kwargs:
                trainer.val_check_interval = val_every * accumulate
        param_dtype = _PARAM_DTYPES.get(str(kwargs.get("precision")))
        if param_dtype is not None:
            import torch

            module.to(getattr(torch, param_dtype))
        compile_model(module, compile_how)
        t0 = time.perf_counter()
        broke: str | None = None
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        except DivergedError as e:  # the method's numerics broke down (e.g. eigh of NaN statistics): a result
            broke = f"{type(e).__name__} at step {trainer.global_step}: {str(e).splitlines()[0] if str(e) else ''}"
        wall_s = time.perf_counter() - t0
        test_metrics: dict[str, float] = {}
        if test and broke is None:
            results = trainer.test(module, datamodule=datamodule, verbose=False)
            test_metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}

    if checkpoint and not keep_ckpt and trainer.is_global_zero:
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: the runner keeps the result, not the weights
        for parent in ckpt_dir.parents:  # and the run_name's now empty folders, up to out_dir/checkpoints
            if parent == out_dir or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()
    curves: CurveRecorder = _find(callbacks, CurveRecorder)
    divergence: DivergenceMonitor = _find(callbacks, DivergenceMonitor)
    timer: StepTimer = _find(callbacks, StepTimer)
    state: OptimizerStateBytes = _find(callbacks, OptimizerStateBytes)
    last_val = curves.val[-1] if curves.val else None
    return FitResult(
        train_curve=list(curves.train),
        val_curve=list(curves.val),
        val_train_s=list(curves.val_train_s),
        final_train_loss=curves.train[-1][1] if curves.train else math.nan,
        final_val_loss=float(last_val[1]) if last_val is not None else math.nan,
        final_val_acc=float(last_val[2]) if last_val is not None and len(last_val) > 2 else None,
        test_metrics=test_metrics,
        diverged=divergence.diverged or broke is not None,
        divergence_reason=divergence.reason or broke,
        steps_done=trainer.global_step,
        wall_s=wall_s,
        step_time_ms_median=timer.median_ms,
        state_bytes=state.state_bytes,
        log_dir=str(Path(trainer.logger.log_dir)) if trainer.logger is not None else None,
        state_bytes_per_param=state.bytes_per_param,
    )
