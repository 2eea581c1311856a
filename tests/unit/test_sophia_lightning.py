"""SophiaG under Lightning: automatic optimization (``optimizer.step(closure)``, which cannot pass ``bs``) and manual
optimization with the GNB update every k steps keyed on ``global_step``."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from papers.sophia.hessian import gnb_hessian_step, hessian_update_due
from papers.sophia.optim import SophiaG

KW = {"lr": 0.05, "betas": (0.9, 0.5), "rho": 5.0, "weight_decay": 0.1, "bs": 24}
K = 4


def data() -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(48, 6, generator=gen), torch.randint(0, 3, (48,), generator=gen))


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(6, 3)


def trainer(steps: int) -> pl.Trainer:
    return pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )


class Automatic(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = model()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> SophiaG:
        return SophiaG(self.net.parameters(), **KW)


def test_automatic_optimization_steps_through_the_closure_like_a_plain_loop() -> None:
    module = Automatic()
    trainer(6).fit(module, DataLoader(data(), batch_size=24))

    net = model()
    opt = SophiaG(net.parameters(), **KW)
    for _ in range(3):
        for x, y in DataLoader(data(), batch_size=24):

            def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                opt.zero_grad()
                loss = F.cross_entropy(net(x), y)
                loss.backward()
                return loss

            opt.step(closure)
    for p, q in zip(module.net.parameters(), net.parameters(), strict=True):
        assert torch.equal(p, q)
    assert float(module.trainer.optimizers[0].state[module.net.weight]["step"]) == 6


class Manual(pl.LightningModule):
    """The order: normal backward, clip 1.0, step; when due, a GNB pass on the next batch, then log win_rate."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.net = model()
        self.updates: list[tuple[int, float]] = []
        self.first_nonzero_h: int | None = None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        opt = self.optimizers()
        x, y = batch
        opt.zero_grad()
        self.manual_backward(F.cross_entropy(self.net(x), y))
        self.clip_gradients(opt, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
        opt.step()
        state = opt.optimizer.state[self.net.weight]
        if self.first_nonzero_h is None and state["hessian"].any():
            self.first_nonzero_h = self.global_step
        if hessian_update_due(self.global_step, K):
            gen = torch.Generator().manual_seed(self.global_step)
            stats = gnb_hessian_step(opt.optimizer, self.net(x.flip(0)), grad_clip=1.0, generator=gen)
            self.updates.append((self.global_step, stats["win_rate"]))

    def configure_optimizers(self) -> SophiaG:
        return SophiaG(self.net.parameters(), **KW)


def test_manual_optimization_updates_h_after_every_kth_global_step() -> None:
    module = Manual()
    trainer(10).fit(module, DataLoader(data(), batch_size=24))
    assert [s for s, _ in module.updates] == [4, 8]
    assert module.first_nonzero_h == 5  # h is first seen by the step after the first update: K sign steps
    assert all(0 <= w <= 1 for _, w in module.updates)
