"""Cluster multi-momentum, after Tondji, Kashubin & Cisse (arXiv:2111.11828, 2021). No official code exists;
the mechanism here is reconstructed from the abstract."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.optim.base import CheckedOptimizer
from common.optim.validation import (
    Check,
    check_lr,
    check_real,
    check_weight_decay,
    validate_group,
)

__all__ = ["ClusterMomentum"]


def _check_weights(value: object) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) == 0:
        raise ValueError(f"cluster_weights must be a non-empty sequence of numbers >= 0, got {value!r}")
    weights = tuple(check_real(f"cluster_weights[{i}]", w, low=0.0) for i, w in enumerate(value))
    if not math.isclose(sum(weights), 1.0, rel_tol=1e-6, abs_tol=1e-9):
        raise ValueError(f"cluster_weights must sum to 1 (the cluster priors n_k / n), got sum {sum(weights)}")
    return weights


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Check] = {
        "lr": check_lr,
        "momentum": lambda v: check_real("momentum", v, low=0.0, high=1.0, high_inclusive=False),
        "dampening": lambda v: check_real("dampening", v, low=0.0, high=1.0),
        "nu": lambda v: check_real("nu", v, low=0.0, high=1.0),
        "weight_decay": check_weight_decay,
        "cluster_weights": _check_weights,
    }
    return validate_group(group, checks)


class ClusterMomentum(CheckedOptimizer):
    """Variance Reduction in Deep Learning: More Momentum is All You Need (Tondji, Kashubin, Cisse; arXiv:2111.11828)
    -- **after Tondji et al.; no official code** (the abstract mentions a JAX implementation that is not public).
    Everything below is our reading of the abstract ("exploit the ubiquitous clustering structure of rich datasets",
    SGD+M / QHM with a multi-momentum strategy in the style of Yuan et al. 2019's COVER), not the paper's code.

    One momentum buffer per data cluster; each minibatch comes from one cluster k (``ClusterBatchSampler``)::

        g     = grad + weight_decay * theta
        buf_k = g                                   (first visit of cluster k: torch SGD's convention)
        buf_k = momentum * buf_k + (1 - dampening) * g
        d     = sum_j w_j buf_j                     (w_j = cluster prior n_j / n; unvisited buffers are 0)
        d     = (1 - nu) g + nu d                   (QHM variant; nu = 1, the default, is plain multi-momentum)
        theta = theta - lr * d

    This is SAG/COVER at cluster granularity: stale per-cluster averages replace the across-cluster variance of
    the minibatch gradient. With one cluster (weights (1,)) and nu = 1 it is ``torch.optim.SGD(momentum,
    dampening)`` bit for bit. The IGT variant of the paper (gradient at an extrapolated point) is not implemented.

    Args:
        params: parameters or param groups.
        lr: >= 0.
        n_clusters: K >= 1 (ignored when ``cluster_weights`` is given: K = its length).
        momentum: in [0, 1). Default 0.9.
        dampening: in [0, 1]. Default 0 (torch's default; dampening = momentum gives EMA buffers).
        cluster_weights: K priors >= 0 summing to 1; default uniform 1/K.
        nu: QHM's immediate-discount factor in [0, 1]. Default 1.
        weight_decay: coupled L2, >= 0. Default 0.

    ``step(closure=None, cluster=k)`` names the minibatch's cluster (required when K > 1). State per parameter:
    ``momentum_buffers`` (K x param shape) and ``visited`` (K bools).
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, n_clusters: int = 1, momentum: float = 0.9,
                 dampening: float = 0.0, cluster_weights: Sequence[float] | None = None, nu: float = 1.0,
                 weight_decay: float = 0.0) -> None:
        if cluster_weights is None:
            if isinstance(n_clusters, bool) or not isinstance(n_clusters, int) or n_clusters < 1:
                raise ValueError(f"n_clusters must be a positive integer, got {n_clusters!r}")
            cluster_weights = [1.0 / n_clusters] * n_clusters
            if n_clusters == 1:
                cluster_weights = [1.0]
        super().__init__(params, _validated({"lr": lr, "momentum": momentum, "dampening": dampening,
                                             "cluster_weights": tuple(cluster_weights), "nu": nu,
                                             "weight_decay": weight_decay}))

    _validate_group = staticmethod(_validated)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None,  # type: ignore[override]
             cluster: int | None = None) -> float | None:
        """One update; ``cluster`` is the index of the cluster the minibatch was drawn from."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            weights = group["cluster_weights"]
            k_count = len(weights)
            k = 0 if cluster is None and k_count == 1 else cluster
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < k_count:
                raise ValueError(f"cluster must be an int in [0, {k_count}) for ClusterMomentum with {k_count} "
                                 f"clusters, got {cluster!r}")
            mu, damp, nu, wd, lr = (group["momentum"], group["dampening"], group["nu"], group["weight_decay"],
                                    group["lr"])
            for p in self._params_with_grad(group):
                g = p.grad if wd == 0 else p.grad.add(p, alpha=wd)
                state = self.state[p]
                if "momentum_buffers" not in state or len(state["momentum_buffers"]) != k_count:
                    state["momentum_buffers"] = torch.zeros((k_count, *p.shape), dtype=p.dtype, device=p.device)
                    state["visited"] = torch.zeros(k_count, dtype=torch.bool, device=p.device)
                bufs, visited = state["momentum_buffers"], state["visited"]
                if not bool(visited[k]):
                    bufs[k].copy_(g)
                    visited[k] = True
                else:
                    bufs[k].mul_(mu).add_(g, alpha=1 - damp)
                if k_count == 1:
                    d = bufs[0] if weights[0] == 1.0 else bufs[0] * weights[0]
                else:
                    w = torch.tensor(weights, dtype=p.dtype, device=p.device).view(-1, *([1] * p.dim()))
                    d = (bufs * w).sum(0)
                if nu != 1.0:
                    d = g.mul(1 - nu).add_(d, alpha=nu)
                p.add_(d, alpha=-lr)
        return loss

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        if isinstance(saved.get("visited"), torch.Tensor):
            state["visited"] = saved["visited"].to(device=p.device, dtype=torch.bool, copy=True)
        if isinstance(saved.get("momentum_buffers"), torch.Tensor):
            state["momentum_buffers"] = saved["momentum_buffers"].to(device=p.device, dtype=p.dtype, copy=True)
