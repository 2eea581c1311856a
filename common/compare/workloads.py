"""The shared workloads of ``reproduce compare``: small training problems every optimizer runs alike.

A workload is a preset section with a fixed step budget ``steps`` (T), one schedule for every optimizer (linear
warmup over ``warmup_frac`` of the run, cosine decay to ``min_lr_ratio`` of the peak), and one selection metric,
the final validation loss. Two kinds reuse the models and data the papers use:

- ``lm``: a byte-level GPT or a tiny LLaMA (``model.quant`` fake-quantizes its projections, e.g. W4A4) on a
  text corpus (``data`` as in the LM presets: python-stdlib bytes by default, or token shards);
- ``vision``: a classifier (``model.kind`` cnn or resnet) on an image dataset (``data.dataset`` fashion_mnist,
  cifar10, cifar100), cross-entropy on a held-out validation split.

A run's schedule always ends at its own ``steps`` (runs that end at 0.5 T or 0.75 T are full schedules, never
the middle of a longer run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from common.errors import ConfigError
from common.lit.factories import OptimizerFactory, ParamGroupsFn
from common.results.context import RunContext

KINDS = ("lm", "vision")
REQUIRED = ("kind", "data", "model", "batch_size", "steps", "warmup_frac", "min_lr_ratio", "val_every", "lrs")


def check_workload(name: str, section: Mapping[str, Any]) -> None:
    """One ``error:`` line for a section that cannot run (before any run starts)."""
    missing = [k for k in REQUIRED if k not in section]
    if missing:
        raise ConfigError(f"workloads.{name}: missing {', '.join(missing)}")
    if section["kind"] not in KINDS:
        raise ConfigError(f"workloads.{name}.kind must be one of {', '.join(KINDS)}, got {section['kind']!r}")
    steps = section["steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 4:
        raise ConfigError(f"workloads.{name}.steps must be an integer >= 4, got {steps!r}")
    if not 0 <= float(section["warmup_frac"]) < 1:
        raise ConfigError(f"workloads.{name}.warmup_frac must be in [0, 1), got {section['warmup_frac']!r}")
    lrs = section["lrs"]
    if not isinstance(lrs, Mapping) or not lrs:
        raise ConfigError(f"workloads.{name}.lrs must map an lr family (adam, sgd, ...) to a grid")
    for family, grid in lrs.items():
        if not grid or any(not isinstance(x, (int, float)) or isinstance(x, bool) or x <= 0 for x in grid):
            raise ConfigError(f"workloads.{name}.lrs.{family} must be a list of positive numbers, got {grid!r}")


def tokens_or_images_per_step(section: Mapping[str, Any]) -> int:
    """What one step consumes: tokens for an LM (batch x block), images for a classifier."""
    if section["kind"] == "lm":
        from common.lit.lm_sweep import tokens_per_step

        return tokens_per_step(section)
    return int(section["batch_size"])


def build_model(section: Any, seed: int = 0) -> torch.nn.Module:
    """The workload's network at initialisation (for step timing on its real parameter shapes)."""
    from common.lit.seed import seed_all

    seed_all(seed)
    if section.kind == "lm":
        from common.data.lm import lm_datamodule
        from common.models.build import build_lm

        dm = lm_datamodule(section.data, block_size=int(section.model.block_size), batch_size=1, seed=seed,
                           val_batches=1)
        dm.setup("fit")
        return build_lm(section.model, dm.vocab_size)
    from common.models.build import build_classifier

    dm = _image_data(section, seed)
    dm.setup("fit")
    return build_classifier(section.model, dm)


def _image_data(section: Any, seed: int) -> Any:
    from common.data.vision import image_datamodule

    data = section.data
    return image_datamodule(str(data.dataset), seed=seed, batch_size=int(section.batch_size), root=data.get("root"),
                            pad_to=data.get("pad_to"), augment=bool(data.get("augment", False)),
                            val_size=int(data.get("val_size", 5000)), subset=data.get("subset"),
                            balanced=bool(data.get("balanced", False)))


def train_run(section: Any, ctx: RunContext, *, run_name: str, seed: int, label: str, optimizer: OptimizerFactory,
              steps: int | None = None, param_groups: ParamGroupsFn | None = None,
              module: Callable[[str, int, Any], tuple[type, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Train one (optimizer, lr, seed) on the workload for ``steps`` (default T) and return the run's entry:
    final validation loss, divergence, curves, step time and optimizer state size. ``module(kind, seed, section)``
    may give the LightningModule class and extra kwargs (methods with their own training loop, e.g. a Hessian
    estimate every k steps)."""
    steps = int(steps or section.steps)
    if section.kind == "lm":
        return _train_lm(section, ctx, run_name, seed, label, optimizer, steps, param_groups, module)
    return _train_vision(section, ctx, run_name, seed, label, optimizer, steps, param_groups, module)


def _train_lm(section: Any, ctx: RunContext, run_name: str, seed: int, label: str, optimizer: OptimizerFactory,
              steps: int, param_groups: ParamGroupsFn | None, module: Any) -> dict[str, Any]:
    from common.lit.language_model import LanguageModelModule
    from common.lit.lm_run import train_lm

    cls, kwargs = module("lm", seed, section) if module else (LanguageModelModule, {})
    entry, _ = train_lm(section, ctx, run_name=run_name, seed=seed, label=label, optimizer=optimizer,
                        param_groups=param_groups, steps=steps, module_cls=cls, **kwargs)
    return {**entry, "final_val_acc": None, "steps": steps}


def _train_vision(section: Any, ctx: RunContext, run_name: str, seed: int, label: str, optimizer: OptimizerFactory,
                  steps: int, param_groups: ParamGroupsFn | None, module: Any) -> dict[str, Any]:
    from common.lit.classification import ClassificationModule
    from common.lit.fit import fit
    from common.lit.seed import seed_all
    from common.models.build import build_classifier
    from common.optim.schedules import warmup_cosine

    seed_all(seed)
    dm = _image_data(section, seed)
    dm.setup("fit")
    cls, kwargs = module("vision", seed, section) if module else (ClassificationModule, {})
    lit = cls(build_classifier(section.model, dm), optimizer,
              warmup_cosine(steps, int(float(section.warmup_frac) * steps), float(section.min_lr_ratio)),
              param_groups=param_groups, **kwargs)
    trainer = dict(ctx.trainer)
    if section.get("grad_clip") is not None and "grad_clip" not in kwargs:  # a manual loop clips itself
        trainer.setdefault("gradient_clip_val", float(section.grad_clip))
    res = fit(lit, dm, max_steps=steps, out_dir=ctx.out_dir, run_name=run_name, val_every=int(section.val_every),
              progress_label=label, trainer_kwargs=trainer)
    return {"final_val_loss": res.final_val_loss, "final_val_acc": res.final_val_acc, "diverged": res.diverged,
            "divergence_reason": res.divergence_reason, "val_curve": res.val_curve, "steps": steps,
            "wall_s": res.wall_s, "step_time_ms": res.step_time_ms_median, "state_bytes": res.state_bytes,
            "state_bytes_per_param": res.state_bytes_per_param}
