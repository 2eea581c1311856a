"""RAdam: On the Variance of the Adaptive Learning Rate and Beyond (Liu et al., ICLR 2020)."""

from typing import Any

from common.results.context import RunContext
from common.results.paper import Claim, Measurement, Paper
from papers.radam.optim import RAdam
from papers.radam.verdicts import (
    C1_RULE,
    C2_RULE,
    C3_RULE,
    AccuracySummary,
    RobustnessSummary,
    VarianceSummary,
    headline_accuracy,
    headline_lr_robustness,
    headline_variance,
    judge_accuracy,
    judge_lr_robustness,
    judge_variance,
    test_lr_robustness,
)

BIBTEX = r"""
@inproceedings{liu2020radam,
  title     = {On the Variance of the Adaptive Learning Rate and Beyond},
  author    = {Liu, Liyuan and Jiang, Haoming and He, Pengcheng and Chen, Weizhu and Liu, Xiaodong and
               Gao, Jianfeng and Han, Jiawei},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2020},
  eprint    = {1908.03265},
  archivePrefix = {arXiv}
}
"""


# The experiments import Lightning, data and plotting; each is imported when its claim runs, so importing an
# optimizer from this package stays light.
def run_variance(cfg: Any, ctx: RunContext) -> Measurement:
    """C1's experiment, :func:`papers.radam.variance.run_variance`."""
    from papers.radam import variance

    return variance.run_variance(cfg, ctx)


def run_lr_robustness(cfg: Any, ctx: RunContext) -> Measurement:
    """C2's experiment, :func:`papers.radam.experiment.run_lr_robustness`."""
    from papers.radam import experiment

    return experiment.run_lr_robustness(cfg, ctx)


def run_accuracy(cfg: Any, ctx: RunContext) -> Measurement:
    """C3's experiment, :func:`papers.radam.experiment.run_accuracy`."""
    from papers.radam import experiment

    return experiment.run_accuracy(cfg, ctx)


PAPER = Paper(
    id="radam",
    title="On the Variance of the Adaptive Learning Rate and Beyond",
    authors="Liu et al.",
    venue="ICLR 2020",
    arxiv="1908.03265",
    code_url="https://github.com/LiyuanLucasLiu/RAdam",
    code_commit="d9fd30a",
    bibtex=BIBTEX,
    package="papers.radam",
    claims=(
        Claim(
            id="c1",
            title="adaptive LR variance is large early; rectification flattens it",
            paper_result="Var[1/v̂_t] large early, Var[r_t/v̂_t] roughly flat (g~N(µ,1), β2=0.999, "
                         "5000 traj × 6000 it.)",
            source="Fig. 9 [paper]",
            metric="early/late variance ratio: mean Var over t∈[20,100] / mean over t∈[5000,6000], per µ",
            rule=C1_RULE,
            run=run_variance,
            judge=judge_variance,
            summary_type=VarianceSummary,
            headline=headline_variance,
            tolerances={"adam_ratio_min": 5.0, "rectified_ratio_min": 0.1, "rectified_ratio_max": 0.1},
        ),
        Claim(
            id="c2",
            title="without warmup RAdam is robust across LRs and matches Adam with warmup",
            paper_result="RAdam curves overlap across lr ∈ {0.1…0.003}; vanilla Adam without warmup stalls "
                         "(IWSLT train loss ≈10); Adam-warmup 34.66 vs RAdam 34.76 BLEU",
            source="Fig. 1, Fig. 6, Table 2 [paper]",
            metric="final val loss at each arm's tuned lr (eval seeds); spread S = std over the LR grid of the "
                   "eval-seed mean (failed = ln 256); F = failed runs on the eval seeds",
            rule=C2_RULE,
            summary_type=RobustnessSummary,
            run=run_lr_robustness,
            judge=judge_lr_robustness,
            test=test_lr_robustness,
            headline=headline_lr_robustness,
            tolerances={"arms.radam.mean": 0.03, "arms.adam_warmup.mean": 0.03, "arms.adam.mean": 0.03,
                        "spread.radam": 0.05, "spread.adam": 0.05},
        ),
        Claim(
            id="c3",
            title="CIFAR-style accuracy: RAdam beats Adam and is less LR-sensitive",
            paper_result="CIFAR-10 ResNet-20 test acc SGD 91.51, Adam 90.54, RAdam 91.38",
            source="Table 1 [paper]",
            metric="final test accuracy at each arm's best LR (chosen on val, seed 0), mean over seeds; "
                   "spread = std of seed-0 test acc over the LR grid",
            rule=C3_RULE,
            summary_type=AccuracySummary,
            run=run_accuracy,
            judge=judge_accuracy,
            headline=headline_accuracy,
            tolerances={"best.radam.test_acc": 0.5, "best.adam.test_acc": 0.5},
        ),
    ),
)

__all__ = ["PAPER", "RAdam"]
