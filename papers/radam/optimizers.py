"""RAdam as an experiment arm (baselines come from common.optim)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.optim.arms import arm_optimizer, require
from common.optim.baselines import OptimizerFactory
from papers.radam.optim import RAdam


def radam_builder(lr: float, spec: Mapping[str, Any], where: str) -> OptimizerFactory:
    """RAdam from an arm's preset section; ``degenerated_to_sgd`` must be written out (it changes the first
    steps, and the official default differs between the paper's experiments)."""
    require(spec, ["degenerated_to_sgd"], where)
    kw = dict(betas=tuple(spec.get("betas", (0.9, 0.999))), eps=float(spec.get("eps", 1e-8)),
              weight_decay=float(spec.get("weight_decay", 0.0)), degenerated_to_sgd=bool(spec["degenerated_to_sgd"]))
    return lambda params: RAdam(params, lr=lr, **kw)


def optimizer_factory(arm: str, lr: float, spec: Any) -> OptimizerFactory:
    return arm_optimizer(arm, lr, spec, {"radam": radam_builder})
