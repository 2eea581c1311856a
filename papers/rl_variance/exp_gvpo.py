"""Claim B4: GVPO's fixed point is pi* ~ pi_ref exp(R / beta) under on-policy, uniform and stale sampling,
where a GRPO-style loss's is not.

Contextual bandit (P prompts x K responses, R ~ U(0, 1), random pi_ref, tabular logits starting at pi_ref).
Each step draws one group of k responses per prompt from mu in {on-policy pi_theta, uniform, stale = pi_ref} and
takes an Adam step on the loss summed over runs. GVPO with ``anchor="ref"`` is compared with a GRPO-style loss
(std-normalised group advantage, beta k3-KL to pi_ref, no importance weights). Metric: mean over prompts of
KL(pi* || pi_theta) after the budget. On the tuning-and-evidence protocol: every (arm, mu) tunes its lr on the
tuning seeds (bracketing), then runs its choice on the eval seeds; GVPO and GRPO-style are compared per mu by a
paired test over eval seeds. Also reported: ``anchor="old"``
(the official code's form: the anchor is the rollout policy, refreshed every outer iteration), whose target
pi_old exp(R / beta) moves each iteration, away from pi*.

A plain loop, not Lightning: the policy is a table of logits (a tabular method) and every (lr, seed) run is one
slice of a single tensor (Adam is elementwise, so batching the runs leaves each trajectory unchanged). Each lr
runs on its own (one seed set per call), so a run does not depend on which other lrs were tried.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves
from common.results.protocol import Protocol, evaluate_arm, tune_arm
from common.results.sweep import SweepResult, arm_summary
from papers.rl_variance.aggregation import grpo_kl_loss, gvpo_loss
from papers.rl_variance.envs.bandit import Bandit, kl_rows
from papers.rl_variance.verdicts import AnchorOld, GVPOSummary

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


class _Runs:
    """One (arm, mu, lr) run over a whole seed set at once (cached for ``--resume``); per-seed final KL."""

    def __init__(self, cfg: Any, ctx: RunContext) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.beta, self.k, self.steps = float(cfg.beta), int(cfg.group_size), int(cfg.steps)
        self.every = max(1, self.steps // 60)
        self.results: dict[tuple[str, str, float, tuple[int, ...]], dict[str, Any]] = {}

    def get(self, arm: str, mu: str, lr: float, seeds: list[int], phase: str) -> dict[str, Any]:
        key = (arm, mu, float(lr), tuple(seeds))
        if key not in self.results:
            label = f"{self.ctx.claim_id} ({phase}) {arm} mu={mu} lr={lr:g} seeds {seeds}"

            def run() -> dict[str, Any]:
                out = train(stacked(self.cfg, seeds), arm, mu, [lr], seeds, steps=self.steps, beta=self.beta,
                            k=self.k, record_every=self.every)
                kl = out["kl"]  # (seeds, points)
                self.ctx.say(f"[{label}] final KL(pi*||pi) " + ", ".join(f"{v:.3g}" for v in kl[:, -1]))
                return {"steps": out["steps"], "kl_curve": kl.tolist(), "final_kl": kl[:, -1].tolist()}

            res = self.ctx.cached(f"{arm}-{mu}-lr{lr:g}-s{'_'.join(map(str, seeds))}", run, label)
            self.results[key] = {"arm": arm, "mu": mu, "lr": float(lr), "seeds": list(seeds), "phase": phase, **res}
        return self.results[key]

    def final(self, arm: str, mu: str, lr: float, seeds: list[int], seed: int, phase: str) -> float | None:
        v = self.get(arm, mu, lr, seeds, phase)["final_kl"][seeds.index(seed)]
        return float(v) if np.isfinite(v) else None


def run_gvpo(cfg: Any, ctx: RunContext) -> Measurement:
    beta, k = float(cfg.beta), int(cfg.group_size)
    lrs = [float(x) for x in cfg.lrs]
    runner = _Runs(cfg, ctx)
    protocol = Protocol(list(ctx.tuning_seeds), list(ctx.seeds), "KL(pi* || pi_theta)")
    names = [(arm, mu) for arm in cfg.arms for mu in cfg.mus]
    for arm, mu in names:
        t = tune_arm(f"{arm}/{mu}", lrs, ctx.tuning_seeds,
                     lambda lr, s, arm=arm, mu=mu: runner.final(arm, mu, lr, list(ctx.tuning_seeds), s, "tune"),
                     max_extensions=int(cfg.get("max_extensions", 2)))
        protocol.arms[t.arm] = t
        ctx.say(f"[{ctx.claim_id}] {arm} mu={mu}: lr {t.chosen} chosen over {t.grid} "
                f"({'bracketed' if t.bracketed else 'NOT bracketed'}; extensions {t.extensions})")
    for arm, mu in names:
        name = f"{arm}/{mu}"
        protocol.evals[name] = evaluate_arm(
            name, protocol.arms[name].chosen, ctx.seeds,
            lambda lr, s, arm=arm, mu=mu: runner.final(arm, mu, lr, list(ctx.seeds), s, "eval"))
    runs = list(runner.results.values())
    sweep = SweepResult(runs, protocol)
    curves: dict[str, list] = {}
    for arm, mu in names:
        lr = protocol.arms[f"{arm}/{mu}"].chosen
        r = next((x for x in runs if x["arm"] == arm and x["mu"] == mu and x["phase"] == "eval"), None)
        if r is not None:
            curves[f"{arm} {mu} lr={lr:g}"] = [list(zip(r["steps"], row, strict=True)) for row in r["kl_curve"]]
    old = _anchor_old(cfg, ctx, beta, k)
    bandits = stacked(cfg, ctx.seeds)
    start = kl_rows(bandits.optimal_logits(beta), torch.log_softmax(bandits.ref_logits, -1)).mean(-1)
    summary = GVPOSummary(arms={f"{arm}/{mu}": arm_summary(sweep, f"{arm}/{mu}") for arm, mu in names},
                          tuning_seeds=list(ctx.tuning_seeds), eval_seeds=list(ctx.seeds), beta=beta,
                          steps=int(cfg.steps), anchor_old=old["summary"],
                          kl_at_ref=float(start.mean()))  # KL(pi* || pi_ref): where every run starts
    plots = {"kl_curves": str(plot_curves(curves, ctx.path("b4_kl_curves.png"), logy=True,
                                          title=f"B4: KL(pi* || pi_theta), chosen lr per arm and mu, eval seeds, "
                                                f"beta={beta:g}",
                                          xlabel="step", ylabel="KL(pi* || pi_theta)"))}
    plots["anchor_old"] = str(plot_curves(old["curves"], ctx.path("b4_anchor_old.png"), logy=True,
                                          title="B4: GVPO anchor=old (official form), on-policy",
                                          xlabel="step", ylabel="KL(pi* || pi_theta)"))
    return Measurement(arms={"runs": runs, "anchor_old": old["runs"]}, summary=summary, plots=plots,
                       protocol=protocol.to_record())


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
            "summary": AnchorOld(kl_by_iteration=kl.mean(0).tolist(), lr=lr, every=int(o.every))}
