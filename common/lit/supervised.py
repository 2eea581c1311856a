"""The shared shape of our LightningModules: a model, an injected optimizer, metrics from one place."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from common.lit.factories import (
    OptimizerFactory,
    ParamGroupsFn,
    SchedulerFactory,
    build_optimizers,
    current_lr,
)


class SupervisedModule(pl.LightningModule):
    """Wraps ``model``; subclasses define ``evaluate_batch(batch) -> {"loss", ...}``, the single
    definition of the metrics that training, validation, test and the step-0 evaluation all log
    (as ``train/<name>``, ``val/<name>``, ``test/<name>``, plus ``train/lr``)."""

    def __init__(
        self,
        model: nn.Module,
        optimizer_factory: OptimizerFactory,
        scheduler_factory: SchedulerFactory | None = None,
        param_groups: ParamGroupsFn | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer_factory
        self.scheduler_factory = scheduler_factory
        self.param_groups = param_groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def evaluate_batch(self, batch: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        metrics = self.evaluate_batch(batch)
        n = batch[1].size(0)
        for name, value in metrics.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False, batch_size=n)
        self.log("train/lr", current_lr(self.trainer.optimizers[0]), on_step=True, on_epoch=False, batch_size=n)
        return metrics["loss"]

    def _eval_step(self, stage: str, batch: Any) -> None:
        metrics = self.evaluate_batch(batch)
        n = batch[1].size(0)
        for name, value in metrics.items():
            self.log(f"{stage}/{name}", value, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def configure_optimizers(self) -> Any:
        return build_optimizers(self.model, self.optimizer_factory, self.scheduler_factory, self.param_groups)
