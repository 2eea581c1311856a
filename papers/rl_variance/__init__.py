"""Variance in RL and RLVR: LMC-LSVI / Adam LMCDQN (Ishfaq et al., ICLR 2024; RLC 2024), Delta-L loss aggregation
(He et al., 2025) and GVPO (Zhang et al., NeurIPS 2025), with in-repo environments."""

from typing import Any

from common.results.context import RunContext
from common.results.paper import Claim, Measurement, Paper
from papers.rl_variance.aggregation import (
    AggConfig,
    aggregate,
    deltal_weights,
    group_advantages,
    grpo_kl_loss,
    gvpo_loss,
)
from papers.rl_variance.optim import ASGLD
from papers.rl_variance.verdicts import (
    B1_RULE,
    B2_RULE,
    B3_RULE,
    B4_RULE,
    AggregationSummary,
    DeepSeaSummary,
    GVPOSummary,
    NChainSummary,
    headline_aggregation,
    headline_deepsea,
    headline_gvpo,
    headline_nchain,
    judge_aggregation,
    judge_deepsea,
    judge_gvpo,
    judge_nchain,
    test_gvpo,
    test_nchain,
)

BIBTEX = r"""
@inproceedings{ishfaq2024provable,
  title     = {Provable and Practical: Efficient Exploration in Reinforcement Learning via Langevin Monte Carlo},
  author    = {Ishfaq, Haque and Lan, Qingfeng and Xu, Pan and Mahmood, A. Rupam and Precup, Doina and
               Anandkumar, Anima and Azizzadenesheli, Kamyar},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2024},
  eprint    = {2305.18246},
  archivePrefix = {arXiv}
}
@article{ishfaq2024more,
  title     = {More Efficient Randomized Exploration for Reinforcement Learning via Approximate Sampling},
  author    = {Ishfaq, Haque and Tan, Yixin and Yang, Yu and Lan, Qingfeng and Lu, Jianfeng and Mahmood, A. Rupam and
               Precup, Doina and Xu, Pan},
  journal   = {Reinforcement Learning Journal},
  volume    = {3},
  year      = {2024},
  eprint    = {2406.12241},
  archivePrefix = {arXiv}
}
@article{he2025deltal,
  title     = {$\Delta L$ Normalization: Rethink Loss Aggregation in {RLVR}},
  author    = {He, Zhiyuan and Luo, Xufang and Zhang, Yike and Yang, Yuqing and Qiu, Lili},
  journal   = {arXiv preprint arXiv:2509.07558},
  year      = {2025}
}
@inproceedings{zhang2025gvpo,
  title     = {{GVPO}: Group Variance Policy Optimization for Large Language Model Post-Training},
  author    = {Zhang, Kaichen and Hong, Yuzhong and Bao, Junwei and Jiang, Hongfei and Song, Yang and Hong, Dingqian
               and Xiong, Hui},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2025},
  eprint    = {2504.19599},
  archivePrefix = {arXiv}
}
"""


# The experiments import Lightning, data and plotting; each is imported when its claim runs, so importing an
# optimizer from this package stays light.
def run_deepsea(cfg: Any, ctx: RunContext) -> Measurement:
    """B1's experiment, :func:`papers.rl_variance.exp_deepsea.run_deepsea`."""
    from papers.rl_variance import exp_deepsea

    return exp_deepsea.run_deepsea(cfg, ctx)


def run_nchain(cfg: Any, ctx: RunContext) -> Measurement:
    """B2's experiment, :func:`papers.rl_variance.exp_nchain.run_nchain`."""
    from papers.rl_variance import exp_nchain

    return exp_nchain.run_nchain(cfg, ctx)


def run_aggregation(cfg: Any, ctx: RunContext) -> Measurement:
    """B3's experiment, :func:`papers.rl_variance.exp_aggregation.run_aggregation`."""
    from papers.rl_variance import exp_aggregation

    return exp_aggregation.run_aggregation(cfg, ctx)


def run_gvpo(cfg: Any, ctx: RunContext) -> Measurement:
    """B4's experiment, :func:`papers.rl_variance.exp_gvpo.run_gvpo`."""
    from papers.rl_variance import exp_gvpo

    return exp_gvpo.run_gvpo(cfg, ctx)


PAPER = Paper(
    id="rl_variance",
    title="Variance in RL and RLVR: Langevin Monte Carlo exploration (LMC-LSVI, Adam LMCDQN), ΔL loss aggregation "
          "and GVPO",
    authors="Ishfaq et al. (ICLR 2024, RLC 2024); He et al. (2025); Zhang et al. (NeurIPS 2025)",
    venue="ICLR 2024 · RLC 2024 · arXiv 2025 · NeurIPS 2025",
    arxiv="2305.18246",
    code_url="https://github.com/hmishfaq/LMC-LSVI",
    code_commit="1fd3c98; ΔL: zerolllin/Delta-L-Normalization@89da5b9 (arXiv:2509.07558); GVPO: jszkc/GVPO@627aa25 "
                "(arXiv:2504.19599)",
    bibtex=BIBTEX,
    package="papers.rl_variance",
    claims=(
        Claim(
            id="b1",
            title="DeepSea: LMC-LSVI explores where epsilon-greedy LSVI does not",
            paper_result="regret Õ(d^{3/2}H^{3/2}√T) in linear MDPs [abs]; no DeepSea number in the paper (our "
                         "preliminary single seed: N=20 first success at episode 1719, ε-greedy never in 5000)",
            source="lmc abstract (arXiv:2305.18246); the DeepSea setting and the preliminary seed are ours",
            metric="seeds (of 5) with a success within the episode budget at N=20 (first-success episode, fraction of "
                   "episodes solved; N=10 and a 1/β sweep reported)",
            rule=B1_RULE,
            run=run_deepsea,
            summary_type=DeepSeaSummary,
            judge=judge_deepsea,
            headline=headline_deepsea,
            arxiv="2305.18246",
            tolerances={"sizes.N20.lmc.seeds_solved": 1, "sizes.N20.egreedy.seeds_solved": 1,
                        "sizes.N20.lmc.fraction_solved_mean": 0.1},
        ),
        Claim(
            id="b2",
            title="N-chain: Adam LMCDQN beats epsilon-greedy DQN on the longer chain",
            paper_result="mean return over 20 runs, N=25/50: Adam LMCDQN 8.55/7.31, DQN 9.40/5.52 (LMC better at "
                         "N=50, not at N=25)",
            source="the N-chain table of the follow-up paper's plot script (arXiv:2406.12241) [code]; Adam LMCDQN is "
                   "the ICLR paper's method (arXiv:2305.18246)",
            metric="regret = 10 - greedy eval return (mean of the last evaluations) at N=50, each arm at its lr and "
                   "exploration knob tuned on the tuning seeds, paired over the eval seeds; N=25 reported",
            rule=B2_RULE,
            run=run_nchain,
            summary_type=NChainSummary,
            judge=judge_nchain,
            test=test_nchain,
            headline=headline_nchain,
            arxiv="2406.12241",
            tolerances={"arms.lmc.return_mean": 3.0, "arms.dqn.return_mean": 3.0},
        ),
        Claim(
            id="b3",
            title="ΔL aggregation: unbiased with the lowest variance among unbiased aggregators; GRPO/DAPO biased",
            paper_result="GRPO/DAPO biased, Dr.GRPO unbiased but high-variance, ΔL unbiased and minimum-variance "
                         "[abs]; up to 2.67× faster convergence on CountDown [abs]",
            source="dl abstract (arXiv:2509.07558)",
            metric="on a toy token MDP with the exact gradient by enumeration, over 20k resampled batches: relative "
                   "bias rb (noise-debiased, bootstrap SE) and tr Var(ĝ/c); 300-step RL runs reported",
            rule=B3_RULE,
            run=run_aggregation,
            summary_type=AggregationSummary,
            judge=judge_aggregation,
            headline=headline_aggregation,
            arxiv="2509.07558",
            tolerances={"stats.grpo.rb": 0.03, "stats.deltal_a1.rb": 0.03, "stats.drgrpo.rb": 0.03,
                        "stats.deltal_a1.trvar_rel": 0.3, "stats.drgrpo.trvar_rel": 1.0},
        ),
        Claim(
            id="b4",
            title="GVPO: the fixed point is π* ∝ π_ref·exp(R/β) under any sampling distribution; GRPO's is not",
            paper_result="unique optimum = the KL-constrained reward-maximisation solution; no importance sampling; "
                         "valid under any sampling distribution [abs]",
            source="gvpo abstract and README",
            metric="mean over prompts of KL(π*‖π_θ) after the Adam budget on a 20×8 contextual bandit, lr per "
                   "(arm, μ) tuned on the tuning seeds, mean over the eval seeds, μ ∈ {on-policy, uniform, stale = "
                   "π_ref}; anchor=old reported",
            rule=B4_RULE,
            run=run_gvpo,
            summary_type=GVPOSummary,
            judge=judge_gvpo,
            test=test_gvpo,
            headline=headline_gvpo,
            arxiv="2504.19599",
            tolerances={"arms.gvpo/on_policy.mean": 0.005, "arms.gvpo/uniform.mean": 0.005,
                        "arms.gvpo/stale.mean": 0.005, "arms.grpo/uniform.mean": 0.2, "arms.grpo/stale.mean": 0.2},
        ),
    ),
)

__all__ = ["ASGLD", "PAPER", "AggConfig", "aggregate", "deltal_weights", "group_advantages", "grpo_kl_loss",
           "gvpo_loss"]
