"""AdaBelief as an experiment arm: every option written out in the preset (the package's defaults changed
between versions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.optim.arms import arm_optimizer, require
from common.optim.baselines import OptimizerFactory
from papers.adabelief.optim import AdaBelief

EXPLICIT = ("eps", "weight_decay", "weight_decouple", "fixed_decay", "rectify", "degenerated_to_sgd", "amsgrad")


def _adabelief(lr: float, spec: Mapping[str, Any], where: str) -> OptimizerFactory:
    require(spec, EXPLICIT, where)
    kw = dict(betas=tuple(spec.get("betas", (0.9, 0.999))), eps=float(spec["eps"]),
              weight_decay=float(spec["weight_decay"]), weight_decouple=bool(spec["weight_decouple"]),
              fixed_decay=bool(spec["fixed_decay"]), rectify=bool(spec["rectify"]),
              degenerated_to_sgd=bool(spec["degenerated_to_sgd"]), amsgrad=bool(spec["amsgrad"]))
    return lambda params: AdaBelief(params, lr=lr, **kw)


def optimizer_factory(arm: str, lr: float, spec: Any) -> OptimizerFactory:
    return arm_optimizer(arm, lr, spec, {"adabelief": _adabelief})
