"""Claim B3: on a toy token MDP with an exact policy gradient, Delta-L is unbiased and has the lowest variance
among unbiased aggregators, while GRPO and DAPO are biased; plus short RL runs (reported only).

Gradient statistics: at a fixed, seeded, partially trained table policy, draw ``batches`` batches of G responses
for each of the P prompts; every aggregator turns the same batch into an estimate g_hat = -d loss / d theta with
token losses l_it = -A_i log pi(y_it) (on-policy, so PPO's ratio is 1). Because the weights depend only on the
lengths, g_hat = sum_i A_i kappa_i score_i, with kappa from autograd of the aggregator and score_i = d log pi(y_i)
in closed form, so 20k batches cost a few matrix products. Against the exact grad J (enumeration of all P x 511
responses) we fit c = <mean g_hat, grad J>/|grad J|^2 and report
  * the relative bias rb = |P_perp E g_hat| / |c grad J|, estimated without its Monte-Carlo noise floor:
    b2 = (|P_perp gbar|^2 - tr(P_perp Cov P_perp)/n) / |P_par gbar|^2, rb = sqrt(max(b2, 0)); its SE by bootstrap.
    (The plain |gbar - c grad J| has a noise floor sqrt(tr Cov / n) that, in 288 dimensions, is many
    bootstrap SEs even for an exactly unbiased estimator, so the test is on b2 and its SE.)
  * the normalised variance tr Cov(g_hat / c), and relative to |grad J|^2.

A plain loop, not Lightning: the policy is a table (tabular method), the statistics need no training at all, and
the RL runs batch (lr x seed) runs as one tensor with exact evaluation every step, which a Trainer would not add to.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves
from common.results.protocol import no_tuning
from papers.rl_variance.aggregation import AggConfig, aggregate, group_advantages, sequence_coefficients
from papers.rl_variance.envs.token_mdp import EOS, TokenMDP
from papers.rl_variance.plots import plot_bars
from papers.rl_variance.verdicts import AggregationSummary, EstimatorStats, RLBest


def estimator_arms(cfg: Any) -> dict[str, tuple[AggConfig, bool]]:
    """name -> (aggregator config, std-normalised advantages)."""
    arms = {}
    for name, spec in cfg.estimators.items():
        arms[name] = (AggConfig(str(spec.agg), int(cfg.mdp.max_len), float(spec.get("alpha", 1.0))),
                      bool(spec.get("std", False)))
    return arms


def initial_table(mdp: TokenMDP, cfg: Any) -> torch.Tensor:
    """The fixed, seeded, partially trained policy: N(0, init_sd^2) logits with an EOS offset, then
    ``pretrain_steps`` steps of exact gradient ascent on J."""
    g = torch.Generator().manual_seed(int(cfg.policy_seed))
    table = float(cfg.init_sd) * torch.randn(mdp.n_rows, 3, generator=g, dtype=torch.float64)
    table[:, EOS] += float(cfg.eos_bias)
    for _ in range(int(cfg.pretrain_steps)):
        table = table + float(cfg.pretrain_lr) * mdp.exact_gradient(table).view(mdp.n_rows, 3)
    return table


def _batch_layout(mdp: TokenMDP, G: int) -> tuple[torch.Tensor, torch.Tensor]:
    group_ids = torch.arange(mdp.prompts).repeat_interleave(G)
    return group_ids, torch.arange(mdp.prompts)[:, None].expand(mdp.prompts, G).reshape(-1)


def sample_batches(mdp: TokenMDP, table: torch.Tensor, G: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """Response indices (n, P*G), prompt-major: n batches of G responses per prompt from pi."""
    probs = mdp.seq_logprobs(table).exp()  # (P, S)
    idx = torch.multinomial(probs, n * G, replacement=True, generator=gen)  # (P, n*G)
    return idx.view(mdp.prompts, n, G).permute(1, 0, 2).reshape(n, mdp.prompts * G)


def estimates(mdp: TokenMDP, table: torch.Tensor, idx: torch.Tensor, arms: dict[str, tuple[AggConfig, bool]],
              G: int, chunk: int = 1000) -> dict[str, np.ndarray]:
    """g_hat for every batch and arm: {arm: (n, n_params)}, float64."""
    group_ids, prompt_of = _batch_layout(mdp, G)
    scores = mdp.scores(table).reshape(mdp.prompts * mdp.n_responses, mdp.n_params)
    flat = prompt_of[None, :] * mdp.n_responses + idx  # (n, B) index into (P*S)
    rewards = mdp.rewards.reshape(-1)[flat]
    lengths = mdp.lengths[idx]
    T = mdp.max_len
    mask = (torch.arange(T)[None, None, :] < lengths[..., None]).to(torch.float64)
    out: dict[str, list[np.ndarray]] = {a: [] for a in arms}
    for name, (agg, std) in arms.items():
        adv = group_advantages(rewards, group_ids, std_normalize=std)
        for lo in range(0, idx.shape[0], chunk):
            sl = slice(lo, lo + chunk)
            kappa = sequence_coefficients(mask[sl], group_ids, lengths[sl], agg)
            coef = torch.zeros(kappa.shape[0], scores.shape[0], dtype=torch.float64)
            coef.scatter_add_(1, flat[sl], adv[sl] * kappa)
            out[name].append((coef @ scores).numpy())
    return {a: np.concatenate(v) for a, v in out.items()}


def bias_variance(g: np.ndarray, true: np.ndarray, boot: int, rng: np.random.Generator) -> dict[str, float]:
    """Fitted scale c, noise-debiased squared relative bias b2 (+ bootstrap SE), rb, and normalised variances."""
    n = g.shape[0]
    u = true / np.linalg.norm(true)
    par = g @ u  # (n,) component along grad J
    perp_sq = (g * g).sum(1) - par**2  # |P_perp g_k|^2

    def stats(w: np.ndarray) -> tuple[float, float, float]:
        mean = (w @ g) / n
        m_par = mean @ u
        m_perp_sq = mean @ mean - m_par**2
        tr_perp = ((w @ perp_sq) / n - m_perp_sq) * n / (n - 1)
        return (m_perp_sq - tr_perp / n) / m_par**2, m_par, m_perp_sq

    b2, m_par, m_perp_sq = stats(np.ones(n))
    reps = np.array([stats(rng.multinomial(n, np.full(n, 1.0 / n)).astype(float))[0] for _ in range(boot)])
    c = m_par / np.linalg.norm(true)
    tr_cov = float(g.var(0, ddof=1).sum())
    return {"c": float(c), "b2": float(b2), "b2_se": float(reps.std(ddof=1)), "rb": math.sqrt(max(b2, 0.0)),
            "rb_naive": float(math.sqrt(m_perp_sq) / abs(m_par)),
            "trvar_norm": tr_cov / c**2, "trvar_rel": tr_cov / c**2 / float(true @ true), "n": n}


def rl_runs(mdp: TokenMDP, table0: torch.Tensor, arms: dict[str, tuple[AggConfig, bool]], cfg: Any,
            seeds: list[int], ctx: RunContext) -> dict[str, Any]:
    """Policy-gradient runs with Adam from table0, every (lr, seed) of an arm batched as one tensor; the exact J
    and the gradient norm are recorded. Returns per arm {lr: {"J": [[step, J] per seed], ...}}."""
    lrs = [float(x) for x in cfg.rl.lrs]
    R, G, T = len(lrs) * len(seeds), int(cfg.group_size), mdp.max_len
    group_ids, prompt_of = _batch_layout(mdp, G)
    every = max(1, int(cfg.rl.steps) // 50)
    out: dict[str, Any] = {}
    for i, (name, (agg, std)) in enumerate(arms.items(), 1):
        if name not in cfg.rl.arms:
            continue
        gen = torch.Generator().manual_seed(int(seeds[0]) * 1000 + i)
        tables = [torch.nn.Parameter(table0.clone().expand(len(seeds), *table0.shape).clone()) for _ in lrs]
        opt = torch.optim.Adam([{"params": [t], "lr": lr} for t, lr in zip(tables, lrs, strict=True)])
        J = np.zeros((R, int(cfg.rl.steps) + 1))
        gnorm = np.zeros((R, int(cfg.rl.steps)))
        for step in range(int(cfg.rl.steps) + 1):
            tab = torch.cat(list(tables))  # (R, rows, 3)
            logp_tok = torch.log_softmax(tab, -1)[:, mdp.ctx, mdp.tok] * mdp.mask  # (R, P, S, T)
            seq = logp_tok.detach().sum(-1)
            J[:, step] = (seq.exp() * mdp.rewards).sum(-1).mean(-1).numpy()
            if step == int(cfg.rl.steps):
                break
            idx = torch.stack([torch.multinomial(seq[r].exp(), G, replacement=True, generator=gen)
                               for r in range(R)]).reshape(R, -1)  # (R, P*G)
            rewards = mdp.rewards[prompt_of[None, :], idx]
            lengths = mdp.lengths[idx]
            mask = (torch.arange(T)[None, None, :] < lengths[..., None]).to(torch.float64)
            tok_lp = logp_tok[torch.arange(R)[:, None], prompt_of[None, :], idx]  # (R, B, T)
            adv = group_advantages(rewards, group_ids, std_normalize=std)
            loss = aggregate(-adv[..., None] * tok_lp, mask, group_ids, lengths, agg)
            opt.zero_grad()
            loss.sum().backward()
            gnorm[:, step] = torch.cat([t.grad for t in tables]).flatten(1).norm(dim=1).numpy()
            opt.step()
        res = {}
        for j, lr in enumerate(lrs):
            rows = slice(j * len(seeds), (j + 1) * len(seeds))
            res[f"{lr:g}"] = {
                "final_J": J[rows, -1].tolist(),
                "final_J_mean": float(J[rows, -1].mean()),
                "mean_J": J[rows].mean(1).tolist(),  # area under the learning curve / steps: the speed of learning
                "J_curve": [[[s, float(v)] for s, v in enumerate(row) if s % every == 0 or s == len(row) - 1]
                            for row in J[rows]],
                "grad_norm_cv": (gnorm[rows].std(1) / gnorm[rows].mean(1)).tolist(),
                "grad_norm_mean": gnorm[rows].mean(1).tolist(),
            }
        best = max(res, key=lambda k: float(np.mean(res[k]["mean_J"])))  # best by area under the curve
        out[name] = {"by_lr": res, "best_lr": float(best), "best_final_J": res[best]["final_J_mean"],
                     "best_mean_J": float(np.mean(res[best]["mean_J"])),
                     "best_final_J_sd": float(np.std(res[best]["final_J"], ddof=1)) if len(seeds) > 1 else 0.0}
        ctx.say(f"[{ctx.label(i, len(arms), name)}] RL {cfg.rl.steps} steps x {R} runs: best lr {best}, final J "
                f"{out[name]['best_final_J']:.3f}")
    return out


def run_aggregation(cfg: Any, ctx: RunContext) -> Measurement:
    mdp = TokenMDP.make(int(cfg.mdp.prompts), int(cfg.mdp.max_len), int(cfg.mdp.seed))
    table = initial_table(mdp, cfg.policy)
    true = mdp.exact_gradient(table).numpy()
    lens = mdp.lengths.numpy()
    pi = mdp.seq_logprobs(table).exp().numpy()
    mean_len = float((pi * lens[None]).sum(1).mean())
    arms = estimator_arms(cfg)
    G = int(cfg.group_size)
    ctx.say(f"[{ctx.claim_id}] policy J={float(mdp.expected_reward(table)):.3f}, mean length {mean_len:.2f}; "
            f"{cfg.batches} batches of {mdp.prompts}x{G}")
    gen = torch.Generator().manual_seed(int(ctx.seeds[0]))
    idx = sample_batches(mdp, table, G, int(cfg.batches), gen)
    est = estimates(mdp, table, idx, arms, G)
    rng = np.random.default_rng(int(ctx.seeds[0]))
    stats = {}
    for i, (name, g) in enumerate(est.items(), 1):
        stats[name] = bias_variance(g, true, int(cfg.bootstrap), rng)
        s = stats[name]
        ctx.say(f"[{ctx.label(i, len(est), name)}] rb {s['rb']:.4f} (b2 {s['b2']:.2e} +- {s['b2_se']:.1e}), "
                f"tr Var(g/c)/|gJ|^2 {s['trvar_rel']:.3g}")
    rl = rl_runs(mdp, table, arms, cfg, ctx.seeds, ctx)
    summary = AggregationSummary(
        stats={n: EstimatorStats(**s) for n, s in stats.items()}, policy_J=float(mdp.expected_reward(table)),
        mean_length=mean_len, grad_norm=float(np.linalg.norm(true)), batches=int(cfg.batches), group_size=G,
        rl={a: RLBest(**{k: v for k, v in r.items() if k != "by_lr"}) for a, r in rl.items()},
        seeds=len(ctx.seeds))
    plots = {"bias_variance": str(plot_bars(
        {n: (s["rb"], s["b2_se"] / (2 * s["rb"]) if s["rb"] > 0 else 0.0) for n, s in stats.items()},
        {n: (s["trvar_rel"], 0.0) for n, s in stats.items()}, ctx.path("b3_bias_variance.png"),
        titles=("relative bias rb (noise-debiased)", "tr Var(g/c) / |grad J|^2"),
        suptitle=f"B3: {cfg.batches} batches, G={G}, exact grad by enumeration"))}
    if rl:
        plots["rl_curves"] = str(plot_curves(
            {f"{a} lr={r['best_lr']:g}": r["by_lr"][f"{r['best_lr']:g}"]["J_curve"] for a, r in rl.items()},
            ctx.path("b3_rl_curves.png"), title="B3: exact expected reward during RL (best lr per aggregator)",
            xlabel="step", ylabel="J(theta)"))
    why = ("the verdict rests on the bias and variance of each aggregator's gradient estimate at one fixed policy, "
           "measured against the exact gradient by enumeration: no optimizer and nothing tuned. The short "
           "policy-gradient runs over a few Adam lrs are reported only and choose nothing the verdict uses")
    return Measurement(arms={"stats": stats, "rl": rl}, summary=summary, plots=plots, protocol=no_tuning(why))
