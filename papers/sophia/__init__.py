"""Sophia: A Scalable Stochastic Second-order Optimizer for Language Model Pre-training (Liu et al., ICLR 2024)."""

from typing import Any

from common.results.context import RunContext
from common.results.paper import Claim, Measurement, Paper
from papers.sophia.hessian import gnb_hessian_step, hessian_update_due, hutchinson_hessian_step
from papers.sophia.optim import SophiaG, SophiaH
from papers.sophia.verdicts import RULE, SophiaSummary, headline_steps, judge_steps, test_steps

BIBTEX = r"""
@inproceedings{liu2024sophia,
  title     = {Sophia: A Scalable Stochastic Second-order Optimizer for Language Model Pre-training},
  author    = {Liu, Hong and Li, Zhiyuan and Hall, David and Liang, Percy and Ma, Tengyu},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2024},
  eprint    = {2305.14342},
  archivePrefix = {arXiv}
}
"""


# The experiments import Lightning, data and plotting; each is imported when its claim runs, so importing an
# optimizer from this package stays light.
def run_steps_to_target(cfg: Any, ctx: RunContext) -> Measurement:
    """S1's experiment, :func:`papers.sophia.experiment.run_steps_to_target`."""
    from papers.sophia import experiment

    return experiment.run_steps_to_target(cfg, ctx)


PAPER = Paper(
    id="sophia",
    title="Sophia: A Scalable Stochastic Second-order Optimizer for Language Model Pre-training",
    authors="Liu et al.",
    venue="ICLR 2024",
    arxiv="2305.14342",
    code_url="https://github.com/Liuhong99/Sophia",
    code_commit="a7e1572",
    bibtex=BIBTEX,
    package="papers.sophia",
    claims=(
        Claim(
            id="s1",
            title="2x-steps: SophiaG reaches AdamW's final validation loss in fewer steps",
            paper_result="2x speed-up over AdamW in steps, total compute and wall-clock (125M-1.5B); GPT-2 small "
                         "100k steps: AdamW ≈2.93 vs SophiaG ≈2.90 val loss",
            source="abstract [abs]; README figures [fig]",
            metric="SophiaG's mean final val loss over eval seeds from runs whose schedules end at 0.5 T, against "
                   "AdamW's mean final loss at T (each tuned on tuning seeds); steps-to-target ratio estimate; "
                   "wall-clock not judged (per-step cost: reproduce bench)",
            rule=RULE,
            run=run_steps_to_target,
            summary_type=SophiaSummary,
            judge=judge_steps,
            test=test_steps,
            headline=headline_steps,
            tolerances={"arms.sophiag.mean": 0.03, "arms.adamw.mean": 0.03},
        ),
    ),
)

__all__ = ["PAPER", "SophiaG", "SophiaH", "gnb_hessian_step", "hessian_update_due", "hutchinson_hessian_step"]
