"""The optimizers ``reproduce compare`` can run: the repo's zoo, torch's baselines, and a user's own class.

Each entry is an import target plus the hyperparameters it keeps fixed (its paper's defaults, as the paper
presets pin them); only the learning rate is tuned, on the workload's grid for the entry's lr family (``adam``:
the Adam-like scale; ``sgd``: the SGD scale). Weight decay is off for every entry: the runs are a few hundred
steps, where decay barely acts, and each method applies it in its own way, so leaving it on would compare decay
conventions rather than update rules. A hyperparameter file can set it (or anything else) for one entry.

Some hyperparameters depend on the workload (a reset period is a fraction of the run, SophiaG's ``bs`` is the
number of positions per batch): ``derived`` computes them from the workload's section.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from common.lit.factories import OptimizerFactory

Derived = Callable[[Any], dict[str, Any]]  # workload section -> extra constructor kwargs
ModuleHook = Callable[[str, int, Any], tuple[type, dict[str, Any]]]  # (kind, seed, section) -> (class, kwargs)


@dataclass(frozen=True)
class ZooEntry:
    """One optimizer of the comparison: how to build it and which lr grid it uses."""

    name: str
    label: str
    target: str  # "package.module:Class", called as Class(params, lr=lr, **kwargs, **derived(section))
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    family: str = "adam"
    kind: str = "elementwise"  # elementwise | matrix | curvature | baseline | user
    derived: Derived | None = None
    module: ModuleHook | None = None  # a training loop of its own (None: the workload's standard module)
    lm_only: str | None = None  # why it does not apply to vision workloads, if it does not
    source: str = ""
    lrs: tuple[float, ...] | None = None  # its own lr grid (a user's entry), instead of the family's
    lr_scale: float = 1.0  # multiplies the family's grid (sign-based updates take ~10x smaller steps)

    def applies(self, section: Any) -> str | None:
        """None when the entry runs on the workload, else the reason it does not."""
        if self.lm_only and section.kind != "lm":
            return self.lm_only
        return None

    def factory(self, lr: float, section: Any) -> OptimizerFactory:
        cls = resolve(self.target)
        kw = {**dict(self.kwargs), **(self.derived(section) if self.derived else {})}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}
        return lambda params: cls(params, lr=lr, **kw)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "target": self.target, "kwargs": dict(self.kwargs),
                "family": self.family, "kind": self.kind, "source": self.source,
                "lrs": None if self.lrs is None else list(self.lrs),
                **({"lr_scale": self.lr_scale} if self.lr_scale != 1.0 else {})}


def resolve(target: str) -> type:
    """``package.module:Class`` -> the class, with one clear line when it cannot be imported."""
    if ":" not in target:
        raise ConfigError(f"optimizer {target!r}: write it as package.module:ClassName")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"optimizer {target!r}: cannot import {module_name} ({e})") from e
    try:
        return getattr(module, attr)
    except AttributeError as e:
        raise ConfigError(f"optimizer {target!r}: {module_name} has no {attr}") from e


def _steps(section: Any) -> int:
    return int(section.steps)


def _stablespam_derived(section: Any) -> dict[str, Any]:
    # total_T: the run's length (the lr-schedule-like decay of gamma); the momentum-reset period is 5% of the run,
    # as the paper's 1000 of 20k steps
    return {"total_T": _steps(section), "update_proj_gap": max(2, _steps(section) // 20)}


def _spam_derived(section: Any) -> dict[str, Any]:
    # the reset period, the steps after a reset without spike clipping and the lr warmup after a reset, scaled as
    # the Stable-SPAM cpu preset scales them (4, 2 and 3 at 160 steps; the paper: 500, 20 and 150 at 20k)
    delta = max(2, _steps(section) // 40)
    return {"DeltaT": delta, "grad_accu_steps": max(1, delta // 2), "warmup_steps": max(1, _steps(section) // 50)}


def _sophia_derived(section: Any) -> dict[str, Any]:
    from common.compare.workloads import tokens_or_images_per_step

    return {"bs": tokens_or_images_per_step(section)}


def _sophia_module(kind: str, seed: int, section: Any) -> tuple[type, dict[str, Any]]:
    from papers.sophia.lit import SophiaClassifier, SophiaLanguageModel

    if kind == "lm":
        return SophiaLanguageModel, {"hessian_every": SOPHIA_K, "seed_for_labels": seed}
    clip = section.get("grad_clip")
    return SophiaClassifier, {"hessian_every": SOPHIA_K, "seed_for_labels": seed,
                              "grad_clip": None if clip is None else float(clip)}


SOPHIA_K = 10  # the official loop's Hessian interval

ZOO: dict[str, ZooEntry] = {e.name: e for e in (
    ZooEntry("adamw", "AdamW (torch, fused)", "torch.optim:AdamW",
             {"betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.0, "fused": True}, kind="baseline",
             source="torch"),
    ZooEntry("sgd_nesterov", "SGD + Nesterov momentum 0.9 (torch)", "torch.optim:SGD",
             {"momentum": 0.9, "nesterov": True, "weight_decay": 0.0}, family="sgd", kind="baseline",
             source="torch"),
    ZooEntry("radam", "RAdam (official semantics)", "papers.radam:RAdam",
             {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}, source="radam"),
    ZooEntry("adabelief", "AdaBelief (adabelief-pytorch 0.2.1 defaults)", "papers.adabelief:AdaBelief",
             {"betas": (0.9, 0.999), "eps": 1e-16, "weight_decay": 0.0, "weight_decouple": True,
              "rectify": True, "amsgrad": False}, source="adabelief"),
    ZooEntry("mars", "MARS-AdamW (approximate, clipped c_t)", "papers.mars:MARS",
             {"mars_type": "adamw", "gamma": 0.025, "betas": (0.95, 0.99), "weight_decay": 0.0,
              "betas_1d": (0.9, 0.95), "weight_decay_1d": 0.0, "is_approx": True, "clip_c": True},
             source="mars"),
    ZooEntry("mars_lion", "MARS-Lion (approximate, clipped c_t)", "papers.mars:MARS",
             {"mars_type": "lion", "gamma": 0.025, "betas": (0.95, 0.99), "weight_decay": 0.0,
              "betas_1d": (0.9, 0.95), "weight_decay_1d": 0.0, "is_approx": True, "clip_c": True},
             lr_scale=0.1, source="mars"),
    ZooEntry("soap", "SOAP (precondition every 10 steps)", "papers.soap:SOAP",
             {"betas": (0.95, 0.95), "eps": 1e-8, "weight_decay": 0.0, "precondition_frequency": 10,
              "max_precond_dim": 10000}, kind="matrix", source="soap"),
    ZooEntry("shampoo", "Shampoo with Adam grafting (exponent -1/2.5)", "papers.soap:Shampoo",
             {"betas": (0.95, 0.95), "eps": 1e-8, "weight_decay": 0.0, "precondition_frequency": 10,
              "inv_root": 2.5, "matrix_eps": 1e-12}, kind="matrix", source="soap"),
    ZooEntry("sophiag", "SophiaG (GNB Hessian every 10 steps, rho 0.04)", "papers.sophia:SophiaG",
             {"betas": (0.965, 0.99), "rho": 0.04, "weight_decay": 0.0}, kind="curvature",
             derived=_sophia_derived, module=_sophia_module, source="sophia"),
    ZooEntry("spam", "SPAM (momentum reset, spike clipping)", "papers.stable_spam:SPAM",
             {"betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.0, "threshold": 5000},
             derived=_spam_derived, source="stable_spam"),
    ZooEntry("stablespam", "Stable-SPAM (official semantics)", "papers.stable_spam:StableSPAM",
             {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "gamma1": 0.7, "gamma2": 0.9,
              "gamma3": 0.999, "eta_min": 0.5, "semantics": "official"},
             derived=_stablespam_derived, source="stable_spam"),
)}

# Methods of the repo that are not drop-in optimizers for these workloads, and why (COMPARE.md lists them).
NOT_APPLICABLE: dict[str, str] = {
    "riemannian_adam": "on Euclidean parameters Riemannian Adam is Adam step for step (its paper's reduction)",
    "svrg / alpha-svrg": "needs full-batch snapshot gradients: a training loop, not an optimizer step",
    "storm": "needs the gradient at two points per batch: a training loop, not an optimizer step",
    "cluster momentum": "needs a clustered sampler and per-cluster momenta fed by the loop",
    "asgld (rl_variance)": "a Langevin sampler for exploration, adds noise by design",
}


def user_entry(target: str, hparams: str | None) -> ZooEntry:
    """A user's optimizer: ``package.module:Class`` plus an optional YAML file with ``name``, ``family`` (adam or
    sgd: which lr grid), ``lrs`` (its own grid, overriding the family's) and ``kwargs``."""
    resolve(target)  # fail now, with one line, rather than in the first run
    spec: dict[str, Any] = {}
    if hparams:
        from omegaconf import OmegaConf

        path = Path(hparams)
        if not path.is_file():
            raise ConfigError(f"--hparams: {path} not found")
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        if not isinstance(loaded, dict):
            raise ConfigError(f"--hparams: {path} must be a mapping (name, family, lrs, kwargs)")
        unknown = set(loaded) - {"name", "family", "lrs", "kwargs"}
        if unknown:
            raise ConfigError(f"--hparams: unknown key(s) {', '.join(sorted(unknown))}; valid: name, family, lrs, "
                              "kwargs")
        spec = loaded
    name = str(spec.get("name") or target.partition(":")[2].lower())
    if name in ZOO:
        raise ConfigError(f"--optimizer: name {name!r} is taken by the zoo; set another name in the hparams file")
    kwargs = dict(spec.get("kwargs") or {})
    if "lr" in kwargs:
        raise ConfigError("--hparams: lr is tuned; give a grid with lrs instead of kwargs.lr")
    lrs = spec.get("lrs")
    if lrs is not None and (not isinstance(lrs, list) or not lrs
                            or any(isinstance(x, bool) or not isinstance(x, (int, float)) or x <= 0 for x in lrs)):
        raise ConfigError(f"--hparams: lrs must be a list of positive numbers, got {lrs!r}")
    return ZooEntry(name, f"{target} (user)", target, kwargs, family=str(spec.get("family", "adam")), kind="user",
                    source="user", lrs=None if lrs is None else tuple(float(x) for x in lrs))
