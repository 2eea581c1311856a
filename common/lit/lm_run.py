"""One language-model training run from a preset section: the loop every LM paper's sweep calls.

The section provides ``data``, ``model``, ``batch_size``, ``steps``, ``warmup_frac``, ``min_lr_ratio``,
``grad_clip`` (null: no clipping), ``val_every`` and ``val_batches``; the paper provides the optimizer (and, for
methods that need extra passes, its own LanguageModelModule subclass).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.data.lm import lm_datamodule
from common.lit.factories import OptimizerFactory, ParamGroupsFn
from common.lit.fit import fit
from common.lit.language_model import LanguageModelModule
from common.lit.seed import seed_all
from common.models.build import build_lm
from common.optim.schedules import warmup_cosine
from common.results.context import RunContext


def train_lm(cfg: Any, ctx: RunContext, *, run_name: str, seed: int, label: str, optimizer: OptimizerFactory,
             param_groups: ParamGroupsFn | None = None, steps: int | None = None,
             module_cls: Callable[..., LanguageModelModule] = LanguageModelModule,
             **module_kwargs: Any) -> tuple[dict[str, Any], LanguageModelModule]:
    """Train one (arm, lr, seed) and return the record entry plus the trained module (for method traces)."""
    steps = int(steps or cfg.steps)
    seed_all(seed)
    dm = lm_datamodule(cfg.data, block_size=int(cfg.model.block_size), batch_size=int(cfg.batch_size), seed=seed,
                       val_batches=int(cfg.val_batches))
    dm.setup("fit")
    module = module_cls(build_lm(cfg.model, dm.vocab_size), optimizer,
                        warmup_cosine(steps, int(float(cfg.warmup_frac) * steps), float(cfg.min_lr_ratio)),
                        grad_clip=None if cfg.get("grad_clip") is None else float(cfg.grad_clip),
                        param_groups=param_groups, **module_kwargs)
    res = fit(module, dm, max_steps=steps, out_dir=ctx.out_dir, run_name=run_name, val_every=int(cfg.val_every),
              progress_label=label, trainer_kwargs=ctx.trainer)
    entry = {"final_val_loss": res.final_val_loss, "diverged": res.diverged,
             "divergence_reason": res.divergence_reason, "val_curve": res.val_curve, "val_train_s": res.val_train_s,
             "train_s": res.val_train_s[-1][1] if res.val_train_s else None, "wall_s": res.wall_s,
             "step_time_ms": res.step_time_ms_median, "state_bytes": res.state_bytes,
             "state_bytes_per_param": res.state_bytes_per_param}
    return entry, module
