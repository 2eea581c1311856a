"""MARS with the semantics of the authors' released code (AGI-Arena/MARS, commit 4831e28, ``MARS/optimizers/mars.py``).

The maths lives once, in :func:`common.kernels.mars.mars_update` (one tensor at a time, the readable definition);
the foreach, compiled and Triton implementations beside it are chosen with ``impl=`` and tested against it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.kernels.mars import mars_step
from common.kernels.mars import mars_update as _mars_update
from common.optim.base import CheckedOptimizer
from common.optim.precision import state_dtype
from common.optim.validation import (
    ADAM_CHECKS,
    Check,
    bool_checks,
    check_beta,
    check_choice,
    check_dense_grad,
    check_lr,
    check_real,
    validate_group,
)

__all__ = ["MARS", "MARS_TYPES"]

MARS_TYPES = ("adamw", "lion", "shampoo", "sgd")
# The official spellings ("mars-sgd" comes from the fused file) are accepted and stored in the short form.
_OFFICIAL_TYPE_NAMES = {f"mars-{t}": t for t in MARS_TYPES}
_STATE_TENSORS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "last_grad", "previous_grad")
_STATE_INTS = ("step", "last_grad_step", "previous_grad_step")
_FLAGS = ("amsgrad", "is_approx", "optimize_1d", "clip_c")


def _batch() -> dict[str, list[Any]]:
    return {k: [] for k in ("params", "grads", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "last_grad", "step")}


def _check_mars_type(value: object) -> str:
    name = check_choice("mars_type", value, [*MARS_TYPES, *_OFFICIAL_TYPE_NAMES])
    return _OFFICIAL_TYPE_NAMES.get(name, name)  # type: ignore[arg-type, return-value]


def _check_betas_1d(value: object) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"betas_1d must be a sequence of 2 numbers in [0, 1), got {value!r}")
    return tuple(check_beta(f"betas_1d[{i}]", b) for i, b in enumerate(value))


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    """Check (and normalise) whichever hyperparameters ``group`` sets; the error names the argument."""
    if "lr_1d" in group:
        raise ValueError("lr_1d is a constructor argument; a param group sets lr_1d_factor instead "
                         "(its 1-D learning rate is lr * lr_1d_factor)")
    checks: dict[str, Check] = {
        **ADAM_CHECKS,
        "gamma": lambda v: check_real("gamma", v, low=0.0),
        "mars_type": _check_mars_type,
        "lr_1d_factor": lambda v: check_real("lr_1d_factor", v, low=0.0),
        "betas_1d": _check_betas_1d,
        "weight_decay_1d": lambda v: check_real("weight_decay_1d", v, low=0.0),
        **bool_checks(*_FLAGS),
    }
    return validate_group(group, checks)


class MARS(CheckedOptimizer):
    """MARS: Unleashing the Power of Variance Reduction for Training Large Models.

    Yuan, Liu, Wu, Zhou, Gu, ICML 2025, https://arxiv.org/abs/2411.10438.
    Follows the authors' ``MARS/optimizers/mars.py::MARS`` and the exact-mode loop of ``MARS/train_mars.py`` at
    https://github.com/AGI-Arena/MARS, commit 4831e28 (2026-03-25), including its defaults.

    Routing: a tensor takes the MARS branch if ``optimize_1d`` or it is 2-D; every other tensor (1-D, 0-D, 4-D conv
    kernels) takes the AdamW branch. With g = p.grad (after the loop's global clip), t counted from 1, bc_i = 1 - b_i^t:

    MARS branch (b1, b2 = ``betas``, wd = ``weight_decay``):
        c = g + gamma b1/(1-b1) (g - last_grad)      (last_grad = 0 at t=1)
        c <- c / max(||c||_2, 1)                      (per tensor, if ``clip_c``)
        m <- b1 m + (1-b1) c
        "adamw":   v <- b2 v + (1-b2) c^2;  theta <- theta - lr (wd theta + (m/bc1) / (sqrt(v/bc2) + eps))
        "lion":    theta <- theta - lr (wd theta + sign(m))        (v is allocated but unused)
        "sgd":     theta <- theta - lr (wd theta + m)              (identity preconditioner, no bias correction)
        "shampoo": 2-D: theta <- theta - lr (NS5(m/(1-b1)) max(1, rows/cols)^0.5 + wd theta), NS5 in bf16
                   (:func:`common.optim.newton_schulz.newton_schulz5`); other tensors (with ``optimize_1d``) take
                   the "adamw" rule.
    AdamW branch (raw g; no correction, no clip; b1, b2 = ``betas_1d``):
        m, v EMAs of g;  theta <- theta - lr lr_1d_factor (weight_decay_1d theta + (m/bc1) / (sqrt(v/bc2) + eps)).
    With amsgrad, max(v) replaces v in both "adamw" rules. The decay is always on the pre-update theta.

    Approximate mode (``is_approx=True``, the default): after each step, last_grad <- g, so the correction uses the
    previous step's gradient (previous batch, previous parameters). Nothing else is needed in the loop.

    Exact mode (``is_approx=False``): the correction for step t+1 must be grad f(x_t, xi_{t+1}), the gradient of the
    batch of step t+1 at the parameters *before* that step. The loop records it with two calls, as in
    ``train_mars.py``:
        * :meth:`update_previous_grad`: copy the current ``p.grad`` (after the global clip) into ``previous_grad``;
        * :meth:`update_last_grad`: copy ``previous_grad`` into ``last_grad``, the buffer the next step reads.
    Two call orders give the same trajectory:

    Look-ahead (official; needs the next batch, no extra parameter copy). Each iteration t, at parameters x_t::

        opt.zero_grad(); loss(next_batch).backward(); clip_grad_norm_(params, 1.0)
        opt.update_previous_grad()                   # grad f(x_t, xi_{t+1}), for step t+1
        opt.zero_grad(); loss(batch).backward(); clip_grad_norm_(params, 1.0)
        opt.step()
        opt.update_last_grad()

    Look-back (two gradients on the same batch; keeps a copy of x_{t-1}, convenient in a Lightning
    ``training_step`` with manual optimization, which sees one batch). Each iteration t >= 2::

        with torch.no_grad(): swap x_{t-1} into the model
        opt.zero_grad(); loss(batch).backward(); clip_grad_norm_(params, 1.0)
        opt.update_previous_grad(); opt.update_last_grad()      # grad f(x_{t-1}, xi_t), for this step
        with torch.no_grad(): swap x_t back (and keep it as the next x_{t-1})
        opt.zero_grad(); loss(batch).backward(); clip_grad_norm_(params, 1.0)
        opt.step()

    Step 1 takes last_grad = 0 in both. In exact mode :meth:`step` raises ``RuntimeError`` if a MARS-branch tensor's
    ``last_grad`` was not recorded for it (a forgotten call would otherwise silently turn the correction into a
    constant gain). Both methods are no-ops in approximate mode, so one loop can drive both modes.

    Args:
        params: iterable of parameters or dicts defining parameter groups. Every argument below except ``lr_1d``
            can be overridden per group; a group sets ``lr_1d_factor``, not ``lr_1d``.
        lr: learning rate of the MARS branch, >= 0. Default 3e-3.
        betas: (beta1, beta2) of the MARS branch, each in [0, 1). beta1 also scales the correction. Default
            (0.95, 0.99).
        eps: > 0, added to sqrt(v_hat) (torch AdamW's placement) and to ||m|| in NS5. Default 1e-8.
        weight_decay: decoupled decay of the MARS branch, >= 0. Default 0.
        amsgrad: use max(v) in both "adamw" rules. Default False.
        gamma: >= 0, scale of the gradient correction; 0 switches variance reduction off (the control arm).
            Stored in the param groups, so it can be scheduled. Default 0.025.
        is_approx: approximate (True) or exact (False) correction, see above. Default True.
        mars_type: "adamw", "lion", "shampoo" or "sgd" (the official "mars-adamw", ... are accepted). Default "adamw".
        optimize_1d: send every tensor through the MARS branch. Default False.
        lr_1d: learning rate of the AdamW branch; stored as ``lr_1d_factor = lr_1d / lr`` in the param groups, so a
            scheduler that rescales ``lr`` rescales it too. Default 3e-3.
        betas_1d: (beta1, beta2) of the AdamW branch, each in [0, 1). Default (0.9, 0.95).
        weight_decay_1d: decoupled decay of the AdamW branch, >= 0. It replaces the group's ``weight_decay`` there:
            with the default 0.1, biases and norm gains are decayed even in a group with ``weight_decay=0``
            (official behaviour; set it explicitly). Default 0.1.
        clip_c: clip c per tensor to norm <= 1 (official behaviour). Default True.
        impl: implementation of the elementwise rules, see :mod:`common.kernels` ("reference", "foreach",
            "compiled", "triton" or "auto"); MARS-Shampoo's Newton-Schulz on 2-D tensors always runs the reference.
            Default None: :func:`common.kernels.default_impl`, i.e. "auto" (Triton on CUDA, foreach elsewhere;
            foreach is bit-identical to the reference on CPU).

    Param-group keys: lr, betas, eps, weight_decay, amsgrad, gamma, is_approx, mars_type, optimize_1d, lr_1d_factor,
    betas_1d, weight_decay_1d, clip_c. State per tensor: ``step`` (int), ``exp_avg``, ``exp_avg_sq``, ``last_grad``,
    ``max_exp_avg_sq`` (amsgrad); exact mode adds ``previous_grad`` and the ints ``previous_grad_step`` and
    ``last_grad_step`` (the value of ``step`` when each buffer was written).

    Deviations from the official code:
        * ``last_grad`` is an owned copy of g. The official code stores an alias of ``p.grad``; with
          ``zero_grad(set_to_none=False)`` (torch < 2.0's default) the next backward writes g_{t+1} into that same
          tensor, so last_grad == g at every step and the correction silently vanishes (MARS becomes its gamma=0
          control arm).
        * ``gamma``, ``mars_type``, ``is_approx``, ``optimize_1d``, ``eps``, ``betas_1d``, ``weight_decay_1d`` and
          ``lr_1d_factor`` live in the param groups (per-group, scheduled, saved in ``state_dict``). The official code
          reads them from attributes fixed at construction and ignores group values; when no group overrides them the
          two agree. The official 1-D decay ``weight_decay if optimize_1d else weight_decay_1d`` is dead code in its
          first arm (with ``optimize_1d`` no tensor reaches the AdamW branch), so ``weight_decay_1d`` is used as is.
        * extra options, defaulting to the official behaviour: ``clip_c`` (False switches the per-tensor clip off,
          for the reduction tests) and ``mars_type="sgd"`` (the identity preconditioner of the fused file, written as
          theta <- theta - lr (wd theta + m); the fused file's own "mars-sgd" updates m twice).
        * the clip divides by max(||c||, 1) instead of branching on ``||c|| > 1``: same values, no host sync.
        * NS5 runs eagerly; the official function is ``torch.compile``-d, whose fused bf16 elementwise ops round once
          instead of per op, so the two differ at the bf16 rounding level.
        * exact mode: :meth:`update_previous_grad` / :meth:`update_last_grad` work before the first step and skip
          tensors without a gradient (the official ones print, or raise ``KeyError``); :meth:`step` checks that
          ``last_grad`` was recorded for it. The official code's ``step(bs=...)`` (README) and its unused
          ``grads``/``output_params``/... arguments are not accepted: ``step`` takes a closure only.
        * precision: fp16/bf16 params get fp32 state and fp32 maths (the official code runs them in their own dtype);
          ``load_state_dict`` keeps that state fp32. ``state["step"]`` is a Python int, as in the official code.
        * ``load_state_dict`` copies the buffers (torch, and the official code through it, keeps the source's
          tensors when dtype and device match, so a live state_dict loaded into a second optimizer is shared).
        * stricter checks: eps must be > 0 (the official code accepts 0, which makes 0/0 at zero-gradient
          coordinates), gamma >= 0, flags must be bools, every argument is validated (the official code asserts on
          ``mars_type`` and does not check the rest); sparse gradients and complex params raise RuntimeError.
    """

    # Test-only hook: the dtype of the Newton-Schulz iteration (official: bf16). The parity tests set float64 to
    # compare the Shampoo rule with a float64 reference at a tight tolerance. Never set it outside tests.
    _newton_schulz_dtype: torch.dtype = torch.bfloat16

    def __init__(
        self,
        params: ParamsT,
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        gamma: float = 0.025,
        is_approx: bool = True,
        mars_type: str = "adamw",
        optimize_1d: bool = False,
        lr_1d: float = 3e-3,
        betas_1d: tuple[float, float] = (0.9, 0.95),
        weight_decay_1d: float = 0.1,
        clip_c: bool = True,
        *,
        impl: str | None = None,
    ) -> None:
        self.impl = self._check_impl(impl)
        lr = check_lr(lr)
        lr_1d = check_real("lr_1d", lr_1d, low=0.0)
        if lr == 0 and lr_1d != 0:
            raise ValueError(f"lr_1d is stored as lr_1d / lr, so lr must be > 0 when lr_1d > 0 (lr_1d={lr_1d})")
        defaults = _validated(
            {
                "lr": lr,
                "betas": betas,
                "eps": eps,
                "weight_decay": weight_decay,
                "amsgrad": amsgrad,
                "gamma": gamma,
                "is_approx": is_approx,
                "mars_type": mars_type,
                "optimize_1d": optimize_1d,
                "lr_1d_factor": lr_1d / lr if lr != 0 else 1.0,
                "betas_1d": betas_1d,
                "weight_decay_1d": weight_decay_1d,
                "clip_c": clip_c,
            }
        )
        super().__init__(params, defaults)

    _validate_group = staticmethod(_validated)

    def _state_for(self, p: torch.Tensor, amsgrad: bool) -> dict[str, Any]:
        """Lazily create whichever state is missing; exact mode may have created ``previous_grad`` already."""
        state = self.state[p]
        dtype = state_dtype(p.dtype)
        fmt = torch.preserve_format
        if "step" not in state:
            state["step"] = 0
        for key in ("exp_avg", "exp_avg_sq", "last_grad"):
            if key not in state:
                state[key] = torch.zeros_like(p, dtype=dtype, memory_format=fmt)
        if amsgrad and "max_exp_avg_sq" not in state:
            # At creation, or when amsgrad is switched on mid-run: the max then starts from this step's v.
            state["max_exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=fmt)
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimisation step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._evaluate(closure)

        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            amsgrad = group["amsgrad"]
            # Two elementwise batches (MARS branch, AdamW branch) and the Newton-Schulz tensors, one at a time.
            batches: dict[bool, dict[str, list[Any]]] = {True: _batch(), False: _batch()}
            for p in self._params_with_grad(group):
                grad = p.grad

                state = self._state_for(p, amsgrad)
                use_mars = group["optimize_1d"] or grad.ndim == 2
                if use_mars and not group["is_approx"] and state["step"] > 0:
                    if state.get("last_grad_step") != state["step"]:
                        raise RuntimeError(
                            "MARS(is_approx=False): last_grad was not recorded for this step. Before step t+1, call "
                            "update_previous_grad() with the gradient of step t+1's batch at the parameters x_t, then "
                            "update_last_grad() (see the MARS docstring for the two call orders)."
                        )
                state["step"] += 1
                if use_mars and group["mars_type"] == "shampoo" and grad.ndim == 2:
                    _mars_update(
                        p,
                        grad,
                        state["exp_avg"],
                        state["exp_avg_sq"],
                        state["max_exp_avg_sq"] if amsgrad else None,
                        state["last_grad"],
                        state["step"],
                        lr=group["lr"],
                        beta1=beta1,
                        beta2=beta2,
                        eps=group["eps"],
                        weight_decay=group["weight_decay"],
                        gamma=group["gamma"],
                        mars_type="shampoo",
                        clip_c=group["clip_c"],
                        use_mars=True,
                        lr_1d_factor=group["lr_1d_factor"],
                        betas_1d=group["betas_1d"],
                        weight_decay_1d=group["weight_decay_1d"],
                        ns_dtype=self._newton_schulz_dtype,
                    )
                    if group["is_approx"]:
                        state["last_grad"].copy_(grad)  # a copy: p.grad may be zeroed in place before the next step
                    continue
                batch = batches[use_mars]
                for key, value in (("params", p), ("grads", grad), ("exp_avg", state["exp_avg"]),
                                   ("exp_avg_sq", state["exp_avg_sq"]), ("last_grad", state["last_grad"]),
                                   ("step", state["step"])):
                    batch[key].append(value)
                if amsgrad:
                    batch["max_exp_avg_sq"].append(state["max_exp_avg_sq"])
            for use_mars, batch in batches.items():
                if not batch["params"]:
                    continue
                mars_type = "adamw" if group["mars_type"] == "shampoo" else group["mars_type"]
                betas = (beta1, beta2) if use_mars else group["betas_1d"]
                mars_step(
                    self.impl,
                    batch["params"],
                    batch["grads"],
                    batch["exp_avg"],
                    batch["exp_avg_sq"],
                    batch["max_exp_avg_sq"] if amsgrad else None,
                    batch["last_grad"],
                    batch["step"],
                    lr=group["lr"] if use_mars else group["lr"] * group["lr_1d_factor"],
                    beta1=betas[0],
                    beta2=betas[1],
                    eps=group["eps"],
                    weight_decay=group["weight_decay"] if use_mars else group["weight_decay_1d"],
                    gamma=group["gamma"],
                    mars_type=mars_type,
                    clip_c=group["clip_c"],
                    use_mars=use_mars,
                    record_last_grad=group["is_approx"],  # a copy: p.grad may be zeroed in place before the next step
                )
        return loss

    @torch.no_grad()
    def update_previous_grad(self) -> None:
        """Exact mode: record the current ``p.grad`` as the correction gradient of a coming step (see the class doc).

        Call it right after the backward (and global clip) of the extra pass. No-op for approximate-mode groups.
        """
        for group in self.param_groups:
            if group["is_approx"]:
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                check_dense_grad(p.grad, "MARS")
                state = self.state[p]
                if "previous_grad" not in state:
                    state["previous_grad"] = torch.zeros_like(p, dtype=state_dtype(p.dtype))
                state["previous_grad"].copy_(p.grad)
                state["previous_grad_step"] = state.get("step", 0)

    @torch.no_grad()
    def update_last_grad(self) -> None:
        """Exact mode: make the recorded ``previous_grad`` the ``last_grad`` the next :meth:`step` subtracts.

        Call it after :meth:`step` (look-ahead order) or right after :meth:`update_previous_grad` (look-back order).
        A tensor whose ``previous_grad`` was not recorded in this iteration keeps its ``last_grad``; :meth:`step` then
        raises if it needs it. Idempotent, and a no-op for approximate-mode groups.
        """
        for group in self.param_groups:
            if group["is_approx"]:
                continue
            for p in group["params"]:
                state = self.state.get(p)
                if not state or "previous_grad" not in state:
                    continue
                steps_taken = state.get("step", 0)
                # Recorded before the step just taken (look-ahead) or at the current parameters (look-back).
                if steps_taken - state["previous_grad_step"] not in (0, 1):
                    continue
                if "last_grad" not in state:
                    state["last_grad"] = torch.zeros_like(p, dtype=state_dtype(p.dtype))
                state["last_grad"].copy_(state["previous_grad"])
                state["last_grad_step"] = steps_taken

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """After torch's load: restore fp32 state for fp16/bf16 params and int counters, on owned copies.

        Also accepts an official MARS checkpoint: group keys it lacks (``lr_1d_factor``, ``betas_1d``, ...) are taken
        from this optimizer's current groups, and ``"mars-adamw"``-style names are normalised.
        """
        for key in _STATE_INTS:
            if key in saved:
                state[key] = int(saved[key])
        for key in _STATE_TENSORS:
            value = saved.get(key)
            if isinstance(value, torch.Tensor):
                # A copy: torch keeps the source's tensors when dtype and device already match, so loading a
                # live state_dict into a second optimizer would make both update the same buffers.
                state[key] = value.to(device=p.device, dtype=state_dtype(p.dtype), copy=True)
