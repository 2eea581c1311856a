"""aSGLD: the noisy Adam-preconditioned Langevin optimizer behind Adam LMCDQN (Ishfaq et al., ICLR 2024)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.optim.base import CheckedOptimizer
from common.optim.precision import state_dtype
from common.optim.validation import (
    ADAM_CHECKS,
    Check,
    check_bool,
    check_real,
    validate_group,
)

__all__ = ["ASGLD", "asgld_update"]


def asgld_update(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                 max_exp_avg_sq: torch.Tensor | None, noise: torch.Tensor, *, lr: float, beta1: float,
                 beta2: float, eps: float, weight_decay: float, a: float, noise_scale: float) -> None:
    """One aSGLD step on one tensor, in place, in the official operation order (``adam_sgld``):

    g <- g + wd theta (a copy); m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2 (no bias correction);
    theta <- theta - lr g;  theta <- theta - lr a m / (sqrt(v or v_max) + eps);
    theta <- theta + noise_scale sqrt(2 lr) noise,  noise ~ N(0, I) drawn by the caller.
    """
    compute = exp_avg.dtype
    grad = grad.to(compute)
    theta = param if param.dtype == compute else param.to(compute)
    if weight_decay != 0:
        grad = grad.add(theta, alpha=weight_decay)
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    if max_exp_avg_sq is not None:
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = max_exp_avg_sq.sqrt().add_(eps)
    else:
        denom = exp_avg_sq.sqrt().add_(eps)
    theta.add_(grad, alpha=-lr)
    theta.addcdiv_(a * exp_avg, denom, value=-lr)
    theta.add_(noise_scale * math.sqrt(2.0 * lr) * noise)
    if theta is not param:
        param.copy_(theta)


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Check] = {
        **ADAM_CHECKS,
        "amsgrad": lambda v: check_bool("amsgrad", v),
        "noise_scale": lambda v: check_real("noise_scale", v, low=0.0),
        "a": lambda v: check_real("a", v, low=0.0),
    }
    return validate_group(group, checks)


class ASGLD(CheckedOptimizer):
    """Adam SGLD (aSGLD): the optimizer of Adam LMCDQN.

    Ishfaq, Lan, Xu, Mahmood, Precup, Anandkumar, Azizzadenesheli, *Provable and Practical: Efficient Exploration
    in Reinforcement Learning via Langevin Monte Carlo*, ICLR 2024, https://arxiv.org/abs/2305.18246. Follows the
    official ``components/lmc_dqn/optim.py::aSGLD`` (hmishfaq/LMC-LSVI@1fd3c98), itself after Kim et al.
    (arXiv:2009.09535). Each step, per parameter (see :func:`asgld_update`):

        g <- g + wd theta                                    (coupled L2, not written into p.grad)
        m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2        (NO bias correction, as in the official code)
        theta <- theta - lr g - lr a m / (sqrt(v) + eps) + noise_scale sqrt(2 lr) N(0, I)

    so ``a=0, noise_scale=0`` is plain SGD and the Adam term is a preconditioned drift added to the gradient step.

    Args:
        params: iterable of parameters or dicts defining parameter groups.
        lr: step size, >= 0. Default 1e-3.
        betas: (beta1, beta2) in [0, 1). Default (0.9, 0.999).
        eps: > 0, added to sqrt(v). Default 1e-8.
        weight_decay: coupled L2, >= 0. Default 0.
        amsgrad: divide by the running max of v. Default False.
        noise_scale: >= 0, the Langevin noise multiplier (the Atari grid used 1e-8..1e-6). Default 0.01.
        a: >= 0, the weight of the Adam drift. Default 1.0.
        seed: seeds the dedicated noise generators (one per parameter, seed + its index in the optimizer); None
            takes ``torch.initial_seed()`` (the last ``torch.manual_seed``), so it does not consume random numbers
            and two optimizers built under the same manual seed draw the same noise. Pass one per run.

    Deviations from the official code (the update is otherwise identical):
        * noise comes from a dedicated ``torch.Generator`` per parameter whose state is saved in ``state_dict``
          (the official code draws from the global generator), so a resumed run repeats the same noise;
        * ``noise_scale`` and ``a`` are per-group hyperparameters (officially optimizer attributes);
        * ``state["step"]`` is a Python int that nothing reads (kept as the official code keeps it);
        * fp16/bf16 params keep fp32 state and maths; the noise is drawn in the state dtype;
        * hyperparameters are validated (ValueError naming the argument), sparse grads and complex params raise.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, noise_scale: float = 0.01,
                 a: float = 1.0, seed: int | None = None) -> None:
        defaults = _validated({"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                               "amsgrad": amsgrad, "noise_scale": noise_scale, "a": a})
        if seed is None:
            seed = int(torch.initial_seed())
        elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        defaults["seed"] = seed
        super().__init__(params, defaults)

    _validate_group = staticmethod(_validated)

    def _generator(self, p: torch.Tensor, state: dict[str, Any], index: int, seed: int) -> torch.Generator:
        """The parameter's live generator (cached between steps; its state is written into ``state`` by
        :meth:`state_dict`, and a loaded state replaces the cache)."""
        cache: dict[int, torch.Generator] = self.__dict__.setdefault("_generators", {})
        gen = cache.get(id(p))
        if gen is None:
            gen = torch.Generator(device=p.device)
            if "rng_state" in state:
                gen.set_state(state["rng_state"].to("cpu"))
            else:
                gen.manual_seed(seed + index)
            cache[id(p)] = gen
        return gen

    def state_dict(self) -> dict[str, Any]:
        """torch's state dict, with every parameter's noise-generator state in its ``state`` entry."""
        for p, gen in self._live_generators():
            self.state[p]["rng_state"] = gen.get_state()
        return super().state_dict()

    def _live_generators(self) -> list[tuple[torch.Tensor, torch.Generator]]:
        cache = self.__dict__.get("_generators", {})
        return [(p, cache[id(p)]) for g in self.param_groups for p in g["params"] if id(p) in cache]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one aSGLD step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._evaluate(closure)
        index = {id(p): i for i, p in enumerate(q for g in self.param_groups for q in g["params"])}
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            optional = ("max_exp_avg_sq",) if group["amsgrad"] else ()
            params, grads, (exp_avgs, exp_avg_sqs, *maxes), _ = self._gather_moments(
                group, "exp_avg", "exp_avg_sq", *optional)
            for i, p in enumerate(params):
                gen = self._generator(p, self.state[p], index[id(p)], group["seed"])
                noise = torch.randn(p.shape, generator=gen, dtype=exp_avgs[i].dtype, device=p.device)
                asgld_update(p, grads[i], exp_avgs[i], exp_avg_sqs[i], maxes[0][i] if maxes else None, noise,
                             lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                             weight_decay=group["weight_decay"], a=group["a"], noise_scale=group["noise_scale"])
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__["_generators"] = {}  # the loaded generator states replace the live ones
        super().load_state_dict(state_dict)

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """Keep fp32 moments for low-precision params, an int step and a CPU byte generator state."""
        if "step" in saved:
            state["step"] = int(saved["step"])
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if isinstance(saved.get(key), torch.Tensor):
                state[key] = saved[key].to(device=p.device, dtype=state_dtype(p.dtype))
        if isinstance(saved.get("rng_state"), torch.Tensor):
            state["rng_state"] = saved["rng_state"].to("cpu", torch.uint8)
