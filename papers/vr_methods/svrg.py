"""SVRG with a coefficient: classic SVRG (Johnson & Zhang, NeurIPS 2013) at alpha = 1 and alpha-SVRG (Yin et al.,
ICLR 2025) with a linearly decaying alpha, as a wrapper around any torch optimizer."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.optim.base import CheckedOptimizer
from common.optim.other_point import all_params, params_holding, record_grads, swapped_in
from common.optim.validation import (
    Check,
    check_choice,
    check_lr,
    check_real,
    validate_group,
)

__all__ = ["MODES", "SCHEDULES", "SVRG", "linear_coefficients"]

SCHEDULES = ("constant", "linear", "optimal")
MODES = ("recompute", "cache")
_OPTIMAL_EPS = 1e-24  # official: added to the variance
_OPTIMAL_CLAMP = 2.0  # official: alpha* clamped to [-2, 2]
_SVRG_KEYS = ("coefficient", "schedule", "n_intervals", "mode")


def linear_coefficients(alpha0: float, n_intervals: int) -> list[float]:
    """``linspace(alpha0, 0, n_intervals)``: alpha of each snapshot interval, the last one exactly 0."""
    if n_intervals == 1:
        return [alpha0]
    step = -alpha0 / (n_intervals - 1)
    return [alpha0 + i * step for i in range(n_intervals - 1)] + [0.0]


def _check_n_intervals(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"n_intervals must be a positive integer or None, got {value!r}")
    return value


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Check] = {
        "lr": check_lr,
        "coefficient": lambda v: check_real("coefficient", v),
        "schedule": lambda v: check_choice("schedule", v, SCHEDULES),
        "n_intervals": _check_n_intervals,
        "mode": lambda v: check_choice("mode", v, MODES),
    }
    out = validate_group(group, checks)
    if out.get("schedule") == "linear" and out.get("n_intervals") is None:
        raise ValueError("n_intervals must be set for schedule='linear' (alpha = linspace(alpha0, 0, n_intervals))")
    return out


class SVRG(CheckedOptimizer):
    """A Coefficient Makes SVRG Effective (Yin, Xu, Li, Darrell, Liu; ICLR 2025, arXiv:2311.05589) and classic SVRG
    (Johnson & Zhang, NeurIPS 2013). Follows davidyyd/alpha-SVRG@13d4450 (``svrg.py``: ``Vanilla_SVRG``,
    ``Cache_SVRG``, ``svrg_scheduler``); classic SVRG is its alpha = 1 constant case.

    The variance-reduced gradient handed to the base optimizer as ``p.grad`` (then ``base.step()``)::

        g = grad f_B(theta) - alpha_k * (grad f_B(theta~) - mu~)

    theta~ is the snapshot (a copy of the parameters kept in this optimizer's state: the "snapshot model"), mu~ the
    full training-set gradient at theta~, alpha_k the coefficient of the current snapshot interval:
    ``"constant"`` (alpha0; 1 = classic SVRG), ``"linear"`` (``linspace(alpha0, 0, n_intervals)``, piecewise
    constant per interval, the last interval at 0) or ``"optimal"`` (the diagnostic alpha* per coordinate:
    Cov(grad f_B(theta~), grad f_B(theta)) / (Var(grad f_B(theta~)) + 1e-24) over the interval's minibatches so
    far, clamped to [-2, 2], and 1 at an interval's first step).

    The loop (recompute mode, the default; the Lightning module in ``papers.vr_methods.lit`` does exactly this):

        mu, _ = common.optim.full_gradient.full_gradient(params, loss, train_batches)   # all-reduced under DDP
        opt.take_snapshot(mu)                                # theta~ <- theta, mu~ <- mu, next interval
        for batch in interval:
            with opt.snapshot_params(): grads = autograd.grad(loss(batch), params)      # grad f_B(theta~)
            opt.record_snapshot_grad(grads)
            opt.zero_grad(); loss(batch).backward(); opt.step()

    Cache mode (``mode="cache"``, alpha-SVRG's ``Cache_SVRG``): the snapshot pass keeps every minibatch gradient
    (``full_gradient(..., keep_batches=True)``), ``take_snapshot(mu, cache=per_batch)`` stores them, and the inner
    loop replays the same minibatches in the same order, calling ``use_cached_snapshot_grad(i)`` instead of the
    second backward. Memory is n_batches x params; above ``max_cache_bytes`` it refuses (ValueError).

    Before the first snapshot, and at alpha = 0, the step is the base optimizer's step, bit for bit. After a
    snapshot with alpha != 0, :meth:`step` raises RuntimeError if the snapshot gradient of this step was not
    recorded (a forgotten call would silently add a constant bias).

    Args:
        params: parameters or param groups (handed to ``base``).
        base: ``params -> torch.optim.Optimizer``, the inner optimizer (SGD for SVRG, AdamW in alpha-SVRG). It shares
            this optimizer's ``param_groups`` (LR schedulers drive both); its own state stays in ``self.base.state``
            and travels in ``state_dict()["base_state"]``.
        coefficient: alpha0, any finite real. Default 1 (classic SVRG).
        schedule: "constant", "linear" or "optimal". Default "constant".
        n_intervals: number of snapshot intervals of the run; required by "linear".
        mode: "recompute" or "cache". Default "recompute".
        max_cache_bytes: cache-mode memory bound. Default 2 GiB.

    Deviations from the official code: the snapshot is parameters in optimizer state swapped into the one model
    (``snapshot_params``) rather than a second model object; the cache mode replays a minibatch order the caller
    supplies instead of saving and restoring global RNG states; batch-norm statistics are the caller's business
    (``papers.vr_methods.batchnorm.frozen_batchnorm_stats``, used by our loop around every snapshot forward: dvr's
    choice); the "optimal" coefficient uses the running statistics of the current interval (our reading of
    ``compute_optimal_coefficient``) [unverified against the official function].
    """

    def __init__(self, params: ParamsT, base: Callable[[Any], torch.optim.Optimizer] | None = None,
                 coefficient: float = 1.0, schedule: str = "constant", n_intervals: int | None = None,
                 mode: str = "recompute", max_cache_bytes: int = 2 << 30) -> None:
        if base is None or not callable(base):
            raise ValueError(f"base must be a callable params -> torch.optim.Optimizer, got {base!r}")
        defaults = _validated({"coefficient": coefficient, "schedule": schedule, "n_intervals": n_intervals,
                               "mode": mode})
        self.max_cache_bytes = int(check_real("max_cache_bytes", max_cache_bytes, low=0))
        inner = base(params)
        if not isinstance(inner, torch.optim.Optimizer):
            raise ValueError(f"base must return a torch.optim.Optimizer, got {type(inner).__name__}")
        self._initialising = True
        super().__init__(inner.param_groups, defaults)
        self._initialising = False
        self.base = inner
        self._link()

    _validate_group = staticmethod(_validated)

    def _link(self) -> None:
        """The base optimizer works on our param groups (after init and after every load)."""
        self.base.param_groups = self.param_groups

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if getattr(self, "_initialising", True):
            super().add_param_group(param_group)
            return
        group = self._validate_group(dict(param_group))
        self.base.add_param_group(group)  # fills the base defaults, appends to our shared list
        added = self.param_groups[-1]
        for key in _SVRG_KEYS:
            added.setdefault(key, self.defaults[key])
        added.update(self._validate_group({k: v for k, v in added.items() if k != "params"}))

    def state_dict(self) -> dict[str, Any]:
        """torch's state dict of the SVRG state, plus the base optimizer's per-parameter state under ``base_state``."""
        out = super().state_dict()
        out["base_state"] = self.base.state_dict()["state"]
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        base_state = state_dict.pop("base_state", {})
        super().load_state_dict(state_dict)
        self.base.load_state_dict({"state": base_state, "param_groups": state_dict["param_groups"]})
        self._link()

    # ---- the snapshot --------------------------------------------------------------------------------------------
    def _all_params(self) -> list[torch.Tensor]:
        return all_params(self)

    @torch.no_grad()
    def take_snapshot(self, full_grad: Sequence[torch.Tensor | None],
                      cache: Sequence[Sequence[torch.Tensor]] | None = None) -> None:
        """Start a snapshot interval at the current parameters: theta~ <- theta, mu~ <- ``full_grad`` (one entry per
        parameter, in param-group order; None = zeros). ``cache``: the snapshot pass's per-batch gradients (cache
        mode only, required there)."""
        params = self._all_params()
        if len(full_grad) != len(params):
            raise ValueError(f"full_grad has {len(full_grad)} entries for {len(params)} parameters")
        for group in self.param_groups:
            if (group["mode"] == "cache") != (cache is not None):
                raise ValueError("cache must be given in mode='cache' and only there")
        if cache is not None:
            size = sum(g.numel() * g.element_size() for batch in cache for g in batch)
            if size > self.max_cache_bytes:
                raise ValueError(f"cache mode needs {size} bytes > max_cache_bytes={self.max_cache_bytes}; use "
                                 "mode='recompute' or raise max_cache_bytes")
        for i, (p, mu) in enumerate(zip(params, full_grad, strict=True)):
            state = self.state[p]
            state["svrg_snapshot"] = p.detach().clone()
            state["svrg_full_grad"] = torch.zeros_like(p) if mu is None else mu.detach().to(p).clone()
            state["svrg_interval"] = int(state.get("svrg_interval", -1)) + 1
            state["svrg_interval_steps"] = 0
            state.pop("svrg_snapshot_grad", None)
            state.pop("svrg_snapshot_grad_step", None)
            for key in [k for k in state if k.startswith("svrg_stat_")]:
                del state[key]
            if cache is not None:
                state["svrg_cache"] = torch.stack([batch[i].detach().to(p) for batch in cache])

    def has_snapshot(self) -> bool:
        return bool(params_holding(self, "svrg_snapshot"))

    def snapshot_params(self) -> contextlib.AbstractContextManager[None]:
        """Swap the snapshot theta~ into the parameters for the body (a forward/backward at theta~), then back."""
        return swapped_in(self, "svrg_snapshot")

    def record_snapshot_grad(self, grads: Sequence[torch.Tensor | None] | None = None) -> None:
        """Record grad f_B(theta~) for the coming step: ``grads`` in param-group order, or (None) each ``p.grad``."""
        record_grads(self, grads, point_key="svrg_snapshot", grad_key="svrg_snapshot_grad",
                     step_key="svrg_snapshot_grad_step", step_of="svrg_step", default_step=0)

    @torch.no_grad()
    def use_cached_snapshot_grad(self, index: int) -> None:
        """Cache mode: the coming step's minibatch is the snapshot pass's batch ``index``."""
        for p in self._all_params():
            state = self.state.get(p)
            if not state or "svrg_cache" not in state:
                continue
            cache = state["svrg_cache"]
            if not 0 <= index < len(cache):
                raise IndexError(f"cache holds {len(cache)} batches, asked for {index}")
            state["svrg_snapshot_grad"] = cache[index]
            state["svrg_snapshot_grad_step"] = int(state.get("svrg_step", 0))

    def current_coefficient(self, group: dict[str, Any] | None = None) -> float | None:
        """The scalar alpha of the current interval (None before the first snapshot or for "optimal")."""
        group = group or self.param_groups[0]
        if group["schedule"] == "optimal":
            return None
        interval = next((int(self.state[p]["svrg_interval"]) for p in group["params"]
                         if "svrg_interval" in self.state.get(p, {})), None)
        return None if interval is None else self._scalar_alpha(group, interval)

    @staticmethod
    def _scalar_alpha(group: dict[str, Any], interval: int) -> float:
        alpha0 = float(group["coefficient"])
        if group["schedule"] == "linear":
            values = linear_coefficients(alpha0, int(group["n_intervals"]))
            return values[min(interval, len(values) - 1)]
        return alpha0

    def _optimal_alpha(self, state: dict[str, Any], snap: torch.Tensor, grad: torch.Tensor) -> torch.Tensor | float:
        """Per-coordinate alpha* from this interval's (snapshot grad, current grad) pairs, this one included."""
        if "svrg_stat_n" not in state:
            state["svrg_stat_n"] = 0
            for key in ("s", "g", "sg", "ss"):
                state[f"svrg_stat_{key}"] = torch.zeros_like(grad, dtype=torch.float64)
        state["svrg_stat_n"] += 1
        s64, g64 = snap.to(torch.float64), grad.to(torch.float64)
        state["svrg_stat_s"].add_(s64)
        state["svrg_stat_g"].add_(g64)
        state["svrg_stat_sg"].add_(s64 * g64)
        state["svrg_stat_ss"].add_(s64 * s64)
        n = state["svrg_stat_n"]
        if n == 1:
            return 1.0
        ms, mg = state["svrg_stat_s"] / n, state["svrg_stat_g"] / n
        cov = state["svrg_stat_sg"] / n - ms * mg
        var = state["svrg_stat_ss"] / n - ms * ms
        return (cov / (var + _OPTIMAL_EPS)).clamp(-_OPTIMAL_CLAMP, _OPTIMAL_CLAMP).to(grad.dtype)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Correct each ``p.grad`` with the control variate, then take the base optimizer's step."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            for p in self._params_with_grad(group):
                state = self.state[p]
                steps = int(state.get("svrg_step", 0))
                if "svrg_snapshot" in state:
                    alpha: torch.Tensor | float = self._scalar_alpha(group, int(state["svrg_interval"]))
                    if group["schedule"] == "optimal" or alpha != 0:
                        if state.get("svrg_snapshot_grad_step") != steps:
                            raise RuntimeError(
                                "SVRG: the snapshot gradient of this step was not recorded; call "
                                "record_snapshot_grad() (recompute mode) or use_cached_snapshot_grad(i) (cache mode) "
                                "before step() (see the SVRG docstring)")
                        snap = state["svrg_snapshot_grad"]
                        if group["schedule"] == "optimal":
                            alpha = self._optimal_alpha(state, snap, p.grad)
                        p.grad.sub_(alpha * (snap - state["svrg_full_grad"]))
                    state["svrg_interval_steps"] = int(state.get("svrg_interval_steps", 0)) + 1
                state["svrg_step"] = steps + 1
        self.base.step()
        return loss

