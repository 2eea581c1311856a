"""AdaBelief: Adapting Stepsizes by the Belief in Observed Gradients (Zhuang et al., NeurIPS 2020)."""

from typing import Any

from common.results.context import RunContext
from common.results.paper import Claim, Measurement, Paper
from papers.adabelief.optim import PACKAGE_DEFAULT, PAPER_CIFAR, AdaBelief
from papers.adabelief.verdicts import (
    C1_RULE,
    C2_RULE,
    GeneralizationSummary,
    ToySummary,
    headline_generalization,
    headline_toy,
    judge_generalization,
    judge_toy,
    test_generalization,
    test_toy,
)

BIBTEX = r"""
@inproceedings{zhuang2020adabelief,
  title     = {AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients},
  author    = {Zhuang, Juntang and Tang, Tommy and Ding, Yifan and Tatikonda, Sekhar and Dvornek, Nicha and
               Papademetris, Xenophon and Duncan, James S.},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2020},
  eprint    = {2010.07468},
  archivePrefix = {arXiv}
}
"""


# The experiments import Lightning, data and plotting; each is imported when its claim runs, so importing an
# optimizer from this package stays light.
def run_toy(cfg: Any, ctx: RunContext) -> Measurement:
    """C1's experiment, :func:`papers.adabelief.toy.run_toy`."""
    from papers.adabelief import toy

    return toy.run_toy(cfg, ctx)


def run_generalization(cfg: Any, ctx: RunContext) -> Measurement:
    """C2's experiment, :func:`papers.adabelief.experiment.run_generalization`."""
    from papers.adabelief import experiment

    return experiment.run_generalization(cfg, ctx)


PAPER = Paper(
    id="adabelief",
    title="AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients",
    authors="Zhuang et al.",
    venue="NeurIPS 2020",
    arxiv="2010.07468",
    code_url="https://github.com/juntang-zhuang/Adabelief-Optimizer",
    code_commit="2855178 (package adabelief-pytorch 0.2.1)",
    bibtex=BIBTEX,
    package="papers.adabelief",
    claims=(
        Claim(
            id="c1",
            title="toy: on Beale's function AdaBelief reaches the optimum where Adam and SGD stall",
            paper_result="from ≈(−2.5, −2.5) only AdaBelief reaches (3, 0.5); lr and steps not given",
            source="imgs/beale3.png [fig]",
            metric="distance to (3, 0.5) after the step budget, each arm at its lr chosen on the tuning starts, mean "
                   "over the eval starts; paired test against the closest rival",
            rule=C1_RULE,
            run=run_toy,
            summary_type=ToySummary,
            judge=judge_toy,
            test=test_toy,
            headline=headline_toy,
            tolerances={"arms.adabelief.mean": 0.02, "arms.adam.mean": 0.02, "arms.sgd.mean": 0.05},
        ),
        Claim(
            id="c2",
            title="fast-and-generalizes: trains as fast as Adam, tests at least as well as SGD",
            paper_result="CIFAR-10 VGG11 best test acc AdaBelief 91.41 vs SGD 90.11 vs Adam 88.40 (ResNet34 "
                         "95.44/94.64/93.02, DenseNet121 95.51/94.50/93.35; one run each)",
            source="classification_cifar10/curve logs [log]; Fig. 4 [paper]",
            metric="(a) mean logged train loss over 45-50% of steps; (b) final test acc; each arm at its lr tuned "
                   "on the tuning seeds by final val error, on the eval seeds, paired tests",
            rule=C2_RULE,
            run=run_generalization,
            summary_type=GeneralizationSummary,
            judge=judge_generalization,
            test=test_generalization,
            headline=headline_generalization,
            tolerances={"arms.adabelief.test_acc_mean": 0.4, "arms.adam.test_acc_mean": 0.4,
                        "arms.sgd.test_acc_mean": 0.4, "arms.adabelief.train_loss_at_speed_mean": 0.03,
                        "arms.adam.train_loss_at_speed_mean": 0.03},
        ),
    ),
)

__all__ = ["PACKAGE_DEFAULT", "PAPER", "PAPER_CIFAR", "AdaBelief"]
