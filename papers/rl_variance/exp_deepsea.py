"""Claim B1: LMC-LSVI solves DeepSea(N) where epsilon-greedy LSVI does not.

Metrics per seed: the episode of the first success (reaching the bottom-right treasure; None when never) and the
fraction of episodes solved; plus the temperature sweep 1/beta at the small N on one seed (temperature changes
the outcome, so the sweep is part of every record). All seeds of a (N, method) run as one batched array
(:func:`papers.rl_variance.lsvi.run_lsvi`); a plain loop, as that module's docstring explains.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.results.context import RunContext
from common.results.paper import Measurement
from common.results.plots import plot_curves
from common.results.protocol import no_tuning
from papers.rl_variance.envs.deepsea import DeepSea
from papers.rl_variance.lsvi import run_lsvi
from papers.rl_variance.verdicts import DeepSeaSize, DeepSeaSummary, InvBetaRun, Solved, TemperatureSweep


def _first(success: np.ndarray) -> list[int | None]:
    return [int(np.argmax(row)) + 1 if row.any() else None for row in success]


def _cumulative(success: np.ndarray, points: int = 200) -> list[list[list[float]]]:
    E = success.shape[1]
    at = np.unique(np.linspace(1, E, min(points, E)).astype(int))
    cum = np.cumsum(success, 1)
    return [[[int(e), float(row[e - 1])] for e in at] for row in cum]


def run_deepsea(cfg: Any, ctx: RunContext) -> Measurement:
    seeds = ctx.seeds
    arms: dict[str, Any] = {}
    sizes: dict[str, dict[str, Any]] = {}  # "N20" -> n, episodes, J and each method's Solved
    curves: dict[str, dict[str, list]] = {}
    jobs = [(size, m) for size in cfg.sizes for m in ("lmc", "egreedy")]
    for i, (size_cfg, method) in enumerate(jobs, 1):
        N, episodes = int(size_cfg.n), int(size_cfg.episodes)
        rng = np.random.default_rng(10_007 * N + (0 if method == "lmc" else 1))
        res = run_lsvi(DeepSea(N, seeds), episodes, method=method, rng=rng, lam=float(cfg.lam), c=float(cfg.c),
                       inv_beta=float(cfg.inv_beta), langevin_steps_per_level=int(size_cfg.J),
                       epsilon=float(cfg.epsilon))
        first = _first(res.success)
        frac = res.success.mean(1).tolist()
        solved = sum(f is not None for f in first)
        key = f"N{N}"
        arms.setdefault(key, {})[method] = {"first_success": first, "fraction_solved": frac,
                                            "mean_return": res.returns.mean(1).tolist()}
        sizes.setdefault(key, {"n": N, "episodes": episodes, "J": int(size_cfg.J)})[method] = Solved(
            seeds_solved=solved, first_success=first, fraction_solved_mean=float(np.mean(frac)))
        curves.setdefault(key, {})[method] = _cumulative(res.success)
        ctx.say(f"[{ctx.label(i, len(jobs), f'N={N} {method}')}] {episodes} episodes: solved in {solved}/{len(seeds)}"
                f" seeds, first success {first}, fraction solved {np.mean(frac):.3f}")
    # Temperature sweep: one seed, every 1/beta as one copy of the same DeepSea.
    t = cfg.temperature
    temps = [float(x) for x in t.inv_betas]
    N = int(t.n)
    res = run_lsvi(DeepSea(N, [seeds[0]] * len(temps)), int(t.episodes), method="lmc",
                   rng=np.random.default_rng(7 + N), lam=float(cfg.lam), c=float(cfg.c), inv_beta=np.array(temps),
                   langevin_steps_per_level=int(t.J))
    sweep = {f"{b:g}": {"first_success": f, "fraction_solved": float(fr)}
             for b, f, fr in zip(temps, _first(res.success), res.success.mean(1), strict=True)}
    summary = DeepSeaSummary(
        sizes={key: DeepSeaSize(**v) for key, v in sizes.items()}, verdict_size=int(cfg.verdict_size),
        seeds=len(seeds), temperature=TemperatureSweep(n=N, seed=seeds[0], episodes=int(t.episodes),
                                                       by_inv_beta={b: InvBetaRun(**v) for b, v in sweep.items()}))
    ctx.say(f"[{ctx.claim_id} temperature N={N} seed {seeds[0]}] " + ", ".join(
        f"1/beta={k}: first {v['first_success']}, solved {v['fraction_solved']:.2f}" for k, v in sweep.items()))
    plots = {}
    for key, by_method in curves.items():
        plots[f"success_{key}"] = str(plot_curves(
            {("LMC-LSVI" if m == "lmc" else "eps-greedy LSVI"): c for m, c in by_method.items()},
            ctx.path(f"b1_success_{key}.png"), title=f"B1: DeepSea {key}, cumulative successes (band: min-max seeds)",
            xlabel="episode", ylabel="episodes solved so far"))
    why = ("both methods run at one fixed configuration (LMC: c, 1/beta and J as configured; epsilon-greedy: "
           "epsilon), nothing is chosen from these runs and there is no learning rate to tune; the claim is whether "
           "exploration succeeds at all, counted over the eval seeds. The 1/beta sweep is reported, not used to "
           "choose")
    return Measurement(arms={**arms, "temperature": sweep}, summary=summary, plots=plots, protocol=no_tuning(why))
