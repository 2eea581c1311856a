"""Build an arm's optimizer from its preset section: RAdam, or a torch.optim baseline."""

from __future__ import annotations

from typing import Any

from common.errors import ConfigError
from common.optim.baselines import OptimizerFactory, baseline_factory
from papers.radam.optim import RAdam


def optimizer_factory(arm: str, lr: float, spec: Any) -> OptimizerFactory:
    kind = spec.get("optimizer", arm)
    if kind == "radam":
        if "degenerated_to_sgd" not in spec:  # spec §3.2: never inherit the default silently
            raise ConfigError(f"arm {arm}: radam arms must set degenerated_to_sgd explicitly")
        betas = tuple(spec.get("betas", (0.9, 0.999)))
        eps, wd, dts = float(spec.get("eps", 1e-8)), float(spec.get("weight_decay", 0.0)), bool(
            spec.degenerated_to_sgd)
        return lambda params: RAdam(params, lr=lr, betas=betas, eps=eps, weight_decay=wd, degenerated_to_sgd=dts)
    factory = baseline_factory(kind, lr, spec)
    if factory is None:
        raise ConfigError(f"arm {arm}: unknown optimizer {kind!r} (radam, adam, sgd)")
    return factory
