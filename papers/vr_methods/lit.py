"""One manual-optimization LightningModule for every VR method: the extra passes live here, the maths in the
optimizers. Plain optimizers (SGD, AdamW, momentum) take the same path minus the extras, so every arm of a
claim shares data order, logging and probes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from common.lit.classification import ClassificationModule
from common.lit.factories import OptimizerFactory, SchedulerFactory
from common.optim.full_gradient import all_reduce_mean_, full_gradient
from papers.vr_methods.batchnorm import frozen_batchnorm_stats
from papers.vr_methods.cluster_momentum import ClusterMomentum
from papers.vr_methods.storm import STORM
from papers.vr_methods.svrg import SVRG

Batches = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


class Probe(Protocol):
    """Measurements taken every ``every`` steps: ``before`` sees x_t before the update, ``after`` x_{t+1}."""

    every: int

    def before(self, module: VRClassifier, step: int) -> None: ...

    def after(self, module: VRClassifier, step: int) -> None: ...

    def at_end(self, module: VRClassifier, step: int) -> None: ...


def mean_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return F.cross_entropy(model(batch[0]), batch[1])


class VRClassifier(ClassificationModule):
    """Cross-entropy classification with manual optimization.

    * SVRG: at the start of every ``snapshot_every`` epochs, the full gradient over ``snapshot_batches()`` (all-reduced
      under DDP) and ``take_snapshot``; every step, grad f_B(theta~) on the step's batch (with the snapshot swapped
      in), then the usual backward and step. Batch-norm running statistics are frozen around the extra forwards
      (``bn_mode``). An interval whose alpha is 0 (alpha-SVRG's last) skips both extra passes.
    * STORM: every step after the first, g(x_{t-1}; xi_t) on the step's batch, then the usual backward and step.
    * ClusterMomentum: the batch's third element names its cluster (``VRFashionMNIST``).
    Training batches may carry a third element (the cluster); other methods ignore it.
    """

    def __init__(self, model: nn.Module, optimizer_factory: OptimizerFactory,
                 scheduler_factory: SchedulerFactory | None = None, *, snapshot_batches: Batches | None = None,
                 snapshot_every: int = 1, bn_mode: str = "freeze", probes: Iterable[Probe] = ()) -> None:
        super().__init__(model, optimizer_factory, scheduler_factory)
        self.automatic_optimization = False
        self.snapshot_batches, self.snapshot_every, self.bn_mode = snapshot_batches, snapshot_every, bn_mode
        self.probes = list(probes)
        self.full_passes = 0  # snapshot passes done (compute accounting)

    def raw_optimizer(self) -> torch.optim.Optimizer:
        opt = self.optimizers()
        return getattr(opt, "optimizer", opt)

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.raw_optimizer().param_groups for p in g["params"]]

    def _grads_at(self, batch: tuple[torch.Tensor, ...]) -> list[torch.Tensor | None]:
        with torch.enable_grad(), frozen_batchnorm_stats(self.model, self.bn_mode):
            grads = list(torch.autograd.grad(mean_loss(self.model, batch), self._params(), allow_unused=True))
        present = [g for g in grads if g is not None]
        all_reduce_mean_(present)  # DDP averages the main backward; the extra gradient must match it
        return grads

    def on_train_epoch_start(self) -> None:
        opt = self.raw_optimizer()
        if not isinstance(opt, SVRG) or self.current_epoch % self.snapshot_every:
            return
        upcoming = opt.param_groups[0]
        interval = int(next((opt.state[p]["svrg_interval"] for p in self._params()
                             if "svrg_interval" in opt.state.get(p, {})), -1)) + 1
        if upcoming["schedule"] != "optimal" and opt._scalar_alpha(upcoming, interval) == 0:
            opt.take_snapshot([None] * len(self._params()))  # alpha = 0: the correction is off, skip the pass
            return
        if self.snapshot_batches is None:
            raise ValueError("SVRG needs snapshot_batches (the training set) for its full-gradient pass")
        with frozen_batchnorm_stats(self.model, self.bn_mode):
            mu, _ = full_gradient(self._params(), lambda b: mean_loss(self.model, b), self.snapshot_batches())
        self.full_passes += 1
        opt.take_snapshot(mu)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        lopt, sched = self.optimizers(), self.lr_schedulers()
        opt = self.raw_optimizer()
        xy = (batch[0], batch[1])
        step = self.global_step
        due = [p for p in self.probes if (p.every and step % p.every == 0) or step in getattr(p, "at", ())]
        for p in due:
            p.before(self, step)
        if isinstance(opt, SVRG) and opt.has_snapshot():
            alpha = opt.current_coefficient()
            if alpha is None or alpha != 0:
                with opt.snapshot_params():
                    opt.record_snapshot_grad(self._grads_at(xy))
        if isinstance(opt, STORM) and opt.has_previous():
            with opt.previous_params():
                opt.record_previous_grad(self._grads_at(xy))
        lopt.zero_grad()
        loss = mean_loss(self.model, xy)
        self.manual_backward(loss)
        if isinstance(opt, ClusterMomentum):
            lopt.step(cluster=int(batch[2][0]))
        else:
            lopt.step()
        if sched is not None:
            sched.step()
        for p in due:
            p.after(self, step)
        n = xy[1].size(0)
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, batch_size=n)
        self.log("train/lr", opt.param_groups[0]["lr"], on_step=True, on_epoch=False, batch_size=n)
        return loss.detach()

    def on_train_end(self) -> None:
        for p in self.probes:
            p.at_end(self, self.global_step)


def chunks(x: torch.Tensor, y: torch.Tensor, size: int) -> Batches:
    """``() -> batches`` over in-memory tensors, in order (full-gradient passes, full-pass losses)."""
    return lambda: ((x[i:i + size], y[i:i + size]) for i in range(0, len(x), size))


@torch.no_grad()
def full_loss(model: nn.Module, batches: Batches) -> float:
    """Mean cross-entropy over all examples (the full-pass training loss)."""
    total, count = 0.0, 0
    for x, y in batches():
        total += float(F.cross_entropy(model(x), y, reduction="sum"))
        count += len(y)
    return total / count


class TrainLossProbe:
    """Full-pass training loss every ``every`` steps and at the steps in ``at`` (before the update, i.e. after that many
    updates) and at the end: ``curve`` [(step, loss)]."""

    def __init__(self, batches: Batches, every: int, at: Iterable[int] = ()) -> None:
        self.batches, self.every = batches, every
        self.at = frozenset(int(s) for s in at)  # extra steps to measure (a step claim's f*T)
        self.curve: list[tuple[int, float]] = []

    def before(self, module: VRClassifier, step: int) -> None:
        self.curve.append((step, full_loss(module.model, self.batches)))

    def after(self, module: VRClassifier, step: int) -> None:
        return None

    def at_end(self, module: VRClassifier, step: int) -> None:
        if not self.curve or self.curve[-1][0] != step:
            self.curve.append((step, full_loss(module.model, self.batches)))


class EstimatorErrorProbe:
    """||d_t - grad F(x_t)||^2 every ``every`` steps: the full gradient at x_t before the update, the estimator d_t
    (optimizer state ``key``: STORM's ``d``, SGD's ``momentum_buffer``) after it. ``curve`` [(step, error)]."""

    def __init__(self, batches: Batches, every: int, key: str) -> None:
        self.batches, self.every, self.key = batches, every, key
        self.curve: list[tuple[int, float]] = []
        self._full: list[torch.Tensor] | None = None

    def before(self, module: VRClassifier, step: int) -> None:
        self._full, _ = full_gradient(module._params(), lambda b: mean_loss(module.model, b), self.batches())

    def after(self, module: VRClassifier, step: int) -> None:
        opt = module.raw_optimizer()
        err = 0.0
        for p, g in zip(module._params(), self._full or [], strict=True):
            d = opt.state[p].get(self.key)
            d = p.grad if d is None else d  # no buffer (momentum 0): the estimator is the gradient itself
            err += float((d.to(torch.float64) - g.to(torch.float64)).pow(2).sum())
        self.curve.append((step, err))

    def at_end(self, module: VRClassifier, step: int) -> None:
        return None


class VarianceProbe:
    """alpha-SVRG's gradient-variance metrics (``papers.vr_methods.variance``) of the arm's own estimator, every
    ``every`` steps before the update, over ``n_probes`` random minibatches of the training tensors: the plain
    minibatch gradient, or for SVRG g_B(theta) - alpha (g_B(theta~) - mu~) at the current alpha. ``points``
    [(step, metrics)]."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, every: int, n_probes: int, batch_size: int,
                 seed: int) -> None:
        self.x, self.y, self.every, self.n_probes, self.batch_size = x, y, every, n_probes, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.points: list[tuple[int, dict[str, float]]] = []

    def before(self, module: VRClassifier, step: int) -> None:
        from papers.vr_methods.variance import variance_metrics

        opt, params = module.raw_optimizer(), module._params()
        svrg = isinstance(opt, SVRG) and opt.has_snapshot()
        alpha = opt.current_coefficient() if svrg else 0.0
        rows = []
        for _ in range(self.n_probes):
            idx = torch.randint(0, len(self.y), (self.batch_size,), generator=self.gen)
            batch = (self.x[idx], self.y[idx])
            with torch.enable_grad():
                g = torch.autograd.grad(mean_loss(module.model, batch), params, allow_unused=True)
            flat = torch.cat([torch.zeros_like(p).reshape(-1) if gi is None else gi.reshape(-1)
                              for p, gi in zip(params, g, strict=True)])
            if svrg and alpha:
                with opt.snapshot_params(), frozen_batchnorm_stats(module.model, module.bn_mode), \
                        torch.enable_grad():
                    gs = torch.autograd.grad(mean_loss(module.model, batch), params, allow_unused=True)
                mu = [opt.state[p]["svrg_full_grad"] for p in params]
                corr = torch.cat([(torch.zeros_like(p) if s is None else s - m).reshape(-1)
                                  for p, s, m in zip(params, gs, mu, strict=True)])
                flat = flat - alpha * corr
            rows.append(flat)
        self.points.append((step, variance_metrics(torch.stack(rows))))

    def after(self, module: VRClassifier, step: int) -> None:
        return None

    def at_end(self, module: VRClassifier, step: int) -> None:
        return None
