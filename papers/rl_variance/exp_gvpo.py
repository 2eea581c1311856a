"""Claim B4: GVPO's fixed point is pi* ~ pi_ref exp(R / beta) under on-policy, uniform and stale sampling,
where a GRPO-style loss's is not.

Contextual bandit (P prompts x K responses, R ~ U(0, 1), random pi_ref, tabular logits starting at pi_ref).
Each step draws one group of k responses per prompt from mu in {on-policy pi_theta, uniform, stale = pi_ref} and
takes an Adam step on the loss summed over runs. GVPO with ``anchor="ref"`` is compared with a GRPO-style loss
(std-normalised group advantage, beta k3-KL to pi_ref, no importance weights). Metric: mean over prompts of
KL(pi* || pi_theta) after the budget, best lr per (arm, mu) by the seed mean. Also reported: ``anchor="old"``
(the official code's form: the anchor is the rollout policy, refreshed every outer iteration), whose target
pi_old exp(R / beta) moves each iteration, away from pi*.

A plain loop, not Lightning: the policy is a table of logits (a tabular method) and every (lr, seed) run is one
slice of a single tensor (Adam is elementwise, so batching the runs leaves each trajectory unchanged).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves
from papers.rl_variance.aggregation import grpo_kl_loss, gvpo_loss
from papers.rl_variance.envs.bandit import Bandit, kl_rows

MUS = ("on_policy", "uniform", "stale")


def _sample(mu: str, logits: torch.Tensor, ref_logp: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k response indices per (run, prompt) from mu: (R, P, k); ``ref_logp`` is (R, P, K)."""
    if mu == "on_policy":
        probs = torch.softmax(logits.detach(), -1)
    elif mu == "uniform":
        probs = torch.ones_like(logits)
    elif mu == "stale":
        probs = ref_logp.exp()
    else:
        raise ValueError(f"mu must be one of {MUS}, got {mu!r}")
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, k, replacement=True, generator=gen).view(*probs.shape[:-1], k)


def _loss(arm: str, logits: torch.Tensor, anchor_logp: torch.Tensor, ref_logp: torch.Tensor,
          rewards: torch.Tensor, idx: torch.Tensor, beta: float, k: int) -> torch.Tensor:
    """The arm's loss, summed over runs and prompts (each prompt is one group of k)."""
    R, P, _ = idx.shape
    logp = torch.log_softmax(logits, -1).gather(-1, idx).reshape(R, P * k)
    anchor = anchor_logp.gather(-1, idx).reshape(R, P * k)
    ref = ref_logp.gather(-1, idx).reshape(R, P * k)
    rew = rewards.gather(-1, idx).reshape(R, P * k)
    groups = torch.arange(P).repeat_interleave(k)
    if arm == "gvpo":
        return gvpo_loss(logp, anchor, rew, groups, beta, k).sum() * P
    return grpo_kl_loss(logp, ref, rew, groups, beta).sum() * P


def stacked(cfg: Any, seeds: list[int]) -> Bandit:
    """One bandit per seed, stacked along a leading dim: rewards and ref logits (S, P, K)."""
    bandits = [Bandit.make(int(cfg.prompts), int(cfg.responses), s) for s in seeds]
    return Bandit(torch.stack([b.rewards for b in bandits]), torch.stack([b.ref_logits for b in bandits]))


def train(bandit: Bandit, arm: str, mu: str, lrs: list[float], seeds: list[int], *, steps: int, beta: float,
          k: int, record_every: int, anchor: str = "ref", old_every: int | None = None) -> dict[str, Any]:
    """Train len(lrs) x len(seeds) runs at once (lr-major; ``bandit`` stacked over seeds, see :func:`stacked`);
    returns KL(pi*||pi_theta) per run and recorded step (runs x points)."""
    L = len(lrs)
    ref_logp = torch.log_softmax(bandit.ref_logits, -1).repeat(L, 1, 1)  # (L*S, P, K)
    target = bandit.optimal_logits(beta).repeat(L, 1, 1)
    rewards = bandit.rewards.repeat(L, 1, 1)
    S = len(seeds)
    params = [torch.nn.Parameter(ref_logp[j * S:(j + 1) * S].clone()) for j in range(L)]
    opt = torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)])
    gen = torch.Generator().manual_seed(1000 * seeds[0] + len(seeds))
    anchor_logp = ref_logp
    curve, steps_at = [], []
    for step in range(steps + 1):
        logits = torch.cat(params)
        if step % record_every == 0 or step == steps:
            logq = torch.log_softmax(logits.detach(), -1)
            curve.append(kl_rows(target, logq).mean(-1).numpy())
            steps_at.append(step)
        if step == steps:
            break
        if anchor == "old" and (step % int(old_every) == 0):
            anchor_logp = torch.log_softmax(logits.detach(), -1)  # pi_old: the rollout policy of this iteration
        idx = _sample(mu, logits, ref_logp, k, gen)
        loss = _loss(arm, logits, anchor_logp if anchor == "old" else ref_logp, ref_logp, rewards, idx, beta, k)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"steps": steps_at, "kl": np.stack(curve, 1)}  # (runs, points)


def run_gvpo(cfg: Any, ctx: RunContext) -> Measurement:
    beta, k, steps = float(cfg.beta), int(cfg.group_size), int(cfg.steps)
    lrs = [float(x) for x in cfg.lrs]
    every = max(1, steps // 60)
    runs: list[dict[str, Any]] = []
    best: dict[str, dict[str, Any]] = {}
    curves: dict[str, list] = {}
    jobs = [(arm, mu) for arm in cfg.arms for mu in cfg.mus]
    for i, (arm, mu) in enumerate(jobs, 1):
        out = train(stacked(cfg, ctx.seeds), arm, mu, lrs, ctx.seeds, steps=steps, beta=beta, k=k,
                    record_every=every)
        kl = out["kl"].reshape(len(lrs), len(ctx.seeds), -1)  # (lrs, seeds, points)
        finals = {f"{lr:g}": kl[j, :, -1].tolist() for j, lr in enumerate(lrs)}
        j = int(np.argmin(kl[:, :, -1].mean(1)))
        best.setdefault(arm, {})[mu] = {"lr": lrs[j], "kl": float(kl[j, :, -1].mean()),
                                        "kl_sd": float(kl[j, :, -1].std(ddof=1)) if len(ctx.seeds) > 1 else 0.0,
                                        "kl_max": float(kl[j, :, -1].max())}
        curves[f"{arm} {mu} lr={lrs[j]:g}"] = [list(zip(out["steps"], row.tolist(), strict=True)) for row in kl[j]]
        runs.append({"arm": arm, "mu": mu, "final_kl_by_lr": finals})
        ctx.say(f"[{ctx.label(i, len(jobs), f'{arm} mu={mu}')}] best lr {lrs[j]:g}: KL(pi*||pi) "
                f"{best[arm][mu]['kl']:.3g} over {len(ctx.seeds)} seeds")
    old = _anchor_old(cfg, ctx, beta, k)
    bandits = stacked(cfg, ctx.seeds)
    start = kl_rows(bandits.optimal_logits(beta), torch.log_softmax(bandits.ref_logits, -1)).mean(-1)
    summary = {"best": best, "beta": beta, "steps": steps, "seeds": len(ctx.seeds), "anchor_old": old["summary"],
               "kl_at_ref": float(start.mean())}  # KL(pi* || pi_ref): where every run starts
    plots = {"kl_curves": str(plot_curves(curves, ctx.path("b4_kl_curves.png"), logy=True,
                                          title=f"B4: KL(pi* || pi_theta), best lr per arm and mu, beta={beta:g}",
                                          xlabel="step", ylabel="KL(pi* || pi_theta)"))}
    plots["anchor_old"] = str(plot_curves(old["curves"], ctx.path("b4_anchor_old.png"), logy=True,
                                          title="B4: GVPO anchor=old (official form), on-policy",
                                          xlabel="step", ylabel="KL(pi* || pi_theta)"))
    return Measurement(arms={"runs": runs, "anchor_old": old["runs"]}, summary=summary, plots=plots)


def _anchor_old(cfg: Any, ctx: RunContext, beta: float, k: int) -> dict[str, Any]:
    """GVPO with the anchor refreshed to the rollout policy every ``old.every`` steps (on-policy sampling)."""
    o = cfg.anchor_old
    steps, lr = int(o.every) * int(o.iterations), float(o.lr)
    out = train(stacked(cfg, ctx.seeds), "gvpo", "on_policy", [lr], ctx.seeds, steps=steps, beta=beta, k=k,
                record_every=int(o.every), anchor="old", old_every=int(o.every))
    kl = out["kl"]
    ctx.say(f"[{ctx.claim_id} anchor=old] KL(pi*||pi) after each of {o.iterations} outer iterations: "
            + ", ".join(f"{v:.3g}" for v in kl.mean(0)))
    return {"runs": {"steps": out["steps"], "kl": kl.tolist()},
            "curves": {f"gvpo anchor=old lr={lr:g}": [list(zip(out["steps"], r.tolist(), strict=True)) for r in kl]},
            "summary": {"kl_by_iteration": kl.mean(0).tolist(), "lr": lr, "every": int(o.every)}}
