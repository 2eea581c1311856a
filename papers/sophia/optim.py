"""SophiaG and SophiaH with the update rule of the authors' released code (Liuhong99/Sophia, commit a7e1572).

The maths lives once, in :mod:`common.kernels.sophia`: ``sophia_update`` (one step on one tensor) and
``hessian_ema`` (one Hessian-EMA update on one tensor) are the readable definitions; the foreach, compiled and Triton
implementations beside them are chosen with ``impl=`` and tested against them. The estimators that fill ``p.grad``
before :meth:`SophiaG.update_hessian` live in
:mod:`papers.sophia.hessian`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.kernels.sophia import DENOMINATOR_EPS, hessian_ema_step, sophia_step
from common.kernels.sophia import hessian_ema as _hessian_ema  # noqa: F401  (the reference)
from common.kernels.sophia import sophia_update as _sophia_update  # noqa: F401  (the reference)
from common.optim.base import CheckedOptimizer
from common.optim.precision import state_dtype
from common.optim.validation import (
    Check,
    check_betas,
    check_bool,
    check_lr,
    check_real,
    check_weight_decay,
    validate_group,
)

__all__ = ["DENOMINATOR_EPS", "SophiaG", "SophiaH"]

_STATE_TENSORS = ("exp_avg", "hessian")


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    """Check (and normalise) whichever hyperparameters ``group`` sets; the error names the argument."""
    checks: dict[str, Check] = {
        "lr": check_lr,
        "betas": check_betas,
        "rho": lambda v: check_real("rho", v, low=0.0),
        "weight_decay": check_weight_decay,
        "bs": lambda v: check_real("bs", v, low=0.0, low_inclusive=False),
        "maximize": lambda v: check_bool("maximize", v),
    }
    return validate_group(group, checks)


class _Sophia(CheckedOptimizer):
    """Shared machinery of SophiaG and SophiaH; they differ only in the estimate and the denominator."""

    _square_estimate = True  # update_hessian squares p.grad (GNB) or adds it as it is (Hutchinson)
    _uses_bs = True

    _validate_group = staticmethod(_validated)

    def _state_for(self, p: torch.Tensor) -> dict[str, Any]:
        state = self.state[p]
        if len(state) == 0:
            dtype = state_dtype(p.dtype)
            fmt = torch.preserve_format
            state["step"] = torch.tensor(0.0, dtype=torch.float32)  # the official (non-capturable) counter
            state["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=fmt)
            state["hessian"] = torch.zeros_like(p, dtype=dtype, memory_format=fmt)
        return state

    def _bs(self, group: dict[str, Any]) -> float | None:
        return group["bs"] if self._uses_bs else None

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimisation step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._evaluate(closure)

        for group in self.param_groups:
            beta1, _ = group["betas"]
            params, grads, exp_avgs, hessians = [], [], [], []
            for p in self._params_with_grad(group):
                state = self._state_for(p)
                state["step"] += 1
                params.append(p)
                grads.append(p.grad)
                exp_avgs.append(state["exp_avg"])
                hessians.append(state["hessian"])
            if params:
                sophia_step(
                    self.impl,
                    params,
                    grads,
                    exp_avgs,
                    hessians,
                    lr=group["lr"],
                    beta1=beta1,
                    rho=group["rho"],
                    weight_decay=group["weight_decay"],
                    bs=self._bs(group),
                    maximize=group.get("maximize", False),
                )
        return loss

    @torch.no_grad()
    def update_hessian(self) -> None:
        """Fold the estimate a separate backward pass left in ``p.grad`` into the Hessian EMA h (beta2 = betas[1]).

        Call it every k steps, after the optimizer step, with the estimator's output in ``p.grad`` (see
        :mod:`papers.sophia.hessian`); then clear the grads. Parameters without a grad are skipped.
        """
        for group in self.param_groups:
            _, beta2 = group["betas"]
            params = list(self._params_with_grad(group))
            hessian_ema_step(self.impl, [self._state_for(p)["hessian"] for p in params], [p.grad for p in params],
                             beta2=beta2, square=self._square_estimate)

    @torch.no_grad()
    def stats(self) -> dict[str, float]:
        """Tuning signals from the current state, as the official training loop logs them; {} before any state.

        ``win_rate``: fraction of coordinates whose next step is not clipped, |m| < rho*bs*h (SophiaG) or
        |m| < rho*h (SophiaH), counted over every parameter with state (official ``num_effective / num_param``; the
        official loop computes it right after each ``update_hessian()``, so call this there to match).
        ``hessian_l1`` / ``hessian_l2``: the official ``hessian_norm`` / ``hessian_norm2`` (over all parameters),
        plus ``hessian_mean`` / ``hessian_max`` / ``hessian_min`` and ``momentum_l2`` (official ``momentum_norm``).
        One device sync for the whole dict.
        """
        rows: list[torch.Tensor] = []
        count = 0
        device: torch.device | None = None
        for group in self.param_groups:
            bs = self._bs(group)
            factor = group["rho"] * bs if bs is not None else group["rho"]
            for p in group["params"]:
                state = self.state.get(p)
                if not state or state["hessian"].numel() == 0:
                    continue
                m, h = state["exp_avg"], state["hessian"]
                device = device or h.device
                count += h.numel()
                row = torch.stack(
                    [
                        (m.abs() < factor * h).sum().double(),
                        torch.linalg.vector_norm(h, 1, dtype=torch.float64),
                        h.sum(dtype=torch.float64),
                        torch.linalg.vector_norm(h, dtype=torch.float64).square(),
                        torch.linalg.vector_norm(m, dtype=torch.float64).square(),
                        h.max().double(),
                        h.min().double(),
                    ]
                )
                rows.append(row.to(device))
        if not rows:
            return {}
        table = torch.stack(rows)
        extremes = torch.stack([table[:, 5].max(), table[:, 6].min()])
        wins, l1, total, l2sq, msq, hmax, hmin = torch.cat([table[:, :5].sum(dim=0), extremes]).tolist()
        return {
            "win_rate": wins / count,
            "hessian_l1": l1,
            "hessian_l2": l2sq**0.5,
            "hessian_mean": total / count,
            "hessian_max": hmax,
            "hessian_min": hmin,
            "momentum_l2": msq**0.5,
        }

    _foreign_group_keys = ("capturable",)

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """After torch's load: restore fp32 state for fp16/bf16 params and a float32 CPU ``step`` tensor.

        Also accepts a checkpoint of the official ``SophiaG``: its groups carry ``capturable`` (dropped) and no
        ``bs`` (taken, like any missing hyperparameter, from this optimizer's current groups).
        """
        if "step" in saved:
            step = saved["step"]
            state["step"] = torch.tensor(float(step.item() if isinstance(step, torch.Tensor) else step))
        for key in _STATE_TENSORS:
            value = saved.get(key)
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device=p.device, dtype=state_dtype(p.dtype))


class SophiaG(_Sophia):
    """Sophia: A Scalable Stochastic Second-order Optimizer for Language Model Pre-training (Sophia-G).

    Liu, Li, Hall, Liang, Ma, ICLR 2024, https://arxiv.org/abs/2305.14342.
    Follows ``sophia.py::SophiaG`` at https://github.com/Liuhong99/Sophia, HEAD a7e1572 (2024-01-29), including its
    defaults and its (lr, rho, bs) parameterization. Do not port an (lr, rho) pair from the paper, levanter or
    other commits of the repo: each scales rho differently, so only pairs tuned for this rule apply.

    Each step (no bias correction of m or h):
        theta <- theta (1 - lr wd);  m <- b1 m + (1-b1) g;
        theta <- theta - lr sign(m) min(|m| / (rho bs h + 1e-15), 1)  (= -lr clip(m / (rho bs h + 1e-15), -1, 1)).
    Every k steps, after the step, a separate backward pass on labels sampled from the model leaves g_hat in
    ``p.grad`` and :meth:`update_hessian` does h <- b2 h + (1-b2) g_hat^2
    (:func:`papers.sophia.hessian.gnb_hessian_step`).
    bs * g_hat^2 is the paper's Gauss-Newton-Bartlett estimate: the code folds the batch size into the denominator.
    Until the first Hessian update h = 0, every coordinate is clipped and the step is sign-momentum of size lr.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate, >= 0 (the paper's rho * eta_t). Default 1e-4.
        betas: (beta1, beta2), each in [0, 1): the EMA rates of m and of h. Default (0.965, 0.99).
        rho: clip threshold scale, >= 0; meaningful only together with ``bs``. Default 0.04.
        weight_decay: decoupled weight decay, >= 0, theta (1 - lr wd) every step. Default 0.1.
        bs: required, > 0. Tokens per optimizer step (global batch x sequence length x accumulation x ranks), i.e.
            the number of tokens whose mean loss gave the sampled-label gradient. Bound here, stored in the param
            groups and so in ``state_dict``.
        maximize: maximise the objective (negates the gradient; the squared estimate is unaffected). Default False.
        impl: implementation of the update, see :mod:`common.kernels` ("reference", "foreach", "compiled",
            "triton" or "auto"). Default None: :func:`common.kernels.default_impl`, i.e. "auto" (Triton on CUDA,
            foreach elsewhere; foreach is bit-identical to the reference on CPU).

    Deviations from the official code:
        * ``bs`` is a required constructor argument, not ``step(closure, bs=5120)``: Lightning's
          ``optimizer.step(closure)`` cannot pass it, and a forgotten ``bs`` would silently be 5120.
        * precision: fp16/bf16 params get fp32 ``exp_avg`` / ``hessian`` and fp32 maths (the official state has the
          param dtype, where bf16 squares of small gradients lose most bits); ``load_state_dict`` keeps them fp32.
        * no ``capturable`` (CUDA-graph) path; ``state["step"]`` is the official non-capturable counter, a float32
          0-d CPU tensor (unused by the maths). A ``capturable`` key in a loaded official checkpoint is dropped.
        * complex params raise RuntimeError (the official code views them as real); sparse grads raise RuntimeError.
        * stricter checks: rho >= 0, bs > 0 and maximize a bool, per group as well as for the defaults.
        * :meth:`stats` reports the win rate and Hessian norms that the official training loop computes inline.
    """


    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.965, 0.99),
        rho: float = 0.04,
        weight_decay: float = 1e-1,
        *,
        bs: float,
        maximize: bool = False,
        impl: str | None = None,
    ) -> None:
        self.impl = self._check_impl(impl)
        defaults = _validated(
            {"lr": lr, "betas": betas, "rho": rho, "weight_decay": weight_decay, "bs": bs, "maximize": maximize}
        )
        super().__init__(params, defaults)


class SophiaH(_Sophia):
    """Sophia: A Scalable Stochastic Second-order Optimizer for Language Model Pre-training (Sophia-H).

    Liu, Li, Hall, Liang, Ma, ICLR 2024, https://arxiv.org/abs/2305.14342. The paper's Hutchinson variant under the
    update rule of :class:`SophiaG` (https://github.com/Liuhong99/Sophia, a7e1572): the repository at that commit
    has no PyTorch SophiaH, so the update is SophiaG's with the Hutchinson estimate in place of Gauss-Newton-Bartlett.

    Each step: theta <- theta (1 - lr wd); m <- b1 m + (1-b1) g;
    theta <- theta - lr sign(m) min(|m| / max(rho h, 1e-15), 1), so a coordinate with h <= 0 takes a full sign step
    (the paper's rule for negative curvature). Every k steps :func:`papers.sophia.hessian.hutchinson_hessian_step`
    leaves u * (H u) in ``p.grad`` and :meth:`update_hessian` does h <- b2 h + (1-b2) u * (H u) (no square, no bs).

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: learning rate, >= 0. Default 1e-4.
        betas: (beta1, beta2), each in [0, 1): the EMA rates of m and of h. Default (0.965, 0.99).
        rho: clip threshold scale, >= 0. Default 0.04 (SophiaG's; rho h here and rho bs h there both estimate rho
            times the Hessian diagonal of the mean loss). No official default exists for this parameterization.
        weight_decay: decoupled weight decay, >= 0, theta (1 - lr wd) every step. Default 0.1.
        impl: as for :class:`SophiaG`.

    Deviations:
        * from the authors' levanter Sophia-H: no bias correction of m; the clip is of m / max(rho h, 1e-15) and
          weight decay multiplies theta before the update (levanter: clip(m_hat / max(gamma h, eps), 1), decay added
          after the clip, all scaled by -lr); levanter's defaults are b1 0.96, b2 0.99, eps 1e-12, gamma_H 0.01.
        * from the PyTorch SophiaH of commit 01af183 (removed in 195a786): no bias correction, no relu(h) (h <= 0 is
          a sign step here, a zero-denominator clip there), eps 1e-15 instead of 1e-12, the rho parameterization.
        * as :class:`SophiaG`: fp32 state for fp16/bf16 params, a float32 CPU ``step`` tensor, complex and sparse
          raise; no ``maximize`` (the Hessian estimate would have to change sign with it).
    """

    _square_estimate = False
    _uses_bs = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.965, 0.99),
        rho: float = 0.04,
        weight_decay: float = 1e-1,
        *,
        impl: str | None = None,
    ) -> None:
        self.impl = self._check_impl(impl)
        defaults = _validated({"lr": lr, "betas": betas, "rho": rho, "weight_decay": weight_decay})
        super().__init__(params, defaults)
