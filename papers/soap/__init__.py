"""SOAP: Improving and Stabilizing Shampoo using Adam (Vyas et al., ICLR 2025)."""

from common.results.paper import Claim, Paper, lazy
from papers.soap.optim import SOAP
from papers.soap.shampoo import Shampoo
from papers.soap.verdicts import headline_iterations, judge_iterations

BIBTEX = r"""
@inproceedings{vyas2025soap,
  title     = {{SOAP}: Improving and Stabilizing Shampoo using Adam},
  author    = {Vyas, Nikhil and Morwani, Depen and Zhao, Rosie and Kwun, Mujin and Shapira, Itai and
               Brandfonbrener, David and Janson, Lucas and Kakade, Sham},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025},
  eprint    = {2409.11321},
  archivePrefix = {arXiv}
}
"""

PAPER = Paper(
    id="soap",
    title="SOAP: Improving and Stabilizing Shampoo using Adam",
    authors="Vyas et al.",
    venue="ICLR 2025",
    arxiv="2409.11321",
    code_url="https://github.com/nikhilvyas/SOAP",
    code_commit="a1e5535",
    bibtex=BIBTEX,
    package="papers.soap",
    claims=(
        Claim(
            id="p1",
            title="fewer-iterations: SOAP reaches AdamW's final loss in clearly fewer steps, and beats Shampoo",
            paper_result="≥ 40% fewer iterations and ≥ 35% less wall-clock than AdamW, ≈ 20% fewer than Shampoo "
                         "(360m/660m LMs, 2M-token batches)",
            source="abstract, §5 [paper]",
            metric="I = 1 − T_hit/T_total, T_hit = first eval step where SOAP's seed-mean val loss ≤ the baseline's "
                   "seed-mean final loss (best lr each); wall-clock reported, not judged",
            rule="reproduced if I ≥ 0.30 vs AdamW and SOAP's final loss < Shampoo's; partially if 0.10 ≤ I < 0.30, "
                 "or I ≥ 0.30 without beating Shampoo; not reproduced if I < 0.10; contradicted if SOAP's final "
                 "loss > AdamW's + 2·SE",
            run=lazy("papers.soap.experiment:run_fewer_iterations"),
            judge=judge_iterations,
            headline=headline_iterations,
            tolerances={"best.soap.final_val_loss": 0.03, "best.adamw.final_val_loss": 0.03,
                        "best.shampoo.final_val_loss": 0.03},
        ),
    ),
)

__all__ = ["PAPER", "SOAP", "Shampoo"]
