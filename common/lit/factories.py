"""How a LightningModule receives its optimizer: as factories, so configs can inject any torch.optim class.

A paper's experiment passes e.g. ``functools.partial(RAdam, lr=1e-3)`` and
``lambda opt: LambdaLR(opt, warmup)``; the module calls them on its own parameters inside
``configure_optimizers``, after Lightning has moved the model to its device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

Params: TypeAlias = Iterable[nn.Parameter] | list[dict[str, Any]]
OptimizerFactory: TypeAlias = Callable[[Params], Optimizer]
SchedulerFactory: TypeAlias = Callable[[Optimizer], LRScheduler]
ParamGroupsFn: TypeAlias = Callable[[nn.Module], list[dict[str, Any]]]


def build_optimizers(
    model: nn.Module,
    optimizer_factory: OptimizerFactory,
    scheduler_factory: SchedulerFactory | None = None,
    param_groups: ParamGroupsFn | None = None,
) -> Any:
    """Return what ``configure_optimizers`` should: the optimizer, plus its scheduler stepped every step.

    ``param_groups(model)`` lets a caller split parameters (e.g. no weight decay on norms and biases);
    without it the optimizer gets ``model.parameters()``.
    """
    params: Params = param_groups(model) if param_groups is not None else model.parameters()
    optimizer = optimizer_factory(params)
    if scheduler_factory is None:
        return optimizer
    scheduler = scheduler_factory(optimizer)
    schedule = {"scheduler": scheduler, "interval": "step", "frequency": 1}
    return {"optimizer": optimizer, "lr_scheduler": schedule}


def current_lr(optimizer: Optimizer) -> float:
    """Learning rate of the first param group: the value a schedule plot shows."""
    return float(optimizer.param_groups[0]["lr"])
