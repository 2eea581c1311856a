"""Riemannian Adaptive Optimization Methods (Bécigneul & Ganea, ICLR 2019)."""

from collections.abc import Mapping
from typing import Any

from common.results.context import RunContext
from common.results.paper import Claim, Measurement, Paper
from papers.riemannian_adam.manifolds import Euclidean, PoincareBall, manifold_of, tag_manifold
from papers.riemannian_adam.optim import RiemannianAdagrad, RiemannianAdam, RiemannianSGD
from papers.riemannian_adam.verdicts import (
    R1_REL_GAP,
    R2_RETR_CONTRA,
    R2_RETR_MARGIN,
    EmbeddingSummary,
    headline_loss,
    headline_map,
    judge_loss,
    judge_map,
    loss_test_record,
    map_test_record,
)

BIBTEX = r"""
@inproceedings{becigneul2019riemannian,
  title     = {Riemannian Adaptive Optimization Methods},
  author    = {B{\'e}cigneul, Gary and Ganea, Octavian-Eugen},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2019},
  eprint    = {1810.00760},
  archivePrefix = {arXiv}
}
"""

CLOSURE_EDGES = {"nouns": 743_241, "mammals": 6_540}


def _plan(section: Mapping[str, Any]) -> dict[str, Any]:
    """For ``reproduce --dry-run``: the arms' lr grids are their ``grid`` lists, and a run is ``epochs`` passes over
    the closure's edges in batches (the embedding table is tiny; no GPU-hour estimate is made)."""
    edges = CLOSURE_EDGES.get(str((section.get("data") or {}).get("hierarchy")), 0)
    steps = int(section.get("epochs", 0)) * -(-edges // int(section.get("batch_size", 1)))
    arms = {a: {"lrs": list(v.get("grid") or [])} for a, v in (section.get("arms") or {}).items()}
    return {k: v for k, v in section.items() if k != "epochs"} | {"arms": arms, "steps": steps}


# The experiments import Lightning, data and plotting; each is imported when its claim runs, so importing an
# optimizer from this package stays light.
def run_embedding(cfg: Any, ctx: RunContext) -> Measurement:
    """R1 and R2's experiment, :func:`papers.riemannian_adam.experiment.run_embedding`."""
    from papers.riemannian_adam import experiment

    return experiment.run_embedding(cfg, ctx)


PAPER = Paper(
    id="riemannian_adam",
    title="Riemannian Adaptive Optimization Methods",
    authors="Bécigneul & Ganea",
    venue="ICLR 2019",
    arxiv="1810.00760",
    code_url="https://github.com/geoopt/geoopt",
    code_commit="geoopt 0.5.1 (unofficial reference implementation; the authors released no code)",
    bibtex=BIBTEX,
    package="papers.riemannian_adam",
    claims=(
        Claim(
            id="r1",
            plan=_plan,
            title="RADAM and RAMSGRAD reach a lower train loss than RSGD, and sooner",
            paper_result="\"faster convergence and ... lower train loss\" than RSGD on WordNet nouns (d=5); RADAM "
                         "has the lowest loss in both settings (no numbers in the text)",
            source="abstract, §5, Figs. 2-3 [paper]",
            metric="full-closure train loss (fixed-seed negatives) after T epochs, each arm at its loss-tuned lr, "
                   "over eval seeds; RADAM's and RSGD's loss at epoch T/4",
            rule=f"Delta_a = L_RSGD - L_a; an arm qualifies if Delta_a > max(2 SE, {R1_REL_GAP} L_RSGD) and the "
                 "paired one-sided t-test gives p < 0.05. Reproduced: RADAM and RAMSGRAD qualify and RADAM is "
                 "lower at T/4; partially: one qualifies, or both without the T/4 condition; contradicted: both "
                 "are higher by > 2 SE (p < 0.05); else not reproduced. Protocol caps apply.",
            run=run_embedding,
            summary_type=EmbeddingSummary,
            judge=judge_loss,
            headline=headline_loss,
            test=loss_test_record,
            tolerances={},
        ),
        Claim(
            id="r2",
            plan=_plan,
            title="RADAM's MAP beats RSGD's with the exp map and matches it with the retraction",
            paper_result="exp map: RADAM has the best MAP; retraction: RADAM ≈ RSGD on MAP (no numbers in the text)",
            source="§5 text, Figs. 2-3 [paper]",
            metric="reconstruction MAP after T epochs, each arm at its MAP-tuned lr, over eval seeds",
            rule=f"retraction: reproduced if MAP_RADAM >= MAP_RSGD - max({R2_RETR_MARGIN}, 2 SE), contradicted "
                 f"if lower by > max({R2_RETR_CONTRA}, 2 SE), else not reproduced. exp map: reproduced if "
                 "MAP_RADAM - MAP_RSGD > 2 SE with paired p < 0.05; partially if higher; contradicted if lower by "
                 "> 2 SE; else not reproduced. Protocol caps apply.",
            run=run_embedding,
            summary_type=EmbeddingSummary,
            judge=judge_map,
            headline=headline_map,
            test=map_test_record,
            tolerances={},
        ),
    ),
)

__all__ = ["PAPER", "Euclidean", "PoincareBall", "RiemannianAdagrad", "RiemannianAdam", "RiemannianSGD",
           "manifold_of", "tag_manifold"]
