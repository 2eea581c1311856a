"""An experiment arm's optimizer from its preset section: the paper's own method(s) or a baseline."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from common.errors import ConfigError
from common.optim.baselines import OptimizerFactory, baseline_factory

# (lr, arm spec, where) -> factory; a paper registers one per method it implements.
MethodBuilder = Callable[[float, Mapping[str, Any], str], OptimizerFactory]


def require(spec: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    """Settings a paper wants written out in every preset (never inherited from a default)."""
    missing = [k for k in keys if k not in spec]
    if missing:
        raise ConfigError(f"{where}: set {', '.join(missing)} explicitly in the preset")


def arm_optimizer(arm: str, lr: float, spec: Mapping[str, Any],
                  methods: Mapping[str, MethodBuilder]) -> OptimizerFactory:
    kind = spec.get("optimizer", arm)
    where = f"arm {arm}"
    if kind in methods:
        return methods[kind](lr, spec, where)
    factory = baseline_factory(kind, lr, spec, where)
    if factory is None:
        valid = ", ".join([*methods, "adam", "adamw", "radam", "sgd"])
        raise ConfigError(f"{where}: unknown optimizer {kind!r}; valid: {valid}")
    return factory
