"""Claims M1 (MARS-AdamW beats AdamW at equal tokens) and M2 (the gain is variance reduction: MARS beats its
own gamma=0 control): one protocol sweep of the arms on a tiny pre-LN GPT through the shared LM sweep. Both
claims judge the same measurement (the runner shares it when the claims' configs are equal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.lit.lm_sweep import LMArms, default_param_groups, lm_sweep
from common.optim.arms import require
from common.optim.baselines import OptimizerFactory
from common.results.context import RunContext
from common.results.paper import Measurement
from papers.mars.optim import MARS


def _mars(lr: float, spec: Mapping[str, Any], where: str) -> OptimizerFactory:
    require(spec, ["mars_type", "gamma", "betas", "weight_decay", "lr_1d_ratio", "betas_1d", "weight_decay_1d",
                   "is_approx", "clip_c"], where)
    kw = dict(mars_type=str(spec["mars_type"]), gamma=float(spec["gamma"]), betas=tuple(spec["betas"]),
              eps=float(spec.get("eps", 1e-8)), weight_decay=float(spec["weight_decay"]),
              lr_1d=lr * float(spec["lr_1d_ratio"]), betas_1d=tuple(spec["betas_1d"]),
              weight_decay_1d=float(spec["weight_decay_1d"]), is_approx=bool(spec["is_approx"]),
              clip_c=bool(spec["clip_c"]))
    return lambda params: MARS(params, lr=lr, **kw)


# AdamW decays matrices only (nanoGPT); MARS takes every tensor and routes 1-D ones to its own AdamW path
ARMS = LMArms(methods={"mars": _mars}, name="mars",
              param_groups=lambda spec: None if spec.optimizer == "mars" else default_param_groups(spec))


def run_mars(cfg: Any, ctx: RunContext) -> Measurement:
    return lm_sweep(cfg, ctx, ARMS).measurement()
