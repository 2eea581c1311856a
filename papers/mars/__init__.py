"""MARS: Unleashing the Power of Variance Reduction for Training Large Models (Yuan et al., ICML 2025)."""

from typing import Any

from common.results.context import RunContext
from common.results.lm_summary import LMSummary
from common.results.paper import Claim, Measurement, Paper
from papers.mars.optim import MARS
from papers.mars.verdicts import RULE, headline_m1, headline_m2, judge_m1, judge_m2, test_m1, test_m2

BIBTEX = r"""
@inproceedings{yuan2025mars,
  title     = {{MARS}: Unleashing the Power of Variance Reduction for Training Large Models},
  author    = {Yuan, Huizhuo and Liu, Yifeng and Wu, Shuang and Zhou, Xun and Gu, Quanquan},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2025},
  eprint    = {2411.10438},
  archivePrefix = {arXiv}
}
"""


# The experiments import Lightning, data and plotting; each is imported when its claim runs, so importing an
# optimizer from this package stays light.
def run_mars(cfg: Any, ctx: RunContext) -> Measurement:
    """M1 and M2's experiment, :func:`papers.mars.experiment.run_mars`."""
    from papers.mars import experiment

    return experiment.run_mars(cfg, ctx)


PAPER = Paper(
    id="mars",
    title="MARS: Unleashing the Power of Variance Reduction for Training Large Models",
    authors="Yuan et al.",
    venue="ICML 2025",
    arxiv="2411.10438",
    code_url="https://github.com/AGI-Arena/MARS",
    code_commit="4831e28",
    bibtex=BIBTEX,
    package="papers.mars",
    claims=(
        Claim(
            id="m1",
            title="beats-adamw: MARS-AdamW reaches lower val loss than AdamW at the same token budget",
            paper_result="GPT-2 large (770M) on OpenWebText: MARS-AdamW 2.511 vs AdamW 2.568 val loss (MARS-Lion "
                         "2.534); AdamW needs 50B tokens to reach 2.58, MARS 28B",
            source="§4.2, Fig. 1 [paper]; tokens to 2.58: §1 [paper]",
            metric="final val loss at each arm's tuned lr, mean over eval seeds; paired difference MARS - baseline",
            rule=RULE,
            run=run_mars,
            summary_type=LMSummary,
            judge=judge_m1,
            test=test_m1,
            headline=headline_m1,
            tolerances={"arms.mars.mean": 0.03, "arms.adamw.mean": 0.03},
        ),
        Claim(
            id="m2",
            title="the gain is variance reduction: MARS (gamma=0.025) beats its own gamma=0 control",
            paper_result="the gradient correction (gamma > 0) is what improves on the base optimizer (the paper "
                         "compares against AdamW, not against gamma=0 with MARS's betas and lr)",
            source="§3, ablations [paper]; the gamma=0 control is ours",
            metric="as M1, with MARS gamma=0 (same betas, lr grid, 1-D path) as the baseline",
            rule=RULE,
            run=run_mars,
            summary_type=LMSummary,
            judge=judge_m2,
            test=test_m2,
            headline=headline_m2,
            tolerances={"arms.mars.mean": 0.03, "arms.mars_gamma0.mean": 0.03},
        ),
    ),
)

__all__ = ["MARS", "PAPER"]
