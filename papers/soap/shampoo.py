"""The Shampoo baseline of the SOAP paper, re-implemented from the maths (the paper's §2), never vendored.

The maths lives once, in :func:`_shampoo_update` and :func:`_inverse_root` (one tensor at a time, the readable
definition); faster variants go beside them and are tested against them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.optim.base import CheckedOptimizer
from common.optim.linalg import eigh_with_fallback
from common.optim.precision import state_dtype
from common.optim.validation import Check, check_bool, check_eps, check_real, validate_group
from papers.soap.preconditioned import Slot, check_int, restore_state, shared_checks, warn_eigh_retries

__all__ = ["Shampoo"]


def _check_start(value: object) -> int | float | None:
    """None (= precondition_frequency), an int >= 1, or math.inf (never precondition: the grafting optimizer)."""
    if value is None or (isinstance(value, float) and value == math.inf):
        return value
    return check_int("start_preconditioning_step", value, 1)


def _matrix_shape(p: torch.Tensor, max_precond_dim: int) -> tuple[int, int] | None:
    """(rows, cols) of the matrix view (first dim x the rest) if a side is preconditioned, else None (Adam)."""
    if p.ndim < 2 or p.numel() == 0:
        return None
    rows = p.shape[0]
    cols = p.numel() // rows
    if rows > max_precond_dim and cols > max_precond_dim:
        return None
    return rows, cols


def _inverse_root(factor: torch.Tensor, *, exponent: float, floor: float, work_dtype: torch.dtype
                  ) -> tuple[torch.Tensor, bool]:
    """factor^(-exponent) through eigh in ``work_dtype``, eigenvalues floored at ``floor``; and whether eigh retried."""
    values, vectors, retried = eigh_with_fallback(factor.to(work_dtype))
    root = (vectors * values.clamp_min(floor).pow(-exponent)) @ vectors.T
    return root.to(factor.dtype), retried


def _shampoo_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    factors: list[Slot] | None,
    roots: list[Slot] | None,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    shampoo_beta: float,
    eps: float,
    weight_decay: float,
    recompute_roots: bool,
    precondition: bool,
    exponent: float,
    matrix_eps: float,
    work_dtype: torch.dtype,
) -> int:
    """One step on one tensor, in place; returns how many eigh calls needed the float64 retry.

    ``step`` is t after the increment (1 on the first call). ``factors``/``roots`` are [L, R] and their inverse roots
    ([] on an identity side) for a matrix-preconditioned tensor, None for an Adam-only one. ``recompute_roots``
    refreshes the roots after the factor update; ``precondition`` uses them. The state is held in the compute dtype
    (``exp_avg.dtype``); a low-precision ``param`` is updated in that dtype and copied back. Adam-only steps are
    written as torch's single-tensor AdamW writes them.
    """
    compute_dtype = exp_avg.dtype
    if grad.dtype != compute_dtype:
        grad = grad.to(compute_dtype)
    theta = param if param.dtype == compute_dtype else param.to(compute_dtype)

    # Filtered gradient (beta1) and the grafting Adam's second moment (beta2), both of the raw G.
    exp_avg.lerp_(grad, 1.0 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(eps)

    retries = 0
    if factors is not None and roots is not None:
        g = grad.reshape(grad.shape[0], -1)
        grams = (g @ g.T, g.T @ g)
        for i, (factor, gram) in enumerate(zip(factors, grams, strict=True)):
            if isinstance(factor, torch.Tensor):
                factor.lerp_(gram, 1.0 - shampoo_beta)
                if recompute_roots:
                    roots[i], retried = _inverse_root(factor, exponent=exponent, floor=matrix_eps,
                                                      work_dtype=work_dtype)
                    retries += int(retried)

    if weight_decay != 0:
        theta.mul_(1 - lr * weight_decay)  # decoupled, on the pre-update theta (torch AdamW's order)
    if precondition and roots is not None:
        # Shampoo direction of the filtered gradient, rescaled to the per-tensor norm of the Adam direction.
        direction = exp_avg.reshape(exp_avg.shape[0], -1)
        left, right = roots
        if isinstance(left, torch.Tensor):
            direction = left @ direction
        if isinstance(right, torch.Tensor):
            direction = direction @ right
        shampoo_norm = torch.linalg.vector_norm(direction)
        adam_norm = torch.linalg.vector_norm(exp_avg / denom)
        scale = torch.where(shampoo_norm > 0, adam_norm / shampoo_norm, torch.zeros_like(shampoo_norm))
        theta.add_(direction.reshape(exp_avg.shape) * scale, alpha=-lr / bias_correction1)
    else:
        theta.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)
    if theta is not param:
        param.copy_(theta)
    return retries


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    """Check (and normalise) whichever hyperparameters ``group`` sets; the error names the argument."""
    checks: dict[str, Check] = {
        **shared_checks(),
        "eps": check_eps,
        "start_preconditioning_step": _check_start,
        "inv_root": lambda v: check_real("inv_root", v, low=0.0, low_inclusive=False),
        "matrix_eps": lambda v: check_eps(v, "matrix_eps"),
        "precise": lambda v: check_bool("precise", v),
    }
    return validate_group(group, checks)


def _start(group: dict[str, Any]) -> int | float:
    start = group["start_preconditioning_step"]
    return group["precondition_frequency"] if start is None else start


class Shampoo(CheckedOptimizer):
    """Shampoo: Preconditioned Stochastic Tensor Optimization, with Adam grafting: the SOAP paper's baseline.

    Gupta, Koren, Singer, ICML 2018, https://arxiv.org/abs/1802.09568, in the configuration SOAP (Vyas et al.,
    https://arxiv.org/abs/2409.11321) compared against: facebookresearch/optimizers ``DistributedShampoo`` (Shi et
    al. 2023, https://arxiv.org/abs/2309.06497; commit 06a1f71 is the last before the SOAP preprint) with Adam
    grafting and exponent -1/2.5. Re-implemented from the maths, not vendored; the choices below are ours.

    Per tensor, with G = p.grad, t counted from 1, bc_i = 1 - b_i^t, sb = ``shampoo_beta`` (betas[1] if negative):
        M <- b1 M + (1-b1) G                      (DistributedShampoo's filtered gradient, betas[0])
        V <- b2 V + (1-b2) G^2                    (the grafting Adam's second moment, betas[1])
        A = (M / bc1) / (sqrt(V / bc2) + eps)     (the Adam direction)
    Matrix tensors (2-D; higher-order tensors viewed as (shape[0], rest)):
        L <- lerp(L, G G^T, 1-sb);  R <- lerp(R, G^T G, 1-sb)       (every step, no bias correction)
        if t % precondition_frequency == 0: L^-r, R^-r by float32 eigh, eigenvalues floored at ``matrix_eps``,
            r = 1 / (2 ``inv_root``)
        if t >= start_preconditioning_step: D = S ||A|| / ||S|| with S = L^-r (M/bc1) R^-r (per-tensor Adam
            grafting; D = 0 if S = 0); else D = A
    Other tensors (0-D, 1-D, empty, or both sides > ``max_precond_dim``): D = A.
    Then theta <- theta (1 - lr wd) - lr D: decoupled decay on the pre-update theta, as torch AdamW.

    With ``start_preconditioning_step=math.inf`` the optimizer is its grafting method, torch's Adam/AdamW, step for
    step (DistributedShampoo's own test pattern).

    Our choices (documented, not the DistributedShampoo code):
        * exponent: per factor -1/(2p) with p = ``inv_root`` = 2.5, i.e. "(L kron R)^(-1/2.5)"; p = 2 gives Gupta et
          al.'s L^-1/4 G R^-1/4. How the paper set -1/2.5 (``exponent_multiplier`` or ``inv_root_override``, per
          factor or overall) is unverified.
        * beta1 is DistributedShampoo's filtered gradient: the EMA of G is what both Shampoo and the grafting Adam
          precondition, so the update with preconditioning off is exactly Adam (a momentum applied after grafting
          would not reduce to Adam). DistributedShampoo's extra SGD ``momentum`` (0 in the paper) is not offered.
        * the factors are plain EMAs with SOAP's ``shampoo_beta``, without bias correction: a scalar on L or R
          cancels in the grafted direction (except through the eigenvalue floor).
        * tensors are not blocked: a side longer than ``max_precond_dim`` is the identity (as in SOAP), and a tensor
          with both sides that long takes Adam. Conv kernels use the (O, I*H*W) matrix view.
        * eigenvalues are floored (clamped at ``matrix_eps``), not shifted by epsilon I; eigh runs in float32 (in the
          factors' own dtype with ``precise``), retried once in float64 on failure (counted in
          ``state["eigh_retries"]``).
        * preconditioning starts at step ``precondition_frequency`` by default, when the first roots exist.

    Args:
        params: iterable of parameters or dicts defining parameter groups; every argument can be set per group.
        lr: learning rate, >= 0. Default 3e-3.
        betas: (beta1, beta2), each in [0, 1): the filtered-gradient and grafting second-moment EMAs. Default
            (0.95, 0.95), SOAP's.
        shampoo_beta: EMA factor of L and R in [0, 1); negative means betas[1]. Default -1.
        eps: > 0, the grafting Adam's epsilon. Default 1e-8.
        weight_decay: decoupled decay, >= 0. Default 0.01.
        precondition_frequency: int >= 1, recompute the inverse roots every this many steps. Default 10.
        start_preconditioning_step: first step that uses the roots: an int >= precondition_frequency, math.inf
            (never), or None (= precondition_frequency). Default None.
        inv_root: p > 0 of the per-factor exponent -1/(2p). Default 2.5.
        matrix_eps: > 0, floor of the factors' eigenvalues. Default 1e-12.
        max_precond_dim: int >= 0; longer sides are not preconditioned. Default 10000.
        precise: test switch: eigh in the factors' dtype (float64 for float64 params). Default False.

    State per tensor: ``step`` (int), ``exp_avg`` M, ``exp_avg_sq`` V; matrix tensors add ``GG`` = [L, R] and
    ``roots`` = [L^-r, R^-r] (``[]`` on an identity side; roots start as the identity) and ``eigh_retries`` (int).
    fp16/bf16 params keep float32 state and a float32 update (kept float32 by ``load_state_dict``); sparse
    gradients and complex params raise RuntimeError.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float = -1,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        start_preconditioning_step: int | float | None = None,
        inv_root: float = 2.5,
        matrix_eps: float = 1e-12,
        max_precond_dim: int = 10000,
        *,
        precise: bool = False,
    ) -> None:
        defaults = _validated(
            {
                "lr": lr,
                "betas": betas,
                "shampoo_beta": shampoo_beta,
                "eps": eps,
                "weight_decay": weight_decay,
                "precondition_frequency": precondition_frequency,
                "start_preconditioning_step": start_preconditioning_step,
                "inv_root": inv_root,
                "matrix_eps": matrix_eps,
                "max_precond_dim": max_precond_dim,
                "precise": precise,
            }
        )
        if _start(defaults) < defaults["precondition_frequency"]:
            raise ValueError(
                f"start_preconditioning_step must be >= precondition_frequency ({precondition_frequency}) so that "
                f"roots exist when preconditioning starts, got {start_preconditioning_step}"
            )
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> dict[str, Any]:
        """Per-group checks, plus start >= frequency once the defaults are filled in (groups and loads alike)."""
        group = _validated(group)
        merged = {**self.defaults, **group}
        if _start(merged) < merged["precondition_frequency"]:
            raise ValueError("start_preconditioning_step must be >= precondition_frequency in every group, got "
                             f"{merged['start_preconditioning_step']} < {merged['precondition_frequency']}")
        return group

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimisation step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._evaluate(closure)

        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            shampoo_beta = group["shampoo_beta"] if group["shampoo_beta"] >= 0 else beta2
            for p in self._params_with_grad(group):
                state = self.state[p]
                dtype = state_dtype(p.dtype)
                if "step" not in state:
                    fmt = torch.preserve_format
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=fmt)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=fmt)
                    shape = _matrix_shape(p, group["max_precond_dim"])
                    if shape is not None:
                        sides = [k if k <= group["max_precond_dim"] else None for k in shape]
                        kw = {"dtype": dtype, "device": p.device}
                        state["GG"] = [torch.zeros(k, k, **kw) if k else [] for k in sides]
                        state["roots"] = [torch.eye(k, **kw) if k else [] for k in sides]
                        state["eigh_retries"] = 0
                state["step"] += 1
                step = state["step"]
                retries = _shampoo_update(
                    p,
                    p.grad,
                    state["exp_avg"],
                    state["exp_avg_sq"],
                    state.get("GG"),
                    state.get("roots"),
                    step,
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    shampoo_beta=shampoo_beta,
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    recompute_roots=step % group["precondition_frequency"] == 0,
                    precondition=step >= _start(group),
                    exponent=1.0 / (2.0 * group["inv_root"]),
                    matrix_eps=group["matrix_eps"],
                    work_dtype=dtype if group["precise"] else torch.float32,
                )
                if retries:
                    state["eigh_retries"] += retries
                    warn_eigh_retries("Shampoo", dtype if group["precise"] else torch.float32, p.shape)
        return loss

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """After torch's load: restore float32 state for bf16/fp16 params, int counters, and owned copies."""
        restore_state(p, saved, state, ("GG", "roots"))
