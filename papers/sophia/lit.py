"""SophiaG's training loop as a LightningModule (manual optimization: the Hessian estimate is an extra pass)."""

from __future__ import annotations

from typing import Any

import torch

from common.lit.classification import ClassificationModule
from common.lit.language_model import LanguageModelModule
from papers.sophia.hessian import gnb_hessian_step, hessian_update_due


class SophiaLoop:
    """The official loop as a mixin over any of our SupervisedModules (language model or classifier): manual
    optimization, backward, global clip, step, schedule; then, for SophiaG, the GNB estimate every
    ``hessian_every`` steps on the same batch. ``hessian_trace`` keeps (step, win_rate, h mean)."""

    grad_clip: float | None

    def _sophia_setup(self, hessian_every: int | None, seed_for_labels: int) -> None:
        self.automatic_optimization = False
        self.hessian_every, self.seed = hessian_every, seed_for_labels
        self.hessian_trace: list[tuple[int, float, float]] = []

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:  # a resumed run keeps the whole trace
        checkpoint["sophia_hessian_trace"] = [list(t) for t in self.hessian_trace]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.hessian_trace = [tuple(t) for t in checkpoint.get("sophia_hessian_trace", [])]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:  # type: ignore[misc]
        opt, sched = self.optimizers(), self.lr_schedulers()
        loss = self.evaluate_batch(batch)["loss"]
        opt.zero_grad()
        self.manual_backward(loss)
        if self.grad_clip is not None:
            self.clip_gradients(opt, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
        opt.step()
        if sched is not None:
            sched.step()
        self.log("train/loss", loss.detach(), on_step=True, prog_bar=False, batch_size=batch[0].size(0))
        self.log("train/lr", opt.param_groups[0]["lr"], on_step=True, batch_size=batch[0].size(0))
        if self.hessian_every and hessian_update_due(self.global_step, self.hessian_every):
            # Ranks draw independent labels (rank 0 keeps the single-process seed); the estimate is averaged
            # across ranks inside gnb_hessian_step, so h stays identical everywhere.
            gen = torch.Generator(device=batch[0].device).manual_seed(
                self.seed * 1_000_003 + self.global_step + self.global_rank * 2**40)
            stats = gnb_hessian_step(opt.optimizer, self.model(batch[0]), grad_clip=self.grad_clip, generator=gen)
            self.hessian_trace.append((self.global_step, stats["win_rate"], stats["hessian_mean"]))
            self.log_dict({f"sophia/{k}": float(v) for k, v in stats.items()}, on_step=True,
                          batch_size=batch[0].size(0))
        return loss.detach()


class SophiaLanguageModel(SophiaLoop, LanguageModelModule):
    """A language model trained by the Sophia loop (the paper's setting)."""

    def __init__(self, *args: Any, hessian_every: int | None, seed_for_labels: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sophia_setup(hessian_every, seed_for_labels)


class SophiaClassifier(SophiaLoop, ClassificationModule):
    """An image classifier trained by the Sophia loop; labels for the GNB estimate are sampled from the class
    softmax (``bs`` is then the batch size)."""

    def __init__(self, *args: Any, hessian_every: int | None, seed_for_labels: int, grad_clip: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
        self.grad_clip = grad_clip
        self._sophia_setup(hessian_every, seed_for_labels)
