"""A language-model module that keeps the per-step traces the Stable-SPAM claims need: training loss (for the
spike count), the global gradient norm before and after the optimizer's own transforms, AdaClip's clip fraction
and threshold. Everything else (loss, clipping, schedule) is the shared ``LanguageModelModule``."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import torch
from torch.optim import Optimizer

from common.lit.language_model import LanguageModelModule


class TracingLanguageModel(LanguageModelModule):
    """``trace[name]`` lists one float per optimizer step: ``loss``, ``grad_norm_in`` (raw, before clipping),
    ``grad_norm_out`` (what the update sees: after the global clip for Adam, after AdaClip+AdaGN or SPAM's clip for
    those), ``clip_fraction`` and ``threshold`` (NaN where the optimizer has no such quantity)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trace: dict[str, list[float]] = {k: [] for k in ("loss", "grad_norm_in", "grad_norm_out",
                                                               "clip_fraction", "threshold")}
        self._norm_in: float | None = None

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        self.trace["loss"].append(float(loss.detach()))
        return loss

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:  # Lightning calls this before clipping
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        self._norm_in = float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(g.detach(), dtype=torch.float32) for g in grads]))) if grads else None

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        opt = self.trainer.optimizers[0]
        stats = getattr(opt, "stats", None) or {}
        norm_in = self._norm_in if self._norm_in is not None else float("nan")
        out = stats.get("grad_norm_out")
        if out is None:  # a torch baseline: the global clip is the only transform
            out = norm_in if not self.grad_clip else min(norm_in, self.grad_clip)
        self.trace["grad_norm_in"].append(norm_in)
        self.trace["grad_norm_out"].append(float(out))
        for key, name in (("clip_fraction", "clip_fraction"), ("threshold", "threshold_mean")):
            value = stats.get(name)
            self.trace[key].append(float("nan") if value is None else float(value))


def count_spikes(losses: Sequence[float], window: int = 20, factor: float = 1.5) -> int:
    """Steps whose training loss exceeds ``factor`` x the median of the previous ``window`` losses: a spike."""
    n = 0
    for i in range(window, len(losses)):
        if losses[i] > factor * statistics.median(losses[i - window:i]):
            n += 1
    return n


def subsample(values: Sequence[float], every: int) -> list[tuple[int, float]]:
    """``(step, value)`` every ``every`` steps (and the last) to 5 significant digits, for records and plots."""
    idx = sorted(set(range(0, len(values), every)) | ({len(values) - 1} if values else set()))
    return [(i, float(f"{values[i]:.5g}")) for i in idx]
