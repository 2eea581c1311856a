"""torch.optim baselines built from a preset section, so every paper names its baseline the same way.

Weight decay must name its style when it is non-zero (``weight_decay_style: l2 | decoupled``): torch's
Adam and the papers' baselines differ exactly there, and a bare number hides it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from common.errors import ConfigError

OptimizerFactory = Callable[[Iterable[Any]], torch.optim.Optimizer]
DECAY_STYLES = ("l2", "decoupled")


def decay_style(spec: Mapping[str, Any], where: str) -> str:
    """The arm's weight-decay style; required (never defaulted) when weight_decay > 0."""
    wd = float(spec.get("weight_decay", 0.0))
    style = spec.get("weight_decay_style")
    if wd > 0 and style not in DECAY_STYLES:
        raise ConfigError(f"{where}: weight_decay={wd:g} needs weight_decay_style: l2 or decoupled")
    return style or "l2"


def baseline_factory(kind: str, lr: float, spec: Mapping[str, Any], where: str = "arm") -> OptimizerFactory | None:
    """Adam (L2 -> torch Adam, decoupled -> torch AdamW), torch's RAdam, or SGD-momentum (L2 only); None for
    a kind that is not a torch.optim baseline."""
    betas = tuple(spec.get("betas", (0.9, 0.999)))
    eps = float(spec.get("eps", 1e-8))
    wd = float(spec.get("weight_decay", 0.0))
    if kind in ("adam", "adamw"):
        style = "decoupled" if kind == "adamw" and wd > 0 else decay_style(spec, where)
        cls = torch.optim.AdamW if style == "decoupled" else torch.optim.Adam
        return lambda params: cls(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if kind == "radam":  # torch's RAdam (its un-rectified steps are SGD steps; see papers/radam for the official)
        decoupled = decay_style(spec, where) == "decoupled"
        return lambda params: torch.optim.RAdam(params, lr=lr, betas=betas, eps=eps, weight_decay=wd,
                                                decoupled_weight_decay=decoupled)
    if kind == "sgd":
        if decay_style(spec, where) != "l2":
            raise ConfigError(f"{where}: SGD supports weight_decay_style l2 only")
        momentum = float(spec.get("momentum", 0.9))
        nesterov = bool(spec.get("nesterov", False))
        return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd, nesterov=nesterov)
    return None
