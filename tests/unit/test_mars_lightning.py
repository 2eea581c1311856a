"""Exact MARS driven from a Lightning ``training_step`` with manual optimization.

The optimizer is reached through Lightning's ``LightningOptimizer`` wrapper, so this checks that the exact-mode API
(``update_previous_grad`` / ``update_last_grad``) and the closure-only ``step`` work there, and that the fit gives the
plain loop's trajectory bit for bit."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from papers.mars.optim import MARS

OPT_KW = {"lr": 5e-2, "gamma": 0.5, "is_approx": False}


def quad_loss(x: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    a, b = batch
    return 0.5 * ((a @ x - b) ** 2).sum()


def batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(11)
    return [(torch.randn(6, 4, generator=gen, dtype=torch.float64),
             torch.randn(6, 2, generator=gen, dtype=torch.float64)) for _ in range(n)]


def exact_step_same_batch(model_x: torch.nn.Parameter, prev: torch.Tensor | None, opt, batch, backward) -> torch.Tensor:
    """One look-back iteration: grad f(x_{t-1}, xi_t) recorded first, then the real step on the same batch."""
    if prev is not None:
        current = model_x.detach().clone()
        with torch.no_grad():
            model_x.copy_(prev)
        opt.zero_grad()
        backward(quad_loss(model_x, batch))
        torch.nn.utils.clip_grad_norm_([model_x], 1.0)
        opt.update_previous_grad()
        opt.update_last_grad()
        with torch.no_grad():
            model_x.copy_(current)
    new_prev = model_x.detach().clone()
    opt.zero_grad()
    backward(quad_loss(model_x, batch))
    torch.nn.utils.clip_grad_norm_([model_x], 1.0)
    opt.step()
    return new_prev


class ExactMarsQuadratic(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.x = torch.nn.Parameter(torch.ones(4, 2, dtype=torch.float64))
        self.prev: torch.Tensor | None = None

    def configure_optimizers(self) -> MARS:
        return MARS([self.x], **OPT_KW)

    def training_step(self, batch, batch_idx: int) -> None:
        self.prev = exact_step_same_batch(self.x, self.prev, self.optimizers(), batch, self.manual_backward)


def test_exact_mars_in_lightning_manual_optimization_equals_the_plain_loop() -> None:
    data = batches(8)
    module = ExactMarsQuadratic()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(data, batch_size=None))

    x = torch.nn.Parameter(torch.ones(4, 2, dtype=torch.float64))
    opt = MARS([x], **OPT_KW)
    prev = None
    for batch in data:
        prev = exact_step_same_batch(x, prev, opt, batch, torch.Tensor.backward)

    assert trainer.global_step == len(data)
    state = trainer.optimizers[0].state[module.x]
    assert state["step"] == len(data) and state["last_grad_step"] == len(data) - 1
    assert torch.equal(module.x.detach(), x.detach())
    assert not torch.equal(x.detach(), torch.ones(4, 2, dtype=torch.float64))
