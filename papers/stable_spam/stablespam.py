"""Stable-SPAM with the semantics of the authors' released code (``semantics="official"``) or with its two reset
bugs fixed (``semantics="fixed"``).

The per-tensor rule lives once, in :mod:`common.kernels.stablespam` (the readable reference definition and its
foreach, compiled and Triton implementations, chosen by ``impl=``); this module holds the counters, the schedules and
MoRet's bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.kernels.stablespam import stablespam_step
from common.optim.base import CheckedOptimizer
from common.optim.precision import state_dtype
from common.optim.validation import (
    ADAM_CHECKS,
    Check,
    bool_checks,
    check_bool,
    check_choice,
    check_real,
    validate_group,
)
from papers.stable_spam.common_checks import (
    check_nonnegative_int,
    check_optional_positive_int,
    check_unit,
    cosine_scale,
    cosine_warmup_factor,
)

__all__ = ["SEMANTICS", "StableSPAM"]

SEMANTICS = ("official", "fixed")
_STATE_TENSORS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "m_max_t", "m_norm_t", "v_norm_t")
_FLAGS = ("amsgrad", "adaclip", "adagn", "moret", "mutate_grad")


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    """Check (and normalise) whichever hyperparameters ``group`` sets; the error names the argument."""

    def gamma1(v: Any) -> float:
        if v == -1 and not isinstance(v, bool):
            return -1.0  # the official "use beta1"
        return check_real("gamma1", v, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)

    checks: dict[str, Check] = {
        **ADAM_CHECKS,
        "gamma1": gamma1,
        "gamma2": lambda v: check_unit("gamma2", v),
        "gamma3": lambda v: check_unit("gamma3", v),
        "total_T": lambda v: check_optional_positive_int("total_T", v),
        "eta_min": lambda v: check_real("eta_min", v, low=0.0, high=1.0),
        "update_proj_gap": lambda v: check_optional_positive_int("update_proj_gap", v, zero_means_none=True),
        "reset_warmup_steps": lambda v: check_nonnegative_int("reset_warmup_steps", v),
        "semantics": lambda v: check_choice("semantics", v, SEMANTICS),
        **bool_checks(*_FLAGS),
    }
    return validate_group(group, checks)


class StableSPAM(CheckedOptimizer):
    """Stable-SPAM: How to Train in 4-Bit More Stably than 16-Bit Adam.

    Huang, Hu, Zhang, Jin, Li, Shen, Chen, Liu, Wen, Wang, Liu, arXiv:2502.17055 (2025). Follows the official
    ``galore_torch/stablespam.py`` in https://github.com/TianjinYellow/StableSPAM at 6a66da1 (2025-03-29).

    Each step n = 1, 2, ... (global ``total_steps``), per tensor with counter t:
        0. scale = eta_min + (1 - eta_min)(1 + cos(pi n / (total_T + 1))) / 2 (1 without ``total_T``);
        1. theta <- theta (1 - lr wd);
        2. AdaClip (``adaclip``): M <- g3 M + (1 - g3) max|g|; M_hat = M / (1 - g3^t); entries with |g| > M_hat
           become g / max|g| * M_hat;
        3. AdaGN (``adagn``): n = ||g||, a = g1 scale; m <- a m + (1 - a) n; v <- g2 v + (1 - g2) n^2;
           g <- g / n * (m / (1 - a^t)) / (sqrt(v / (1 - g2^t)) + eps) when n > 0;
        4. MoRet (``moret`` and ``update_proj_gap``): when n % update_proj_gap == 0 the moments and t reset
           (see ``semantics``);
        5. Adam with b1' = b1 scale: m <- b1' m + (1 - b1') g, v <- b2 v + (1 - b2) g^2,
           theta <- theta - lr w / (1 - b1'^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps) (torch AdamW's eps placement);
           w = 1 except after a reset in fixed semantics.

    ``semantics="official"`` is bit-faithful to the released code, including:
        * Bug 1: at a reset the state gets fresh zeros, but the step updates and applies the *old* moments with
          t = 1 bias correction; the zeros are first used on the next step. No post-reset warmup.
        * Bug 2: the reset also sets the shared t to 1, so AdaClip's and AdaGN's bias corrections restart while
          their EMAs do not (AdaClip's threshold jumps by 1/(1 - g3^2) and is effectively off afterwards).
        * the periodic scale (back to 1 at 2 (total_T + 1)) and the beta1 decay.
    ``semantics="fixed"``: at a reset m and v (and amsgrad's max) are zeroed before this step's update and t
    restarts at 1; the update is multiplied by SPAM's cosine warmup over ``reset_warmup_steps`` (0.01 -> 1);
    AdaClip/AdaGN use their own counter ``norm_step`` that never resets; the scale stays at eta_min after total_T.

    Args:
        params: iterable of parameters or dicts defining parameter groups (every option below can be set per group).
        lr: learning rate, >= 0. Default 1e-3.
        betas: (beta1, beta2) in [0, 1). Default (0.9, 0.999).
        eps: > 0, used by AdaGN and Adam. Default 1e-8.
        weight_decay: decoupled, >= 0. Default 0.
        amsgrad: keep the running max of v (official: never reset). Default False.
        gamma1: AdaGN's first-moment rate in (0, 1), or -1 for beta1. Default 0.7 (the 4-bit setting; BF16: 0.85).
        gamma2: AdaGN's second-moment rate. Default 0.9 (BF16: 0.99999).
        gamma3: AdaClip's rate (the official code stores it as ``self.theta``). Default 0.999.
        total_T: steps of the cosine scale on gamma1 and beta1, or None (scale 1). Default None.
        eta_min: the scale's floor. Default 0.5.
        update_proj_gap: MoRet period in optimizer steps; None or 0 turns resets off. Default 1000.
        semantics: ``"official"`` or ``"fixed"`` (above). Default ``"official"``.
        reset_warmup_steps: fixed semantics only: warmup length after each reset. Default 150 (SPAM's N).
        adaclip, adagn, moret: switch each component (ablations). Default True.
        mutate_grad: write AdaClip's clipped values into ``p.grad`` as the official code does. Default False
            (theta is unaffected; gradient-norm logging after ``step`` stays honest).
        impl: implementation of the per-tensor rule, see :mod:`common.kernels` ("reference", "foreach",
            "compiled", "triton", "native" or "auto"). Default None: :func:`common.kernels.default_impl`, i.e. "auto"
            (Triton on CUDA, foreach elsewhere; foreach is bit-identical to the reference on CPU). "native" is a C
            kernel for float32/float64 CPU tensors, the fastest on CPU (compiled elsewhere). A step with
            ``track_stats`` runs foreach when compiled, native or triton is chosen.
        track_stats: after each step, ``self.stats`` holds 0-d tensors (no host sync): ``grad_norm_in`` (global
            L2 of the raw gradients), ``grad_norm_clipped`` (after AdaClip), ``grad_norm_out`` (after AdaGN),
            ``clip_fraction`` and ``threshold_mean`` (AdaClip's M_hat averaged over tensors). Default False.

    Deviations from the official code (theta is otherwise identical to it):
        * ``total_steps`` lives in ``self.state["total_steps"]`` and round-trips through ``state_dict`` (the
          official attribute is lost on resume, which shifts resets and the beta1 schedule); the scalar EMAs are
          0-d tensors of the state dtype.
        * AdaClip does not write into ``p.grad`` unless ``mutate_grad=True``; no host syncs.
        * precision: fp16/bf16 params get fp32 state and maths (the official keeps bf16 state for bf16 params);
          ``load_state_dict`` keeps it fp32.
        * options are per param group; stricter validation; sparse gradients and complex params raise.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        gamma1: float = 0.7,
        gamma2: float = 0.9,
        gamma3: float = 0.999,
        total_T: int | None = None,
        eta_min: float = 0.5,
        update_proj_gap: int | None = 1000,
        *,
        semantics: str = "official",
        reset_warmup_steps: int = 150,
        adaclip: bool = True,
        adagn: bool = True,
        moret: bool = True,
        mutate_grad: bool = False,
        impl: str | None = None,
        track_stats: bool = False,
    ) -> None:
        defaults = _validated(dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, gamma1=gamma1, gamma2=gamma2,
            gamma3=gamma3, total_T=total_T, eta_min=eta_min, update_proj_gap=update_proj_gap, semantics=semantics,
            reset_warmup_steps=reset_warmup_steps, adaclip=adaclip, adagn=adagn, moret=moret,
            mutate_grad=mutate_grad))
        self.impl = self._check_impl(impl)
        self.track_stats = check_bool("track_stats", track_stats)
        self.stats: dict[str, torch.Tensor] = {}
        super().__init__(params, defaults)

    _validate_group = staticmethod(_validated)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimisation step; ``closure`` re-evaluates the model. Returns its loss (None without one),
        as the official ``StableSPAM.step`` does."""
        loss = self._evaluate(closure)
        n = self.state["total_steps"] = int(self.state.get("total_steps", 0)) + 1
        stats: dict[str, list[torch.Tensor]] | None = None
        numel = 0
        if self.track_stats:
            stats = {k: [] for k in ("sq_in", "sq_clipped", "sq_out", "clipped", "threshold")}
        for group in self.param_groups:
            fixed = group["semantics"] == "fixed"
            scale = cosine_scale(n, group["total_T"], group["eta_min"], periodic=not fixed)
            gap = group["update_proj_gap"] if group["moret"] else None
            reset = gap is not None and n % gap == 0
            warmup = 1.0
            if fixed and gap is not None and n >= gap:
                warmup = cosine_warmup_factor(n % gap, group["reset_warmup_steps"])
            beta1, beta2 = group["betas"]
            gamma1 = beta1 if group["gamma1"] == -1 else group["gamma1"]
            params, steps = [], []
            for p in self._params_with_grad(group):
                if p.numel() == 0:  # nothing to update; AdaClip's max() of an empty tensor is undefined
                    continue
                state = self.state[p]
                if "step" not in state:
                    self._init_state(p, state, group, fixed)
                state["step"] += 1
                if fixed:
                    state["norm_step"] += 1
                t_norm = state["norm_step"] if fixed else state["step"]  # official: reset by MoRet (Bug 2)
                if reset:
                    state["step"] = 1
                params.append(p)
                steps.append((state["step"], t_norm))
                if stats is not None:
                    stats["sq_in"].append(p.grad.detach().to(state_dtype(p.dtype)).square().sum())
                    numel += p.numel()
            if not params:
                continue
            states = [self.state[p] for p in params]
            stablespam_step(
                self.impl, params, [p.grad for p in params], *(
                    [st[key] for st in states] for key in ("exp_avg", "exp_avg_sq")),
                [st["max_exp_avg_sq"] for st in states] if group["amsgrad"] else None,
                *([st[key] for st in states] for key in ("m_max_t", "m_norm_t", "v_norm_t")), steps,
                lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                gamma1=gamma1, gamma2=group["gamma2"], gamma3=group["gamma3"], scale=scale, warmup=warmup,
                adaclip=group["adaclip"], adagn=group["adagn"], zero_moments=reset and fixed,
                mutate_grad=group["mutate_grad"], stats=stats)
            if reset and not fixed:  # Bug 1: this step used the old moments; the fresh zeros are stored after it
                for st in states:
                    st["exp_avg"] = torch.zeros_like(st["exp_avg"])
                    st["exp_avg_sq"] = torch.zeros_like(st["exp_avg_sq"])
        if stats is not None and stats["sq_in"]:
            total = {k: torch.stack(vs).double().sum() if vs else torch.zeros((), dtype=torch.float64)
                     for k, vs in stats.items()}
            self.stats = {"grad_norm_in": total["sq_in"].sqrt(), "grad_norm_clipped": total["sq_clipped"].sqrt(),
                          "grad_norm_out": total["sq_out"].sqrt(), "clip_fraction": total["clipped"] / numel,
                          "threshold_mean": total["threshold"] / len(stats["sq_in"])}
        return loss

    @staticmethod
    def _init_state(p: torch.Tensor, state: dict[str, Any], group: dict[str, Any], fixed: bool) -> None:
        dtype = state_dtype(p.dtype)
        state["step"] = 0
        if fixed:
            state["norm_step"] = 0
        state["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
        for key in ("m_norm_t", "v_norm_t", "m_max_t"):
            state[key] = torch.zeros((), dtype=dtype, device=p.device)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """After torch's load: fp32 state for fp16/bf16 params (torch casts it to the param dtype), int counters."""
        for key in ("step", "norm_step"):
            if key in saved:
                state[key] = int(saved[key])
        for key in _STATE_TENSORS:
            value = saved.get(key)
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device=p.device, dtype=state_dtype(p.dtype))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if "total_steps" in state_dict["state"]:
            self.state["total_steps"] = int(state_dict["state"]["total_steps"])
