"""Riemannian SGD, Adam/AMSGrad and Adagrad (Bécigneul & Ganea, ICLR 2019, https://arxiv.org/abs/1810.00760).

There is no official code. The reference implementation is geoopt 0.5.1 (``geoopt/optim/radam.py``,
``rsgd.py``, ``sparse_radam.py``), which calls itself an unofficial implementation of this paper; our defaults are
its semantics and tests/unit/test_riemannian_parity.py holds us to it in float64. Each parameter is a product of
factors: a Poincaré-ball parameter of shape ``(..., d)`` has one factor per row, a Euclidean parameter one factor
per coordinate (so on Euclidean parameters every rule here is exactly torch's Adam / AMSGrad / Adagrad / SGD).

Per factor x with Riemannian gradient r (``U`` is the retraction ``x + u`` or the exp map, then a radial clip):

* RSGD:     ``x <- U_x(-lr r)``
* RADAGRAD: ``G <- G + |r|_x^2``; ``x <- U_x(-lr r / (sqrt(G) + eps))``
* RADAM:    ``m <- b1 m + (1 - b1) r``; ``v <- b2 v + (1 - b2) |r|_x^2`` (one scalar per factor);
  ``x' <- U_x(-lr m_hat / (sqrt(v_hat) + eps))``; ``m <- P_{x -> x'}(m)`` (parallel transport along the geodesic);
  AMSGrad uses ``max`` of the raw v over time.

Deviations from geoopt 0.5.1 (all deliberate, all tested):

* ``p.grad`` is never written: geoopt adds the (coupled, L2) weight decay into ``p.grad`` in place; we add it to
  a copy, so the numbers are the same and a caller's gradient survives the step.
* No silent Euclidean fallback: geoopt treats every plain tensor as Euclidean, so a forgotten tag gives plain Adam on
  a ball parameter. Here every parameter needs a tag (:func:`tag_manifold`) or its group's explicit
  ``manifold="euclidean"`` (or ``"poincare"``); otherwise the constructor raises ValueError.
* ``exp_avg_sq`` holds one value per factor (shape ``(..., 1)`` on the ball) where geoopt stores it broadcast
  over the row; the values are equal.
* ``lazy=True`` is geoopt's ``SparseRiemannianAdam`` semantics (only rows whose gradient is non-zero move, state
  included) on dense gradients, without its AMSGrad bug (it writes sqrt(v_hat / (1 - b2^t)) back into the max).
* RSGD momentum follows torch.optim.SGD (the first buffer is r); geoopt's first buffer is (1 + momentum) r.
  The experiments use momentum 0, where the two agree.
* ``semantics="paper"`` switches to the paper's Fig. 1a (no bias correction, no eps, exp map); with eps = 0 a
  factor whose v is 0 does not move (0/0 is taken as 0). ``adaptivity="elementwise"`` is an ablation: one v per
  coordinate, ``lambda_x^2 r_i^2``, which is not intrinsic (tangent coordinates depend on the chart).
* Steps count per tensor (``state["step"]``, a Python int), as geoopt's Adam; geoopt's RSGD counts per group,
  which only matters for ``stabilize`` and agrees when every parameter gets a gradient every step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from common.optim.base import CheckedOptimizer
from common.optim.precision import state_dtype
from common.optim.validation import (
    Check,
    check_betas,
    check_bool,
    check_choice,
    check_lr,
    check_real,
    check_weight_decay,
    validate_group,
)
from papers.riemannian_adam.manifolds import (
    _MIN,
    MANIFOLDS,
    Manifold,
    PoincareBall,
    manifold_by_name,
    manifold_of,
    rowdot,
)

__all__ = ["SEMANTICS", "RiemannianAdagrad", "RiemannianAdam", "RiemannianSGD"]

UPDATES = ("retraction", "expmap")
ADAPTIVITIES = ("factor", "elementwise")
# What each ``semantics`` of RiemannianAdam sets unless the caller sets it explicitly.
SEMANTICS: dict[str, dict[str, Any]] = {
    "geoopt": {"bias_correction": True, "eps": 1e-8, "update": "retraction"},
    "paper": {"bias_correction": False, "eps": 0.0, "update": "expmap"},
}


def _check_manifold(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, Manifold):
        return value.name
    return str(check_choice("manifold", value, [None, *MANIFOLDS]))


def _check_stabilize(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"stabilize must be None or a positive integer, got {value!r}")
    return value


COMMON_CHECKS: dict[str, Check] = {
    "lr": check_lr,
    "weight_decay": check_weight_decay,
    "manifold": _check_manifold,
    "update": lambda v: check_choice("update", v, UPDATES),
    "stabilize": _check_stabilize,
    "lazy": lambda v: check_bool("lazy", v),
}


def _nonneg_eps(v: object) -> float:
    return check_real("eps", v, low=0.0)


class _Riemannian(CheckedOptimizer):
    """Shared plumbing: manifold resolution, per-row (lazy) application, dtype policy, stabilisation."""

    _checks: dict[str, Check] = COMMON_CHECKS
    _buffers: tuple[str, ...] = ()
    # Ball factors take a closed-form step (fewer passes over the table); tests set False to compare with the
    # generic rule, which follows the formulas term by term. Never set it outside tests.
    _fused: bool = True

    @classmethod
    def _validate(cls, group: dict[str, Any]) -> dict[str, Any]:
        return validate_group(group, cls._checks)

    def _validate_group(self, group: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        return self._validate(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for i, p in enumerate(group["params"]):
            self._manifold(p, group, f"parameter {i} of param group {len(self.param_groups) - 1}")

    def _manifold(self, p: Tensor, group: dict[str, Any], where: str = "parameter") -> Manifold:
        tagged = manifold_of(p)
        if tagged is not None:
            return tagged
        if group.get("manifold") is None:
            raise ValueError(
                f"{type(self).__name__}: {where} has no manifold: tag it with "
                "papers.riemannian_adam.tag_manifold(p, 'poincare'), or set manifold='euclidean' in its param "
                "group (untagged parameters are never treated as Euclidean silently)")
        return manifold_by_name(group["manifold"])

    def _buffer_shape(self, p: Tensor, name: str, man: Manifold, group: dict[str, Any]) -> torch.Size:
        return p.shape

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any], man: Manifold) -> None:
        man.check_param(p, type(self).__name__)
        state["step"] = 0
        for name in self._buffers:
            state[name] = torch.zeros(self._buffer_shape(p, name, man, group), dtype=state_dtype(p.dtype),
                                      device=p.device)

    def _optional(self, group: dict[str, Any]) -> dict[str, bool]:
        """Buffers switched on by a group flag (amsgrad's max): name -> whether it is on."""
        return {}

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One step for every parameter with a gradient; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            optional = self._optional(group)
            for p in self._params_with_grad(group):
                man = self._manifold(p, group)
                state = self.state[p]
                if "step" not in state:
                    self._init_state(p, state, group, man)
                for name, on in optional.items():
                    if on and name not in state:  # switched on mid-run: starts here, as torch's amsgrad
                        state[name] = torch.zeros(self._buffer_shape(p, name, man, group),
                                                  dtype=state_dtype(p.dtype), device=p.device)
                state["step"] += 1
                names = [n for n in self._buffers if n in state] + [n for n, on in optional.items() if on]
                self._apply(p, [state[n] for n in names], group,
                            self._rule(group, man, state["step"], dict(zip(names, range(len(names)), strict=True))))
                k = group["stabilize"]
                if k is not None and state["step"] % k == 0:
                    p.copy_(man.projx(p))
                    for n in self._transported:
                        if n in state:
                            state[n].copy_(man.proju(p, state[n]))
        return loss

    _transported: tuple[str, ...] = ()

    def _rule(self, group: dict[str, Any], man: Manifold, step: int, index: dict[str, int]
              ) -> Callable[[Tensor, Tensor, Sequence[Tensor]], Tensor]:
        raise NotImplementedError

    @staticmethod
    def _apply(p: Tensor, bufs: list[Tensor], group: dict[str, Any],
               rule: Callable[[Tensor, Tensor, Sequence[Tensor]], Tensor]) -> None:
        """Run ``rule(x, g, bufs) -> new x`` on every row (dense) or on the rows with a non-zero gradient (lazy)."""
        if p.numel() == 0:
            return
        sd = state_dtype(p.dtype)
        grad = p.grad
        if not group["lazy"]:
            x = p if p.dtype == sd else p.to(sd)
            p.copy_(rule(x, grad if grad.dtype == sd else grad.to(sd), bufs))
            return
        if not p.is_contiguous():
            raise ValueError("lazy=True needs contiguous parameters")
        d = p.shape[-1] if p.dim() else 1
        g2d = grad.reshape(-1, d)
        rows = g2d.ne(0).any(dim=-1).nonzero().squeeze(1)
        if rows.numel() == 0:
            return
        flat = [b.view(-1, b.shape[-1] if b.dim() else 1) for b in bufs]
        sub = [b.index_select(0, rows) for b in flat]
        p2d = p.view(-1, d)
        y = rule(p2d.index_select(0, rows).to(sd), g2d.index_select(0, rows).to(sd), sub)
        for b, s in zip(flat, sub, strict=True):
            b.index_copy_(0, rows, s)
        p2d.index_copy_(0, rows, y.to(p.dtype))

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """After torch's load: the step is an int again and buffers keep the state dtype (fp32 for bf16 params)."""
        if "step" in saved:
            state["step"] = int(saved["step"])
        for key, value in saved.items():
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device=p.device, dtype=state_dtype(p.dtype))


def _safe_div(num: Tensor, den: Tensor, eps: float) -> Tensor:
    """num / den, where a zero denominator (possible only with eps = 0) gives 0: that factor does not move."""
    out = num / den
    return out if eps > 0 else torch.where(den > 0, out, torch.zeros((), dtype=out.dtype, device=out.device))


class RiemannianAdam(_Riemannian):
    """Riemannian Adaptive Optimization Methods: RADAM and RAMSGRAD.

    Bécigneul & Ganea, ICLR 2019, https://arxiv.org/abs/1810.00760 (Fig. 1a, Eq. 8). No official code exists; the
    defaults are geoopt 0.5.1's ``RiemannianAdam`` (the reference implementation) and the module docstring lists
    every deviation from it.

    Args:
        params: parameters or param groups. Each parameter is tagged with :func:`tag_manifold` or its group sets
            ``manifold``.
        lr: learning rate, >= 0. Default 1e-3.
        betas: (beta1, beta2), each in [0, 1). Default (0.9, 0.999).
        eps: >= 0, added to sqrt(v_hat). Default: the semantics' (1e-8 for "geoopt", 0 for "paper").
        weight_decay: coupled L2 penalty, >= 0: g + wd x before the Riemannian gradient (geoopt). Default 0.
        amsgrad: RAMSGRAD, the max of the raw v over time. Default False.
        bias_correction: Adam's bias correction. Default: the semantics' (True for "geoopt", False for "paper").
        update: "retraction" (x + u, geoopt's ``PoincareBall``) or "expmap" (geoopt's ``PoincareBallExact``,
            the paper). Default: the semantics' ("retraction" for "geoopt", "expmap" for "paper").
        semantics: "geoopt" (default) or "paper" (Fig. 1a: no bias correction, eps 0, exp map). Explicit
            ``eps``/``bias_correction``/``update`` override it.
        adaptivity: "factor" (one v per factor, the paper) or "elementwise" (ablation). Default "factor".
        lazy: update only the rows (factors along the last dim) whose gradient is non-zero. Default False.
        stabilize: every ``stabilize`` steps re-project x (and m) onto the manifold (geoopt). Default None.
        manifold: for untagged parameters of a group: "euclidean" or "poincare". Default None (tag required).
    """

    _checks = {
        **COMMON_CHECKS,
        "betas": check_betas,
        "eps": _nonneg_eps,
        "amsgrad": lambda v: check_bool("amsgrad", v),
        "bias_correction": lambda v: check_bool("bias_correction", v),
        "semantics": lambda v: check_choice("semantics", v, list(SEMANTICS)),
        "adaptivity": lambda v: check_choice("adaptivity", v, ADAPTIVITIES),
    }
    _buffers = ("exp_avg", "exp_avg_sq")
    _transported = ("exp_avg",)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float | None = None,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        bias_correction: bool | None = None,
        update: str | None = None,
        semantics: str = "geoopt",
        adaptivity: str = "factor",
        lazy: bool = False,
        stabilize: int | None = None,
        manifold: str | Manifold | None = None,
    ) -> None:
        defaults = self._resolved({
            "lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
            "bias_correction": bias_correction, "update": update, "semantics": semantics, "adaptivity": adaptivity,
            "lazy": lazy, "stabilize": stabilize, "manifold": manifold,
        })
        super().__init__(params, defaults)

    @classmethod
    def _resolved(cls, group: dict[str, Any]) -> dict[str, Any]:
        """Fill the semantics-dependent keys a group leaves unset (None or absent) from its semantics, then check."""
        if "semantics" in group:
            sem = check_choice("semantics", group["semantics"], list(SEMANTICS))
            for key, value in SEMANTICS[str(sem)].items():
                if group.get(key) is None:
                    group = {**group, key: value}
        return cls._validate(group)

    def _validate_group(self, group: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        return self._resolved(group)

    def _optional(self, group: dict[str, Any]) -> dict[str, bool]:
        return {"max_exp_avg_sq": group["amsgrad"]}

    def _buffer_shape(self, p: Tensor, name: str, man: Manifold, group: dict[str, Any]) -> torch.Size:
        if name != "exp_avg" and man.name == "poincare" and group["adaptivity"] == "factor":
            return torch.Size((*p.shape[:-1], 1))
        return p.shape

    def _rule(self, group: dict[str, Any], man: Manifold, step: int, index: dict[str, int]
              ) -> Callable[[Tensor, Tensor, Sequence[Tensor]], Tensor]:
        beta1, beta2 = group["betas"]
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        factor, update = group["adaptivity"] == "factor", group["update"]
        bc1, bc2 = (1 - beta1**step, 1 - beta2**step) if group["bias_correction"] else (1.0, 1.0)
        i_max = index.get("max_exp_avg_sq")
        if self._fused and isinstance(man, PoincareBall) and factor:
            return self._ball_rule(man, lr, beta1, beta2, eps, wd, bc1, bc2, update, i_max)

        def rule(x: Tensor, g: Tensor, bufs: Sequence[Tensor]) -> Tensor:
            m, v = bufs[0], bufs[1]
            if wd:
                g = g.add(x, alpha=wd)  # a copy: p.grad is never written
            x2 = man.rows_sq(x)
            r = man.egrad2rgrad(x, g, x2)
            m.mul_(beta1).add_(r, alpha=1 - beta1)
            v.mul_(beta2).add_(man.sq_norm(x, r, x2, factor=factor), alpha=1 - beta2)
            if i_max is not None:
                torch.maximum(bufs[i_max], v, out=bufs[i_max])
                v = bufs[i_max]
            denom = (v / bc2).sqrt_().add_(eps) if bc2 != 1.0 else v.sqrt().add_(eps)
            direction = _safe_div(m / bc1 if bc1 != 1.0 else m, denom, eps)
            y, m_new = man.move(x, direction, -lr, x2, update, m)
            if m_new is not m:
                m.copy_(m_new)
            return y

        return rule


    @staticmethod
    def _ball_rule(man: PoincareBall, lr: float, beta1: float, beta2: float, eps: float, wd: float, bc1: float,
                   bc2: float, update: str, i_max: int | None) -> Callable[[Tensor, Tensor, Sequence[Tensor]], Tensor]:
        """The same step as the generic rule for ball factors, with every row-wise term from four dot products
        (|x|^2, |g|^2, <x, m>, |m|^2): r = g / lambda^2 is never formed, and the move and the transport of m are
        per-row combinations of x and m (:meth:`PoincareBall.line`). Equal to the generic rule to rounding."""

        def rule(x: Tensor, g: Tensor, bufs: Sequence[Tensor]) -> Tensor:
            m, v = bufs[0], bufs[1]
            if wd:
                g = g.add(x, alpha=wd)
            x2 = rowdot(x, x)
            half = (1.0 - x2).clamp_min(_MIN) * 0.5
            s2 = half * half  # 1 / lambda_x^2
            m.mul_(beta1).addcmul_(g, s2, value=1 - beta1)  # r = g / lambda^2
            v.mul_(beta2).add_(s2 * rowdot(g, g), alpha=1 - beta2)  # <r, r>_x
            if i_max is not None:
                torch.maximum(bufs[i_max], v, out=bufs[i_max])
                v = bufs[i_max]
            denom = (v / bc2).sqrt_().add_(eps) if bc2 != 1.0 else v.sqrt().add_(eps)
            c = -lr / (bc1 * denom)
            if eps == 0:
                c = torch.where(denom > 0, c, torch.zeros((), dtype=c.dtype, device=c.device))
            p, q, xm, mm, y2 = man.line(x, m, c, x2, update)
            a, b = man.transport_coefficients(x2, xm, mm, p, q, y2)
            y = man.projx((x * p).addcmul_(m, q))  # the formed y, clipped (see PoincareBall.line)
            m.mul_(a).addcmul_(x, b)
            return y

        return rule


class RiemannianAdagrad(_Riemannian):
    """Riemannian Adaptive Optimization Methods: RADAGRAD (Bécigneul & Ganea, ICLR 2019, Eq. 2 / Alg. 1).

    ``G <- G + |r|_x^2`` (one G per factor), ``x <- U_x(-lr r / (sqrt(G) + eps))``. geoopt has no Adagrad; on
    Euclidean parameters this is ``torch.optim.Adagrad`` with ``lr_decay=0`` and ``initial_accumulator_value=0``
    (same eps placement, default 1e-10). eps = 0 is the paper's rule (a factor with G = 0 does not move).

    Args:
        params, lr (default 1e-2), eps (>= 0, default 1e-10), weight_decay (coupled, >= 0), update ("retraction",
        default, or "expmap"), adaptivity ("factor" or "elementwise"), lazy, stabilize, manifold: as in
        :class:`RiemannianAdam`.
    """

    _checks = {**COMMON_CHECKS, "eps": _nonneg_eps,
               "adaptivity": lambda v: check_choice("adaptivity", v, ADAPTIVITIES)}
    _buffers = ("sum",)

    def __init__(self, params: ParamsT, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0, *,
                 update: str = "retraction", adaptivity: str = "factor", lazy: bool = False,
                 stabilize: int | None = None, manifold: str | Manifold | None = None) -> None:
        defaults = self._validate({"lr": lr, "eps": eps, "weight_decay": weight_decay, "update": update,
                                   "adaptivity": adaptivity, "lazy": lazy, "stabilize": stabilize,
                                   "manifold": manifold})
        super().__init__(params, defaults)

    def _buffer_shape(self, p: Tensor, name: str, man: Manifold, group: dict[str, Any]) -> torch.Size:
        if man.name == "poincare" and group["adaptivity"] == "factor":
            return torch.Size((*p.shape[:-1], 1))
        return p.shape

    def _rule(self, group: dict[str, Any], man: Manifold, step: int, index: dict[str, int]
              ) -> Callable[[Tensor, Tensor, Sequence[Tensor]], Tensor]:
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        factor, update = group["adaptivity"] == "factor", group["update"]
        if self._fused and isinstance(man, PoincareBall) and factor:
            def ball(x: Tensor, g: Tensor, bufs: Sequence[Tensor]) -> Tensor:
                if wd:
                    g = g.add(x, alpha=wd)
                x2 = rowdot(x, x)
                s2 = ((1.0 - x2).clamp_min(_MIN) * 0.5) ** 2
                acc = bufs[0].add_(s2 * rowdot(g, g))  # <r, r>_x = |g|^2 / lambda^2
                denom = acc.sqrt().add_(eps)
                c = _safe_div(-lr * s2, denom, eps)  # u = c g
                return man.step_along(x, g, c, x2, update)

            return ball

        def rule(x: Tensor, g: Tensor, bufs: Sequence[Tensor]) -> Tensor:
            acc = bufs[0]
            if wd:
                g = g.add(x, alpha=wd)
            x2 = man.rows_sq(x)
            r = man.egrad2rgrad(x, g, x2)
            acc.add_(man.sq_norm(x, r, x2, factor=factor))
            return man.move(x, _safe_div(r, acc.sqrt().add_(eps), eps), -lr, x2, update, None)[0]

        return rule


class RiemannianSGD(_Riemannian):
    """Riemannian Adaptive Optimization Methods: the RSGD baseline (Bonnabel 2013; Bécigneul & Ganea, ICLR 2019).

    ``x <- U_x(-lr r)``; with momentum, torch.optim.SGD's buffer (first buffer r, then ``mu b + (1 - dampening) r``,
    Nesterov optional), transported to the new point. With momentum 0 this is geoopt 0.5.1's ``RiemannianSGD``
    exactly; with momentum it follows torch (geoopt's first buffer is (1 + mu) r).

    Args:
        params; lr (>= 0, default 1e-3); momentum (>= 0, default 0); dampening (>= 0, default 0); nesterov
        (needs momentum > 0 and dampening 0); weight_decay (coupled, >= 0); update, lazy, stabilize, manifold: as
        in :class:`RiemannianAdam` (update defaults to "retraction").
    """

    _checks = {
        **COMMON_CHECKS,
        "momentum": lambda v: check_real("momentum", v, low=0.0),
        "dampening": lambda v: check_real("dampening", v, low=0.0),
        "nesterov": lambda v: check_bool("nesterov", v),
    }
    _transported = ("momentum_buffer",)

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, update: str = "retraction",
                 lazy: bool = False, stabilize: int | None = None, manifold: str | Manifold | None = None) -> None:
        defaults = self._validate({"lr": lr, "momentum": momentum, "dampening": dampening,
                                   "weight_decay": weight_decay, "nesterov": nesterov, "update": update,
                                   "lazy": lazy, "stabilize": stabilize, "manifold": manifold})
        super().__init__(params, defaults)

    @classmethod
    def _validate(cls, group: dict[str, Any]) -> dict[str, Any]:
        group = validate_group(group, cls._checks)
        if group.get("nesterov") and (group.get("momentum", 0.0) <= 0 or group.get("dampening", 0.0) != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening 0")
        return group

    def _optional(self, group: dict[str, Any]) -> dict[str, bool]:
        return {"momentum_buffer": group["momentum"] > 0}

    def _rule(self, group: dict[str, Any], man: Manifold, step: int, index: dict[str, int]
              ) -> Callable[[Tensor, Tensor, Sequence[Tensor]], Tensor]:
        lr, wd, mu = group["lr"], group["weight_decay"], group["momentum"]
        damp, nesterov, update = group["dampening"], group["nesterov"], group["update"]
        i_buf = index.get("momentum_buffer")
        if self._fused and isinstance(man, PoincareBall) and i_buf is None:
            def ball(x: Tensor, g: Tensor, bufs: Sequence[Tensor]) -> Tensor:
                if wd:
                    g = g.add(x, alpha=wd)
                x2 = rowdot(x, x)
                c = ((1.0 - x2).clamp_min(_MIN) * 0.5) ** 2 * -lr  # u = -lr g / lambda^2 = c g
                return man.step_along(x, g, c, x2, update)

            return ball

        def rule(x: Tensor, g: Tensor, bufs: Sequence[Tensor]) -> Tensor:
            if wd:
                g = g.add(x, alpha=wd)
            x2 = man.rows_sq(x)
            r = man.egrad2rgrad(x, g, x2)
            if i_buf is None:
                return man.move(x, r, -lr, x2, update, None)[0]
            buf = bufs[i_buf]
            if step == 1:
                buf.copy_(r)
            else:
                buf.mul_(mu).add_(r, alpha=1 - damp)
            d = r.add(buf, alpha=mu) if nesterov else buf
            y, moved = man.move(x, d, -lr, x2, update, buf)
            if moved is not buf:
                buf.copy_(moved)
            return y

        return rule
