"""The typed summary of the language-model sweep (``common.lit.lm_sweep``), kept apart from the sweep so that a
paper's verdict rules can name it without loading Lightning."""

from __future__ import annotations

from dataclasses import dataclass

from common.results.summary import Summary, optional
from common.results.sweep import ArmSummary, StepSummary


@dataclass
class LMArm(ArmSummary):
    """A tuned arm of the LM sweep, with the optimizer state it kept (bytes)."""

    state_bytes: int | None


@dataclass
class GridPoint(Summary):
    """One eval-seed run at a grid lr (``eval_grid``): its final val loss and whether it failed."""

    final: float | None
    failed: bool


@dataclass(kw_only=True)
class LMSummary(StepSummary):
    """The LM sweep's summary: schedule length, tokens per step, every arm, step claims' f*T runs and, with
    ``eval_grid``, every grid lr run on the eval seeds (arm -> lr -> one point per seed). Papers extend it
    (:meth:`Summary.extending`) with what their claims add."""

    steps: int
    tokens_per_step: int
    arms: dict[str, LMArm]
    grid_eval: dict[str, dict[str, list[GridPoint]]] | None = optional()
