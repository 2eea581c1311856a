"""RAdam as an experiment arm (baselines come from common.optim)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.optim.arms import arm_optimizer, require
from common.optim.baselines import OptimizerFactory
from papers.radam.optim import RAdam


def _radam(lr: float, spec: Mapping[str, Any], where: str) -> OptimizerFactory:
    require(spec, ["degenerated_to_sgd"], where)  # spec §3.2: never inherit the default silently
    kw = dict(betas=tuple(spec.get("betas", (0.9, 0.999))), eps=float(spec.get("eps", 1e-8)),
              weight_decay=float(spec.get("weight_decay", 0.0)), degenerated_to_sgd=bool(spec["degenerated_to_sgd"]))
    return lambda params: RAdam(params, lr=lr, **kw)


def optimizer_factory(arm: str, lr: float, spec: Any) -> OptimizerFactory:
    return arm_optimizer(arm, lr, spec, {"radam": _radam})
