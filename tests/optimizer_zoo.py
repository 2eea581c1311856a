"""Every optimizer in the repo, once, for the generic tests (API contract, property, resume, DDP, bad input).

A new optimizer is covered by every generic test by adding ONE line to ``ZOO`` below;
``test_every_exported_optimizer_is_in_the_zoo`` fails until it is there. Each entry says how to build the
optimizer for tests (small lr, short refresh periods), which hyperparameters it takes (the property and
bad-input tests derive valid and invalid values from these), whether bfloat16 parameters are supported, how
a Hessian-type estimate is fed, and what a non-finite gradient does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from common.optim.adamw import AdamW
from papers.adabelief import AdaBelief
from papers.mars import MARS
from papers.radam import RAdam
from papers.riemannian_adam import RiemannianAdagrad, RiemannianAdam, RiemannianSGD
from papers.rl_variance import ASGLD
from papers.soap import SOAP, Shampoo
from papers.sophia import SophiaG, SophiaH
from papers.stable_spam import SPAM, StableSPAM
from papers.vr_methods import SVRG, ClusterMomentum

# What a NaN/Inf in a gradient does (decided per optimizer, following the official code; see the DDP/robustness
# notes in tests/unit/test_bad_input.py):
#   "propagates": the step runs, the bad value reaches the parameters (as torch.optim and every official
#                 implementation here do); an experiment's DivergenceMonitor marks the arm diverged.
#   "clips":      Sophia: the update is clamped elementwise to [-1, 1] x lr by design, so an Inf gradient gives a
#                 bounded step and finite parameters (the momentum stays poisoned: every later step is a sign
#                 step); a NaN propagates as above.
#   "raises":     the preconditioner's eigh fails on the non-finite statistics and raises EighError; common.lit.fit
#                 records the arm as diverged with that reason.
PROPAGATES, CLIPS, RAISES = "propagates", "clips", "raises"


@dataclass(frozen=True)
class ZooEntry:
    """How tests build and drive one optimizer."""

    cls: type[torch.optim.Optimizer]
    defaults: dict[str, Any]
    hyper: tuple[str, ...] = ("lr", "betas", "eps", "weight_decay")  # generic hyperparameters it takes
    options: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # method switches the property test samples
    bf16: bool = True  # bfloat16 parameters supported
    hessian: bool = False  # update_hessian() must be fed an estimate in p.grad after some steps (Sophia)
    nonfinite_grad: str = PROPAGATES
    refresh_every: int | None = None  # steps between preconditioner refreshes (the resume tests straddle one)
    bases_key: str | None = None  # the state entry holding the refreshed preconditioner (bases/roots)
    zero_ok: tuple[str, ...] = ()  # generic keys whose domain includes 0 here (SOAP: eps >= 0, documented)
    constraint: Callable[[dict[str, Any]], bool] | None = None  # a joint rule on the merged kwargs, if any

    def valid(self, hyper: dict[str, Any]) -> bool:
        """Whether these generic hyperparameter overrides are in the documented domain (ValueError otherwise)."""
        if not all(valid_value(k, v, self.zero_ok) for k, v in hyper.items()):
            return False
        return self.constraint is None or self.constraint({**self.defaults, **hyper})

    def make(self, params: Any, **overrides: Any) -> torch.optim.Optimizer:
        return self.cls(params, **{**self.defaults, **overrides})


ZOO: dict[str, ZooEntry] = {
    "AdamW": ZooEntry(AdamW, {"lr": 1e-2}),  # the kernels' yardstick (common/optim/adamw.py)
    "RAdam": ZooEntry(RAdam, {"lr": 1e-2, "degenerated_to_sgd": True},
                      options={"degenerated_to_sgd": (True, False)}),
    "AdaBelief": ZooEntry(AdaBelief, {"lr": 1e-2},
                          options={"amsgrad": (False, True), "rectify": (True, False),
                                   "weight_decouple": (True, False)}),
    "SophiaG": ZooEntry(SophiaG, {"lr": 1e-2, "bs": 16}, hyper=("lr", "betas", "weight_decay", "rho"),
                        hessian=True, nonfinite_grad=CLIPS),
    "SophiaH": ZooEntry(SophiaH, {"lr": 1e-2}, hyper=("lr", "betas", "weight_decay", "rho"), hessian=True,
                        nonfinite_grad=CLIPS),
    "MARS": ZooEntry(MARS, {"lr": 1e-2}, hyper=("lr", "betas", "eps", "weight_decay", "gamma"),
                     options={"mars_type": ("adamw", "lion", "shampoo"), "optimize_1d": (False, True)},
                     constraint=lambda kw: kw["lr"] > 0 or kw.get("lr_1d", 3e-3) == 0),  # lr_1d is kept as lr_1d/lr
    "SOAP": ZooEntry(SOAP, {"lr": 1e-2, "precondition_frequency": 2},
                     options={"merge_dims": (False, True), "precondition_1d": (False, True)},
                     nonfinite_grad=PROPAGATES, refresh_every=2, bases_key="Q", zero_ok=("eps",)),
    "Shampoo": ZooEntry(Shampoo, {"lr": 1e-2, "precondition_frequency": 2}, nonfinite_grad=RAISES, refresh_every=2,
                        bases_key="roots"),
    # resets inside the 7-step resume test (at steps 3 and 6), so the resume crosses one
    "StableSPAM": ZooEntry(StableSPAM, {"lr": 1e-2, "update_proj_gap": 3, "total_T": 5},
                           options={"amsgrad": (False, True), "semantics": ("official", "fixed")}),
    "StableSPAM-fixed": ZooEntry(StableSPAM, {"lr": 1e-2, "update_proj_gap": 3, "total_T": 5, "semantics": "fixed",
                                              "reset_warmup_steps": 2}),
    # spike-aware clipping bounds an Inf gradient entry (threshold x v); a NaN propagates
    "SPAM": ZooEntry(SPAM, {"lr": 1e-2, "DeltaT": 3, "warmup_steps": 2, "grad_accu_steps": 1},
                     options={"correct_bias": (True, False)}, nonfinite_grad=CLIPS),
    "ASGLD": ZooEntry(ASGLD, {"lr": 1e-2, "noise_scale": 1e-2, "seed": 0}, options={"amsgrad": (False, True)}),
    # SVRG's lr/betas live in its base optimizer; without a snapshot it steps as the base does.
    "SVRG": ZooEntry(SVRG, {"base": lambda q: torch.optim.SGD(q, lr=1e-2, momentum=0.9)}, hyper=()),
    "ClusterMomentum": ZooEntry(ClusterMomentum, {"lr": 1e-2}, hyper=("lr", "weight_decay")),
    # Riemannian optimizers on untagged (Euclidean) params, which must be declared: manifold="euclidean". eps = 0 is
    # the paper's rule (a factor whose v is 0 does not move). Ball parameters: tests/unit/test_riemannian_optim.py.
    "RiemannianAdam": ZooEntry(RiemannianAdam, {"lr": 1e-2, "manifold": "euclidean"}, zero_ok=("eps",),
                               options={"amsgrad": (False, True), "lazy": (False, True),
                                        "semantics": ("geoopt", "paper"), "update": ("retraction", "expmap")}),
    "RiemannianAdagrad": ZooEntry(RiemannianAdagrad, {"lr": 1e-2, "manifold": "euclidean"},
                                  hyper=("lr", "eps", "weight_decay"), zero_ok=("eps",),
                                  options={"lazy": (False, True)}),
    "RiemannianSGD": ZooEntry(RiemannianSGD, {"lr": 1e-2, "manifold": "euclidean", "momentum": 0.9},
                              hyper=("lr", "weight_decay"), options={"nesterov": (False, True)}),
}

# Exported optimizers the generic step loops cannot drive, each with the reason and where its own checks live.
NOT_IN_ZOO: dict[str, str] = {
    "STORM": "its exact step needs the gradient at the previous iterate on the same batch (a closure or "
             "record_previous_grad); contract, validation and state_dict checks are in tests/unit/test_vr_storm.py",
}
NAMES = list(ZOO)

# The factories in the form the API-contract test has always used: OPTIMIZERS[name](params, **kw).
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {name: e.make for name, e in ZOO.items()}


def valid_value(key: str, value: Any, zero_ok: tuple[str, ...] = ()) -> bool:
    """Whether ``value`` is in the documented domain of the generic hyperparameter ``key``."""

    def real(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")

    if key == "betas":
        return (isinstance(value, (tuple, list)) and len(value) == 2
                and all(real(b) and 0.0 <= b < 1.0 for b in value))
    if not real(value):
        return False
    if key == "eps" and key not in zero_ok:
        return value > 0
    return value >= 0  # lr, weight_decay, rho, gamma


def feed_hessian(opt: torch.optim.Optimizer, params: list[torch.Tensor]) -> None:
    """For optimizers with a Hessian EMA: fold the current p.grad in as the estimate (what the estimators leave
    there); a no-op for the others. Deterministic, so two runs given the same gradients stay identical."""
    if hasattr(opt, "update_hessian"):
        opt.update_hessian()


def step_with(opt: torch.optim.Optimizer, params: list[torch.Tensor], grads: list[torch.Tensor],
              step: int, hessian_every: int = 2) -> None:
    """One optimizer step on the given gradients, plus the Hessian estimate every ``hessian_every`` steps (the
    official Sophia loop's order: step, then estimate)."""
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    opt.step()
    if (step + 1) % hessian_every == 0:
        feed_hessian(opt, params)
