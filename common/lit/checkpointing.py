"""Checkpoint and exact resume for ``common.lit.fit``.

``reproduce ... --resume`` must continue every Lightning run of every paper without each experiment passing
flags down to ``fit``; so the runner sets the defaults for the claim it is running with ``checkpointing(...)``
(a context variable) and ``fit`` reads them. What a checkpoint holds beyond Lightning's own (model, optimizer,
scheduler, loop counters): our callbacks' states (curves, divergence reference, step times), the global RNG
states (dropout), and the train loader's position (``common.data.resumable``).
"""

from __future__ import annotations

import contextvars
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from common.data.resumable import ResumableDataLoader

LAST = "last.ckpt"


@dataclass(frozen=True)
class CheckpointDefaults:
    enabled: bool = False  # checkpoint every validation (every val_every steps)
    resume: bool = False  # continue from out_dir/checkpoints/<run_name>/last.ckpt when it exists
    keep: bool = False  # keep the checkpoint after the run finished (the runner caches finished runs itself)


_DEFAULTS: contextvars.ContextVar[CheckpointDefaults | None] = contextvars.ContextVar(
    "optrepro_checkpoint_defaults", default=None)


@contextmanager
def checkpointing(enabled: bool = True, resume: bool = False, keep: bool = False) -> Iterator[None]:
    """Within this block, every ``fit`` checkpoints (and resumes, if asked) unless told otherwise."""
    token = _DEFAULTS.set(CheckpointDefaults(enabled, resume, keep))
    try:
        yield
    finally:
        _DEFAULTS.reset(token)


def defaults() -> CheckpointDefaults:
    return _DEFAULTS.get() or CheckpointDefaults()


def checkpoint_dir(out_dir: str | Path, run_name: str) -> Path:
    return Path(out_dir) / "checkpoints" / run_name


def resumable_checkpoint(directory: Path) -> Path | None:
    """``directory/last.ckpt`` if it exists and loads (a file cut short by a kill is discarded, not trusted)."""
    path = directory / LAST
    if not path.is_file():
        return None
    try:
        torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # truncated/corrupt: start this run over
        path.unlink(missing_ok=True)
        return None
    return path


def _loaders(obj: Any) -> Iterator[Any]:
    if isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _loaders(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _loaders(x)
    elif obj is not None:
        yield obj


class DataPosition(Callback):
    """Tells a ResumableDataLoader how many batches of its current pass were trained on (Lightning fetches one
    ahead, so the loader cannot count them itself). Runs before ModelCheckpoint (Lightning puts that last)."""

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        for loader in _loaders(trainer.train_dataloader):
            if isinstance(loader, ResumableDataLoader):
                loader.mark_trained(loader._trained_in_pass + 1)


class RngState(Callback):
    """Saves and restores the global torch/numpy/python RNG states with the checkpoint (dropout, sampling)."""

    def state_dict(self) -> dict[str, Any]:  # tensors and plain types only: Lightning loads with weights_only
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        return {"torch": torch.get_rng_state(), "python": random.getstate(),
                "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        kind, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(state_dict["python"])
