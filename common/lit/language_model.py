"""Next-token language modelling: the LightningModule the GPT experiments share."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer

from common.lit.factories import OptimizerFactory, ParamGroupsFn, SchedulerFactory
from common.lit.supervised import SupervisedModule


class LanguageModelModule(SupervisedModule):
    """Wraps ``model(idx[B, T]) -> logits[B, T, V]``; batches are ``(x, y)`` LongTensors, y = x shifted.

    Loss is cross-entropy averaged over every token. Logs ``train/loss``, ``train/lr``, ``val/loss``,
    ``test/loss``. ``grad_clip`` clips the global gradient norm (nanoGPT's ``grad_clip``) in the module, so
    a paper's recipe carries it without a trainer flag; leave the trainer's ``gradient_clip_val`` unset then.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer_factory: OptimizerFactory,
        scheduler_factory: SchedulerFactory | None = None,
        grad_clip: float | None = None,
        param_groups: ParamGroupsFn | None = None,
    ) -> None:
        super().__init__(model, optimizer_factory, scheduler_factory, param_groups)
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
        self.grad_clip = grad_clip

    def evaluate_batch(self, batch: Any) -> dict[str, torch.Tensor]:
        """Mean per-token cross-entropy over the batch."""
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        return {"loss": loss}

    def configure_gradient_clipping(
        self,
        optimizer: Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        if self.grad_clip is None:
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        if gradient_clip_val is not None:
            raise ValueError(
                f"grad_clip={self.grad_clip} is set on the module and gradient_clip_val={gradient_clip_val} "
                "on the Trainer; set only one"
            )
        self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
