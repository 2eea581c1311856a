"""Variance-reduced optimization for deep learning: SVRG / alpha-SVRG (Johnson & Zhang 2013; Yin et al. 2025),
where it fails (Defazio & Bottou 2019), STORM (Cutkosky & Orabona 2019) and cluster multi-momentum (after Tondji
et al. 2021; no official code)."""

from common.results.paper import Claim, Paper, lazy
from papers.vr_methods.cluster_momentum import ClusterMomentum
from papers.vr_methods.storm import STORM
from papers.vr_methods.svrg import SVRG, linear_coefficients
from papers.vr_methods.verdicts import (
    headline_alpha_svrg,
    headline_cluster,
    headline_convex,
    headline_depth,
    headline_storm,
    judge_alpha_svrg,
    judge_cluster,
    judge_convex,
    judge_depth,
    judge_storm,
)

BIBTEX = r"""
@inproceedings{johnson2013svrg,
  title     = {Accelerating Stochastic Gradient Descent using Predictive Variance Reduction},
  author    = {Johnson, Rie and Zhang, Tong},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2013}
}
@inproceedings{defazio2019ineffectiveness,
  title     = {On the Ineffectiveness of Variance Reduced Optimization for Deep Learning},
  author    = {Defazio, Aaron and Bottou, L{\'e}on},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2019},
  eprint    = {1812.04529},
  archivePrefix = {arXiv}
}
@inproceedings{yin2025coefficient,
  title     = {A Coefficient Makes {SVRG} Effective},
  author    = {Yin, Yida and Xu, Zhiqiu and Li, Zhiyuan and Darrell, Trevor and Liu, Zhuang},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025},
  eprint    = {2311.05589},
  archivePrefix = {arXiv}
}
@inproceedings{cutkosky2019storm,
  title     = {Momentum-Based Variance Reduction in Non-Convex {SGD}},
  author    = {Cutkosky, Ashok and Orabona, Francesco},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2019},
  eprint    = {1905.10018},
  archivePrefix = {arXiv}
}
@article{tondji2021variance,
  title     = {Variance Reduction in Deep Learning: More Momentum is All You Need},
  author    = {Tondji, Lionel and Kashubin, Sergii and Cisse, Moustapha},
  journal   = {arXiv preprint arXiv:2111.11828},
  year      = {2021}
}
"""

PAPER = Paper(
    id="vr_methods",
    title="Variance reduction for deep learning: SVRG / alpha-SVRG, STORM, cluster multi-momentum",
    authors="Johnson & Zhang; Defazio & Bottou; Yin et al.; Cutkosky & Orabona; Tondji et al.",
    venue="NeurIPS 2013 / NeurIPS 2019 / ICLR 2025 / NeurIPS 2019 / arXiv 2021",
    arxiv="2311.05589",
    code_url="https://github.com/davidyyd/alpha-SVRG",
    code_commit="13d4450 (alpha-SVRG); dvr: facebookresearch/deep-variance-reduction@3a5031d; STORM and cluster "
                "multi-momentum: no official code",
    bibtex=BIBTEX,
    package="papers.vr_methods",
    claims=(
        Claim(
            id="a1",
            title="linear-convergence: SVRG converges linearly on a strongly convex finite sum, constant-step SGD "
                  "stalls at a noise floor",
            paper_result="SVR methods converge linearly on smooth strongly convex finite sums (qualitative)",
            source="Johnson & Zhang 2013 [unverified primary]; Defazio & Bottou 2019 intro [paper]",
            metric="f(w) - f* after 12 gradient passes (SGD 12 epochs, SVRG 6 epochs in cache mode), best lr per "
                   "seed over {0.25, 0.5, 1}; f* by float64 L-BFGS",
            rule="reproduced if best SVRG ≤ 1e-6 and best SGD ≥ 1e-4 for every seed; partially if SVRG ≤ SGD/10 "
                 "(every seed) but a threshold fails; not reproduced if within 10x; contradicted if SVRG > SGD",
            run=lazy("papers.vr_methods.convex:run_convex"),
            judge=judge_convex,
            headline=headline_convex,
            tolerances={"f_star": 1e-6},
        ),
        Claim(
            id="a2",
            title="depth: the variance SVRG removes vanishes as networks deepen (SVRG/SGD variance ratio rises "
                  "with depth)",
            paper_result="VR good for LeNet, negligible for deep ResNet/DenseNet after a small fraction of an "
                         "epoch; 'naive application of the SVRG technique ... fail[s]'",
            source="Defazio & Bottou 2019 abstract [abs], ratio figures [unverified]",
            metric="Σ_k Var over probe minibatches of the SVRG estimate / the same for SGD, end of epoch 2 (99%), "
                   "ReLU MLPs width 256, depth {0, 2, 4, 8}, plain SGD lr 0.05",
            rule="reproduced if monotone in depth, depth-8 ≥ 0.6 and depth-0 ≤ 0.3; partially if one of the two; "
                 "not reproduced if neither; contradicted if depth-8 < depth-0",
            run=lazy("papers.vr_methods.depth:run_depth"),
            judge=judge_depth,
            headline=headline_depth,
            tolerances={"ratio.0": 0.1, "ratio.8": 0.3},  # depth-8 seeds spread 0.70-1.73
        ),
        Claim(
            id="a3",
            title="alpha-SVRG: a decaying coefficient lowers training loss below the baseline where plain SVRG "
                  "raises it",
            paper_result="ConvNeXt-F train loss baseline/SVRG/alpha-SVRG: CIFAR-100 2.66/2.94/2.62, Pets "
                         "2.20/3.42/1.96, STL-10 1.64/1.90/1.57, Food-101 2.45/3.03/2.42 (and 4 more datasets)",
            source="alpha-SVRG README tables [code]",
            metric="full-pass train loss after 5 epochs (MLP-4, AdamW, cosine), best lr per arm over {3e-4, 1e-3, "
                   "3e-3}, mean over 3 seeds",
            rule="reproduced if L(alpha-SVRG) < L(base) - 2SE and L(SVRG) > L(base); partially if only the first; "
                 "not reproduced if |L(alpha-SVRG) - L(base)| ≤ 2SE; contradicted if L(alpha-SVRG) > L(base) + 2SE",
            run=lazy("papers.vr_methods.experiment:run_alpha_svrg"),
            judge=judge_alpha_svrg,
            headline=headline_alpha_svrg,
            tolerances={"best.baseline.mean": 0.05, "best.alpha_svrg.mean": 0.05, "best.svrg.mean": 0.05},
        ),
        Claim(
            id="a4",
            title="STORM: the recursive-momentum estimator tracks the full gradient better than plain momentum",
            paper_result="E||∇F(x)|| ≤ O(1/√T + σ^{1/3}/T^{1/3}) without batches (a rate; no error figure)",
            source="Cutkosky & Orabona 2019 abstract [abs]",
            metric="mean over probes (every 50 steps) of ||d_t - ∇F(x_t)||² against the full training gradient, "
                   "STORM (a = 0.1) vs EMA momentum (μ = dampening = 0.9), each at its best lr of {0.03, 0.1, 0.3}",
            rule="reproduced if the error ratio ≤ 0.5 and STORM's train loss is not worse by > 2SE; partially if the "
                 "ratio is < 1; not reproduced if ≥ 1; contradicted if ≥ 1 and STORM's loss is worse by > 2SE",
            run=lazy("papers.vr_methods.experiment:run_storm"),
            judge=judge_storm,
            headline=headline_storm,
            tolerances={"error_ratio": 0.15},
        ),
        Claim(
            id="a5",
            title="cluster multi-momentum (after Tondji et al.; no official code): faster than single momentum, "
                  "also under label noise",
            paper_result="faster convergence than vanilla methods on CIFAR/ImageNet and robust to label noise "
                         "(qualitative)",
            source="Tondji et al. 2021 abstract [abs]; mechanism reconstructed by us [unverified]",
            metric="(clean) steps for K=10's seed-mean full-pass train loss to reach K=1's final; (30% symmetric "
                   "noise) test accuracy; MLP 784-256-10, μ = 0.9, best lr of {0.01, 0.03, 0.1} per arm",
            rule="reproduced if K=10 needs ≤ 80% of the steps and its noisy test acc ≥ K=1's; partially if exactly "
                 "one holds; not reproduced if neither; contradicted if K=10 is slower by > 2SE and worse under noise",
            run=lazy("papers.vr_methods.experiment:run_cluster"),
            judge=judge_cluster,
            headline=headline_cluster,
            tolerances={"best.k1_clean.loss.mean": 0.05, "best.k10_clean.loss.mean": 0.05},
        ),
    ),
)

__all__ = ["PAPER", "STORM", "SVRG", "ClusterMomentum", "linear_coefficients"]
