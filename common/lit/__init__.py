"""Lightning plumbing shared by the papers: modules, callbacks, ``fit`` and seeding."""

from common.lit.callbacks import (
    CurveRecorder,
    DivergenceMonitor,
    GradNormMonitor,
    OptimizerStateBytes,
    ProgressReporter,
    StepTimer,
    ValidateAtMaxSteps,
)
from common.lit.classification import ClassificationModule
from common.lit.fit import FitResult, fit
from common.lit.language_model import LanguageModelModule
from common.lit.seed import seed_all

__all__ = [
    "ClassificationModule", "CurveRecorder", "DivergenceMonitor", "FitResult", "GradNormMonitor",
    "LanguageModelModule", "OptimizerStateBytes", "ProgressReporter", "StepTimer", "ValidateAtMaxSteps",
    "fit", "seed_all",
]
