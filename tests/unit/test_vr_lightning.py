"""The manual-optimization module (papers.vr_methods.lit.VRClassifier) drives SVRG, STORM and ClusterMomentum
exactly as the plain loops of their docstrings do (Lightning hands ``step`` a no-op closure; the extra passes
must still see the right parameters)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from common.optim.full_gradient import full_gradient
from papers.vr_methods import STORM, SVRG, ClusterMomentum
from papers.vr_methods.lit import VRClassifier, chunks

pytestmark = pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(48, 5, generator=g), torch.randint(0, 3, (48,), generator=g)


def _batches(x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    return [(x[i:i + 8], y[i:i + 8], torch.full((8,), (i // 8) % 3)) for i in range(0, 48, 8)]


def _model() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))


def _fit(factory, epochs: int = 2) -> torch.nn.Module:
    x, y = _data()
    model = _model()
    module = VRClassifier(model, factory, snapshot_batches=chunks(x, y, 16))
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0)
    trainer.fit(module, DataLoader(_batches(x, y), batch_size=None))
    return model


def _loss(model: torch.nn.Module, b) -> torch.Tensor:
    return F.cross_entropy(model(b[0]), b[1])


def test_svrg_through_lightning_equals_the_plain_loop() -> None:
    make = lambda ps: SVRG(ps, base=lambda q: torch.optim.SGD(q, lr=0.1, momentum=0.9))  # noqa: E731
    fitted = _fit(make)
    x, y = _data()
    model = _model()
    opt = make(model.parameters())
    params = list(model.parameters())
    for _ in range(2):
        mu, _ = full_gradient(params, lambda b: _loss(model, b), chunks(x, y, 16)())
        opt.take_snapshot(mu)
        for b in _batches(x, y):
            with opt.snapshot_params():
                opt.record_snapshot_grad(torch.autograd.grad(_loss(model, b), params))
            opt.zero_grad()
            _loss(model, b).backward()
            opt.step()
    for p, q in zip(fitted.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_storm_through_lightning_equals_the_closure_loop() -> None:
    fitted = _fit(lambda ps: STORM(ps, lr=0.2, a=0.1))
    x, y = _data()
    model = _model()
    opt = STORM(model.parameters(), lr=0.2, a=0.1)
    for _ in range(2):
        for b in _batches(x, y):
            def closure(b=b) -> torch.Tensor:
                opt.zero_grad()
                loss = _loss(model, b)
                loss.backward()
                return loss

            opt.step(closure)
    for p, q in zip(fitted.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    momentum = _fit(lambda ps: torch.optim.SGD(ps, lr=0.2, momentum=0.9, dampening=0.9))
    assert not torch.allclose(next(momentum.parameters()), next(fitted.parameters()))  # the correction acts


def test_cluster_momentum_through_lightning_uses_each_batch_cluster() -> None:
    make = lambda ps: ClusterMomentum(ps, lr=0.1, n_clusters=3)  # noqa: E731
    fitted = _fit(make, epochs=1)
    x, y = _data()
    model = _model()
    opt = make(model.parameters())
    for b in _batches(x, y):
        opt.zero_grad()
        _loss(model, b).backward()
        opt.step(cluster=int(b[2][0]))
    for p, q in zip(fitted.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_train_loss_probe_also_measures_at_the_requested_steps() -> None:
    """A step claim's f*T loss is read at an exact step: ``at`` adds steps that ``every`` does not hit, each the
    full-pass loss after that many updates (step 0: the initial model)."""
    from papers.vr_methods.lit import TrainLossProbe, full_loss

    x, y = _data()
    probe = TrainLossProbe(chunks(x, y, 16), every=4, at=[3, 7])
    module = VRClassifier(_model(), lambda ps: torch.optim.SGD(ps, lr=0.1), probes=[probe])
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0)
    trainer.fit(module, DataLoader(_batches(x, y), batch_size=None))
    assert [s for s, _ in probe.curve] == [0, 3, 4, 7, 8, 12]
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = {}
    step = 0
    for _ in range(2):
        for b in _batches(x, y):
            if step in (3, 7):
                losses[step] = full_loss(model, chunks(x, y, 16))
            opt.zero_grad()
            _loss(model, b).backward()
            opt.step()
            step += 1
    got = dict(probe.curve)
    assert got[3] == pytest.approx(losses[3], rel=1e-6) and got[7] == pytest.approx(losses[7], rel=1e-6)
