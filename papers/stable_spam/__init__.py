"""Stable-SPAM: How to Train in 4-Bit More Stably than 16-Bit Adam (Huang et al., 2025), with SPAM (ICLR 2025)."""

from typing import Any

from common.results.context import RunContext
from common.results.paper import Claim, Measurement, Paper
from papers.stable_spam.optim import SPAM, StableSPAM
from papers.stable_spam.verdicts import (
    RULE_S1,
    RULE_S2,
    RULE_S3,
    StableSpamSummary,
    headline_s1,
    headline_s2,
    headline_s3,
    judge_s1,
    judge_s2,
    judge_s3,
    test_s1,
    test_s2,
    test_s3,
)

BIBTEX = r"""
@article{huang2025stablespam,
  title   = {Stable-{SPAM}: How to Train in 4-Bit More Stably than 16-Bit {Adam}},
  author  = {Huang, Tianjin and Hu, Haotian and Zhang, Zhenyu and Jin, Gaojie and Li, Xiang and Shen, Li and
             Chen, Tianlong and Liu, Lu and Wen, Qingsong and Wang, Zhangyang and Liu, Shiwei},
  journal = {arXiv preprint arXiv:2502.17055},
  year    = {2025}
}
@inproceedings{huang2025spam,
  title     = {{SPAM}: Spike-Aware {Adam} with Momentum Reset for Stable {LLM} Training},
  author    = {Huang, Tianjin and Zhu, Ziquan and Jin, Gaojie and Liu, Lu and Wang, Zhangyang and Liu, Shiwei},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025},
  eprint    = {2501.06842},
  archivePrefix = {arXiv}
}
"""

_SETTING = ("six arms on a tiny LLaMA under fake W4A4 (Adam fp, Adam-INT4, Adam+GradClip-INT4, SPAM-INT4, "
            "Stable-SPAM-INT4 official and fixed), each lr tuned by the protocol over the same grid, the choice on "
            "the eval seeds; verdict of the official semantics, the fixed semantics' beside it")
_TOL = {"arms.stablespam_official_int4.mean": 0.05, "arms.stablespam_fixed_int4.mean": 0.05,
        "arms.adam_int4.mean": 0.05, "arms.adam_fp.mean": 0.05}


# The experiments import Lightning, data and plotting; each is imported when its claim runs, so importing an
# optimizer from this package stays light.
def run_stable_spam(cfg: Any, ctx: RunContext) -> Measurement:
    """S1-S3's experiment, :func:`papers.stable_spam.experiment.run_stable_spam`."""
    from papers.stable_spam import experiment

    return experiment.run_stable_spam(cfg, ctx)


PAPER = Paper(
    id="stable_spam",
    title="Stable-SPAM: How to Train in 4-Bit More Stably than 16-Bit Adam",
    authors="Huang et al.",
    venue="arXiv 2025",
    arxiv="2502.17055",
    code_url="https://github.com/TianjinYellow/StableSPAM",
    code_commit="6a66da1",
    bibtex=BIBTEX,
    package="papers.stable_spam",
    claims=(
        Claim(
            id="s1",
            title="lr-stability: under W4A4, Adam is lr-sensitive and fails or spikes where Stable-SPAM stays "
                  "stable and better",
            paper_result="Fig. 2 / Table 1: 4-bit Adam is unstable across learning rates; INT4 LLaMA-1B ppl: Adam "
                         "21.59, Adam+GradClip 19.74, SPAM 19.98, Stable-SPAM 17.42",
            source="Table 1, Fig. 2 [paper]",
            metric=f"failed runs F and loss spikes over each arm's tuning grid; final val loss at the tuned lrs "
                   f"(eval seeds, paired); {_SETTING}",
            rule=RULE_S1,
            summary_type=StableSpamSummary,
            run=run_stable_spam, judge=judge_s1, test=test_s1, headline=headline_s1, tolerances=_TOL,
        ),
        Claim(
            id="s2",
            title="beats-fp: 4-bit Stable-SPAM reaches at least full-precision Adam's loss",
            paper_result="INT4 LLaMA-1B: Stable-SPAM ppl 17.42 vs BF16 Adam 19.73 (\"up to 2 perplexity\")",
            source="abstract, Table 1 [paper]",
            metric=f"SS-INT4 - Adam-fp final val loss at the tuned lrs, paired over eval seeds; {_SETTING}",
            rule=RULE_S2,
            summary_type=StableSpamSummary,
            run=run_stable_spam, judge=judge_s2, test=test_s2, headline=headline_s2, tolerances=_TOL,
        ),
        Claim(
            id="s3",
            title="half-steps: in 4-bit, Stable-SPAM reaches 4-bit Adam's final loss in about half the steps",
            paper_result="\"same loss as Adam while requiring only about half the training steps\" (no number given)",
            source="abstract [abs]",
            metric=f"SS's mean final val loss from runs whose schedules end at 0.5 T against Adam*'s at T; "
                   f"{_SETTING}",
            rule=RULE_S3,
            summary_type=StableSpamSummary,
            run=run_stable_spam, judge=judge_s3, test=test_s3, headline=headline_s3, tolerances=_TOL,
        ),
    ),
)

__all__ = ["PAPER", "SPAM", "StableSPAM"]
