"""Image / feature classification with cross-entropy: the LightningModule the vision papers share."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from common.lit.supervised import SupervisedModule


class ClassificationModule(SupervisedModule):
    """Wraps ``model(x) -> logits``; batches are ``(x, y)`` with integer class labels ``y``.

    Logs ``{train,val,test}/{loss,acc}`` and ``train/lr``.
    """

    def evaluate_batch(self, batch: Any) -> dict[str, torch.Tensor]:
        """Mean loss and accuracy over the batch."""
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(dim=-1) == y).float().mean()
        return {"loss": loss, "acc": acc}
