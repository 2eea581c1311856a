"""Claim B2: Adam LMCDQN beats epsilon-greedy DQN on the longer N-chain (N=50; N=25 reported).

On the tuning-and-evidence protocol. Each arm tunes its lr (a x2 log grid, bracketing with at most two
extensions per edge) together with its own exploration knob, which takes three fixed values (aSGLD's
``noise_scale`` for LMC, the final epsilon for DQN): every knob value gets its own lr tuning and the rows are
compared by the mean over the tuning seeds; tied rows go to the middle knob value, never to the first in grid
order (:func:`common.results.protocol.tune_arm_with_knob`). The chosen configuration then runs on the eval seeds
and the arms are compared by a paired t-test over eval seeds.

Metric: regret = the optimal return (10) minus the greedy evaluation return averaged over the last ``eval_last``
evaluations (the environment is deterministic, so one episode per evaluation); lower is better. Every config runs
all seeds of a phase at once (one batched Q-network, :class:`papers.rl_variance.dqn.DQNAgent`): the tuning seeds
together, the eval seeds together, the same batches for both arms, so the arms are paired seed by seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves, plot_lr_sweep
from common.results.protocol import Protocol, evaluate_arm, tune_arm_with_knob
from common.results.sweep import SweepResult, arm_summary
from papers.rl_variance.dqn import fit_dqn
from papers.rl_variance.envs.nchain import NChain
from papers.rl_variance.verdicts import NChainArm, NChainSummary, SmallChain, SmallChainArm


def arm_config(cfg: Any, arm: str, lr: float, knob: float, n: int) -> Any:
    """The agent config of ``arm`` at (lr, knob value) on the chain of length ``n``."""
    a = cfg.arms[arm]
    c = OmegaConf.merge(cfg.agent, {k: v for k, v in a.items() if k not in ("grid", "optimizer", "lrs")})
    c.optimizer = OmegaConf.merge(a.optimizer, {"lr": float(lr)})
    if a.grid.key == "noise_scale":
        c.optimizer.noise_scale = float(knob)
    else:
        c[str(a.grid.key)] = float(knob)
    c.n = int(n)
    return c


def _returns(agent: Any, last: int) -> list[float]:
    evals = np.array([v for _, v in agent.eval_curve[-last:]])  # (last, seeds)
    return evals.mean(0).tolist()


class _Batched:
    """Runs one (arm, lr, knob) config on a whole seed set at once (cached per config for ``--resume``) and
    answers the protocol's per-seed questions from it."""

    def __init__(self, cfg: Any, ctx: RunContext, n: int, steps: int) -> None:
        self.cfg, self.ctx, self.n, self.steps = cfg, ctx, n, steps
        self.optimal = NChain(n).optimal_return
        self.results: dict[tuple[str, float, float, tuple[int, ...]], dict[str, Any]] = {}
        self.count = 0

    def get(self, arm: str, lr: float, knob: float, seeds: Sequence[int], phase: str) -> dict[str, Any]:
        key = (arm, float(lr), float(knob), tuple(seeds))
        if key not in self.results:
            self.count += 1
            kname = str(self.cfg.arms[arm].grid.key)
            label = (f"{self.ctx.claim_id} config {self.count} ({phase}) {arm} lr={lr:g} {kname}={knob:g} "
                     f"N={self.n} seeds {list(seeds)}")

            def run() -> dict[str, Any]:
                agent = fit_dqn(arm_config(self.cfg, arm, lr, knob, self.n), list(seeds), self.steps,
                                int(self.cfg.eval_every))
                ret = _returns(agent, int(self.cfg.eval_last))
                self.ctx.say(f"[{label}] return (last {self.cfg.eval_last} evals) "
                             + ", ".join(f"{r:.2f}" for r in ret))
                return {"returns": ret, "eval_curve": [[s, v] for s, v in agent.eval_curve]}

            res = self.ctx.cached(f"N{self.n}-{arm}-lr{lr:g}-{kname}{knob:g}-s{'_'.join(map(str, seeds))}", run,
                                  label)
            self.results[key] = {"arm": arm, "lr": float(lr), kname: float(knob), "knob": float(knob),
                                 "seeds": list(seeds), "phase": phase, "n": self.n, **res}
        return self.results[key]

    def regret(self, arm: str, lr: float, knob: float, seeds: Sequence[int], seed: int, phase: str) -> float:
        r = self.get(arm, lr, knob, seeds, phase)
        return self.optimal - r["returns"][list(seeds).index(seed)]


def run_nchain(cfg: Any, ctx: RunContext) -> Measurement:
    N, steps = int(cfg.n), int(cfg.env_steps)
    big = _Batched(cfg, ctx, N, steps)
    protocol = Protocol(list(ctx.tuning_seeds), list(ctx.seeds), "regret (optimal minus greedy return)")
    knobs: dict[str, float | None] = {}
    for arm in cfg.arms:
        a = cfg.arms[arm]
        t = tune_arm_with_knob(
            arm, [float(x) for x in a.get("lrs", cfg.lrs)], str(a.grid.key), [float(x) for x in a.grid["values"]],
            ctx.tuning_seeds,
            lambda lr, k, s, arm=arm: big.regret(arm, lr, k, ctx.tuning_seeds, s, "tune"),
            max_extensions=int(cfg.get("max_extensions", 2)))
        protocol.arms[arm] = t
        knobs[arm] = t.knob_choice["chosen"] if t.knob_choice else None
        ctx.say(f"[{ctx.claim_id}] {arm}: lr {t.chosen} with {a.grid.key}={knobs[arm]} chosen "
                f"({'bracketed' if t.bracketed else 'NOT bracketed'}; extensions {t.extensions}; tied rows "
                f"{t.knob_choice['tied'] if t.knob_choice else []})")
    for arm in cfg.arms:
        t, k = protocol.arms[arm], knobs[arm]
        protocol.evals[arm] = evaluate_arm(
            arm, t.chosen, ctx.seeds,
            lambda lr, s, arm=arm, k=k: big.regret(arm, lr, k, ctx.seeds, s, "eval"))  # type: ignore[arg-type]
    runs = list(big.results.values())
    sweep = SweepResult(runs, protocol)
    arms: dict[str, NChainArm] = {}
    for arm in cfg.arms:
        s = arm_summary(sweep, arm)
        arms[arm] = NChainArm.extending(
            s, knob=str(cfg.arms[arm].grid.key), knob_value=knobs[arm],
            knob_tied=protocol.arms[arm].knob_choice["tied"] if protocol.arms[arm].knob_choice else [],
            returns=[big.optimal - x if math.isfinite(x) else None for x in s.finals],
            return_mean=None if s.mean is None else big.optimal - s.mean)
    # The shorter chain, reported only (no verdict): each arm's chosen configuration on the eval seeds.
    small = cfg.small
    sm = _Batched(cfg, ctx, int(small.n), int(small.env_steps))
    small_arms: dict[str, SmallChainArm] = {}
    for arm in cfg.arms:
        lr = protocol.arms[arm].chosen
        if lr is None:
            continue
        r = sm.get(arm, lr, knobs[arm], ctx.seeds, "reported")  # type: ignore[arg-type]
        small_arms[arm] = SmallChainArm(lr=lr, knob_value=knobs[arm], returns=r["returns"],
                                        return_mean=float(np.mean(r["returns"])),
                                        return_sd=float(np.std(r["returns"], ddof=1))
                                        if len(r["returns"]) > 1 else 0.0)
        runs.append(r)
    summary = NChainSummary(tuning_seeds=list(ctx.tuning_seeds), eval_seeds=list(ctx.seeds), arms=arms, n=N,
                            env_steps=steps, optimal_return=big.optimal,
                            small=SmallChain(n=int(small.n), env_steps=int(small.env_steps), arms=small_arms))
    curves = {f"{arm} lr={summary.arms[arm].lr:g} {summary.arms[arm].knob}="
              f"{summary.arms[arm].knob_value:g}":
              [[[s, v[i]] for s, v in r["eval_curve"]] for i in range(len(ctx.seeds))]
              for arm in cfg.arms for r in runs
              if r["arm"] == arm and r["phase"] == "eval" and r["n"] == N}
    plots = {"returns": str(plot_curves(curves, ctx.path("b2_nchain_returns.png"),
                                        title=f"B2: N-chain N={N}, greedy eval return (chosen config, eval seeds)",
                                        xlabel="env step", ylabel="return"))}
    plots["lr_sweep"] = str(plot_lr_sweep(
        {f"{arm} {summary.arms[arm].knob}={k}": {float(v): [sc] for v, sc in row["scores"].items()}
         for arm in cfg.arms if protocol.arms[arm].knob_choice
         for k, row in protocol.arms[arm].knob_choice["rows"].items()},
        ctx.path("b2_lr_sweep.png"), title=f"B2: regret vs lr per knob value (mean over tuning seeds), N={N}",
        ylabel="regret (10 - return)"))
    return Measurement(arms={"runs": runs}, summary=summary, plots=plots, protocol=protocol.to_record())
