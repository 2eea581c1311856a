"""What ``reproduce compare`` reports from its cell records: per workload a leaderboard against tuned AdamW, and
performance profiles across workloads (AlgoPerf's summary: the fraction of workloads on which an optimizer is
within a factor tau of the best).

Each cell's numbers are read from its record, never typed in:
- final val loss at T: mean +- SE over eval seeds (diverged seeds counted, k/n);
- versus AdamW: the paired difference over eval seeds (same seeds, same data order and initialisation) with its
  95% interval and one-sided p;
- steps to AdamW's target (its mean final loss at T): per seed, from the runs whose schedules end at 0.5 T,
  0.75 T and T, by interpolating loss against log steps; geometric mean with a t-interval, a bound when a seed
  never reaches it or when the shortest runs already do; the speedup is T over those steps;
- cost: the optimizer step over fused AdamW's in paired rounds, the training step over AdamW's in the runs, and
  optimizer state bytes per parameter.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.results.protocol import paired_test, ratio_estimate, steps_to_target

BASELINE = "adamw"
TAUS = (1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)


def _metrics(values: list[float | None]) -> list[float]:
    return [math.inf if v is None or not math.isfinite(v) else float(v) for v in values]


def steps_ratio(cell: Mapping[str, Any], target: float | None) -> dict[str, Any] | None:
    """Per-seed steps to ``target`` as a fraction of T, and their geometric mean (``ratio_estimate``)."""
    fr = {float(k): _metrics(v) for k, v in cell["summary"].get("fractions", {}).items()}
    if target is None or not fr:
        return None
    n = len(next(iter(fr.values())))
    per_seed = [steps_to_target({g: v[i] for g, v in fr.items()}, target) for i in range(n)]
    out = ratio_estimate(per_seed)
    shortest = min(fr)
    out["shortest"] = shortest
    out["upper_bound"] = bool(shortest < 1 and all(s == shortest for s in per_seed))
    out["median"] = statistics.median(per_seed)
    return out


def workload_rows(cells: Mapping[str, Mapping[str, Any]]) -> tuple[float | None, list[dict[str, Any]]]:
    """(target, one row per optimizer) for one workload, best final loss first."""
    base = cells.get(BASELINE)
    target = base["summary"]["mean"] if base else None
    base_finals = _metrics(base["summary"]["finals"]) if base else None
    base_run_ms = base["summary"].get("run_step_ms") if base else None
    rows = []
    for name, cell in cells.items():
        s = cell["summary"]
        finals = _metrics(s["finals"])
        row: dict[str, Any] = {
            "optimizer": name, "label": cell["optimizer"]["label"], "lr": s["lr"], "bracketed": s["bracketed"],
            "unbracketed_edge": s.get("unbracketed_edge"), "grid": list(cell["grid"]),
            "extensions": s.get("extensions"), "mean": s["mean"], "se": s["se"], "diverged": s["diverged"],
            "n": s["n"], "finals": finals, "state_bytes_per_param": s.get("state_bytes_per_param"),
            "opt_step": s.get("opt_step") or {}, "wall_s": cell.get("wall_s")}
        if base_finals is not None and name != BASELINE:
            row["vs_adamw"] = paired_test(finals, base_finals).to_record()
        row["steps"] = None if name == BASELINE else steps_ratio(cell, target)
        row["run_step_ratio"] = (s["run_step_ms"] / base_run_ms
                                 if s.get("run_step_ms") and base_run_ms else None)
        rows.append(row)
    rows.sort(key=lambda r: (r["mean"] is None, r["mean"] if r["mean"] is not None else 0.0))
    return target, rows


def speedup(row: Mapping[str, Any]) -> float | None:
    """T over the steps to AdamW's target (1 for AdamW; None when it was never reached on the median seed)."""
    if row["optimizer"] == BASELINE:
        return 1.0
    st = row.get("steps")
    if not st or not math.isfinite(st.get("median", math.inf)):
        return None
    return 1.0 / st["median"]


def profiles(boards: Mapping[str, list[dict[str, Any]]], skipped: Mapping[str, Mapping[str, str]]
             ) -> dict[str, dict[str, Any]]:
    """Per optimizer: on each workload it ran, its steps to AdamW's target (median seed, as a fraction of T; inf
    when not reached) over the best optimizer's; rho(tau) = share of those workloads with ratio <= tau."""
    ratios: dict[str, dict[str, float]] = {}
    for w, rows in boards.items():
        score = {r["optimizer"]: (1.0 if r["optimizer"] == BASELINE else
                                  (r["steps"] or {}).get("median", math.inf)) for r in rows}
        best = min(score.values())
        for name, sc in score.items():
            ratios.setdefault(name, {})[w] = sc / best if math.isfinite(sc) else math.inf
    out = {}
    for name, per_w in ratios.items():
        n = len(per_w)
        out[name] = {"ratios": per_w, "workloads": n,
                     "not_applicable": sorted(w for w, why in skipped.items() if name in why),
                     "rho": {f"{t:g}": sum(r <= t for r in per_w.values()) / n for t in TAUS}}
    return out


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _steps_text(row: Mapping[str, Any]) -> str:
    if row["optimizer"] == BASELINE:
        return "1 (sets the target)"
    st = row.get("steps")
    if not st:
        return "n/a"
    if st.get("geo_mean") is None:
        return "not reached"
    if st.get("upper_bound"):
        return f"<= {st['shortest']:g} (every seed)"
    lo, hi = st["ci95"]
    tail = f", {st['never_reached']}/{len(st['per_seed'])} seeds never" if st["never_reached"] else ""
    return f"{st['geo_mean']:.2f} [{lo:.2f}, {hi:.2f}]{tail}"


def _vs_text(row: Mapping[str, Any]) -> str:
    v = row.get("vs_adamw")
    if not v:
        return "-"
    ci = "" if v["ci95"] is None else f" [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}]"
    return f"{_f(v['diff'], 3) if v['diff'] is not None else 'n/a'}{ci}"


def workload_markdown(name: str, section: Mapping[str, Any], target: float | None, rows: list[dict[str, Any]],
                      skipped: Mapping[str, str]) -> str:
    lines = [f"### {name}", "", _describe(section), "",
             f"Target (tuned AdamW's mean final val loss at T = {section['steps']}): **{_f(target, 4)}**", "",
             "| optimizer | lr (bracketed?) | final val loss +- SE | - AdamW [95% CI] | steps to target / T "
             "[95% CI] | speedup | opt step x fused AdamW | state B/param |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        br = "yes" if r["bracketed"] else f"**no** ({r['unbracketed_edge']} edge)"
        if r["lr"] is None:
            loss = "every tuning point diverged (no eval runs)"
        else:
            loss = "diverged" if r["mean"] is None else f"{r['mean']:.4f} +- {_f(r['se'], 4)}"
            if r["diverged"]:
                loss += f" ({r['diverged']}/{r['n']} diverged)"
        sp = speedup(r)
        bound = ">= " if (r.get("steps") or {}).get("upper_bound") else ""
        op = r["opt_step"]
        lines.append(f"| {r['optimizer']} | {_f(r['lr'], 4) if r['lr'] else 'none'} ({br}) | {loss} | {_vs_text(r)} "
                     f"| {_steps_text(r)} | {'n/a' if sp is None else f'{bound}{sp:.2f}x'} | "
                     f"{_f(op.get('ratio'), 2) if 'ratio' in op else op.get('error', 'n/a')} | "
                     f"{_f(r['state_bytes_per_param'], 1)} |")
    for opt, why in sorted(skipped.items()):
        lines.append(f"| {opt} | not run: {why} | | | | | | |")
    return "\n".join(lines)


def summary_line(workload: str, rows: list[dict[str, Any]]) -> str:
    """Which optimizers beat tuned AdamW on ``workload`` (paired 95% interval of the difference below 0), which
    lost to it (above 0), and the rest."""
    def ci(r: Mapping[str, Any]) -> list[float] | None:
        return (r.get("vs_adamw") or {}).get("ci95")

    better = [r["optimizer"] for r in rows if ci(r) and ci(r)[1] < 0]
    worse = [r["optimizer"] for r in rows if ci(r) and ci(r)[0] > 0]
    failed = [r["optimizer"] for r in rows if r["optimizer"] != BASELINE and r["mean"] is None]
    tied = [r["optimizer"] for r in rows
            if r["optimizer"] not in (*better, *worse, *failed, BASELINE)]
    best = next((r for r in rows if r["mean"] is not None), None)
    parts = [f"**{workload}**: lowest final loss {best['optimizer'] if best else 'none'}"]
    parts.append(f"below AdamW (95% CI): {', '.join(better) or 'none'}")
    parts.append(f"above AdamW: {', '.join(worse) or 'none'}")
    parts.append(f"not distinguishable from AdamW: {', '.join(tied) or 'none'}")
    if failed:
        parts.append(f"diverged at every lr: {', '.join(failed)}")
    unb = [r["optimizer"] for r in rows if not r["bracketed"]]
    if unb:
        parts.append(f"not bracketed: {', '.join(unb)}")
    return "; ".join(parts) + "."


def _describe(section: Mapping[str, Any]) -> str:
    m, d = section["model"], section["data"]
    if section["kind"] == "lm":
        quant = m.get("quant")
        q = f", fake {quant.get('mode', 'int')}-{quant.get('bits', '')} W/A on the projections" if quant else ""
        what = (f"{m.get('kind', 'gpt')} d={m.get('d_model')} x {m.get('n_layer')} layers{q}, on "
                f"{d.get('corpus', 'python-stdlib')} ({d.get('level', 'byte')}), batch {section['batch_size']} x "
                f"{m['block_size']} tokens")
    else:
        what = (f"{m['kind']} on {d['dataset']} ({d.get('subset') or 'all'} training images, {d.get('val_size')} "
                f"held out), batch {section['batch_size']}")
    return (f"{what}; {section['steps']} steps, warmup {section['warmup_frac']:g} then cosine to "
            f"{section['min_lr_ratio']:g}x; lr grids {dict(section['lrs'])}")


def leaderboard_markdown(boards: Mapping[str, tuple[float | None, list[dict[str, Any]]]], prof: Mapping[str, Any],
                         meta: Mapping[str, Any], plot_name: str | None) -> str:
    opts = meta["optimizers"]
    wall = sum(r["wall_s"] or 0 for _, rows in boards.values() for r in rows)
    few = meta["seeds"] < 3 or meta["tuning_seeds"] < 2
    lines = [
        f"# Optimizer comparison: preset `{meta['preset']}`", "",
        *(["**Fewer seeds than the protocol asks (3 eval, 2 tuning): these numbers test the machinery only.**", ""]
          if few else []),
        "Every optimizer below was tuned the same way, on the same workloads, by the repo's protocol:",
        "",
        f"- **Tuned:** the learning rate only, on {meta['tuning_seeds']} tuning seeds "
        f"{meta.get('tuning_seed_list', '')}, over the "
        "workload's grid for the optimizer's lr family; the score is the mean final val loss; points within "
        "2 SE of the paired difference (or 0.1%) of the best tie, and the tied point nearest the grid's centre "
        f"wins; an optimum at a grid edge extends the grid by one step, at most {meta['max_extensions']} times per "
        "edge. A cell whose tuning still ended at an edge says **no** under 'bracketed': its lr may be off.",
        f"- **Measured:** the chosen lr on {meta['seeds']} eval seeds {meta.get('eval_seed_list', '')}, never used "
        "to choose; diverged "
        "seeds are counted, never dropped.",
        "- **Target:** tuned AdamW's mean final val loss at T on each workload. Steps to it come from runs whose "
        f"schedules end at {', '.join(f'{f:g}' for f in meta['fractions'])} x T and T (at the T-tuned lr), "
        "interpolated per seed in log steps; 'speedup' is T over the median seed's steps.",
        "- **Fixed:** every other hyperparameter at its paper's default (below; arguments not listed keep the "
        "class's defaults, e.g. MARS's lr_1d = 3e-3 for 1-D tensors), weight decay off for all, the same schedule "
        "(warmup, cosine) for all.",
        "- **Cost:** 'opt step' is the optimizer's step over torch's fused AdamW on the workload's parameter "
        "shapes, paired interleaved rounds on one thread (as `reproduce bench`). These models have 0.1-0.2M "
        "parameters, where fused AdamW steps in about 0.15 ms: the ratio measures per-step overhead (Python, "
        "kernel launches, SOAP's and Shampoo's eigendecompositions) more than arithmetic; `reproduce bench` times "
        "3.3M- and 124M-parameter shapes. State is optimizer bytes per parameter. The median training step of the "
        "eval runs over AdamW's (forward, backward and extra passes such as SophiaG's Hessian estimate) is in "
        "leaderboard.json as `run_step_ratio`; it is not paired, so a machine whose load changes during the run "
        "(see each record's provenance) makes it unreliable, and the table leaves it out.",
        "- **Scale:** these are tiny models trained for a few hundred steps on 2 CPU cores. Rankings at this scale "
        "need not transfer to large models: the Marin optimizer study (arXiv:2509.02046) found that claimed "
        "1.4-2x speedups shrink to at most 1.4x at 0.1B parameters once AdamW is tuned as hard, and less beyond.",
        "", f"Cells: {sum(len(rows) for _, rows in boards.values())}; summed run time {wall / 60:.1f} min "
        "(the cells' own wall clocks; see each record's provenance for the machine and its load).", ""]
    lines += ["## Summary (computed from the rows below)", ""]
    for w, (_, rows) in boards.items():
        lines.append(f"- {summary_line(w, rows)}")
    lines += ["", "## Performance profile", "",
              "rho(tau): the share of workloads (where the optimizer ran) on which its steps to AdamW's target are "
              "within tau x the best optimizer's; 'not reached' counts as never within.", ""]
    if plot_name:
        lines += [f"![performance profiles]({plot_name})", ""]
    taus = list(next(iter(prof.values()))["rho"]) if prof else []
    lines += ["| optimizer | " + " | ".join(f"tau={t}" for t in taus) + " | workloads |",
              "|---|" + "---|" * (len(taus) + 1)]
    for name, p in sorted(prof.items(), key=lambda kv: -sum(kv[1]["rho"].values())):
        na = f" (not run on {', '.join(p['not_applicable'])})" if p["not_applicable"] else ""
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in p["rho"].values())
                     + f" | {p['workloads']}{na} |")
    lines += ["", "## Leaderboards", ""]
    for w, (target, rows) in boards.items():
        lines += [workload_markdown(w, meta["workloads"][w], target, rows, meta["skipped"].get(w, {})), ""]
        unb = [r["optimizer"] for r in rows if not r["bracketed"]]
        if unb:
            lines += [f"Not bracketed on {w}: {', '.join(unb)} (the best lr lies at or past the grid's edge after "
                      "the allowed extensions; their numbers are a lower bound on what tuning could give).", ""]
    lines += ["## Optimizers and their fixed hyperparameters", "", "| name | what | import | fixed |",
              "|---|---|---|---|"]
    for name, d in opts.items():
        kw = ", ".join(f"{k}={v}" for k, v in d["kwargs"].items())
        lines.append(f"| {name} | {d['label']} | `{d['target']}` | {kw} |")
    not_app = meta.get("not_applicable") or {}
    if not_app:
        lines += ["", "Methods of this repo not in the comparison: "
                  + "; ".join(f"{k}: {v}" for k, v in not_app.items()) + "."]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, cells: Mapping[str, Mapping[str, Mapping[str, Any]]], meta: Mapping[str, Any],
                  page: Path | None = None) -> dict[str, Path]:
    """``leaderboard.json``, ``leaderboard.md`` and ``profile.png`` in ``out`` (and the markdown at ``page``)."""
    from common.results.plots import plot_performance_profile
    from common.results.record import json_safe

    # one order whichever path wrote them (a run in preset order, parallel cells as they finish, a rebuild from disk)
    cells = {w: dict(sorted(cells[w].items(), key=lambda kv: (kv[0] != BASELINE, kv[0]))) for w in sorted(cells)}
    boards = {w: workload_rows(c) for w, c in cells.items()}
    prof = profiles({w: rows for w, (_, rows) in boards.items()}, meta.get("skipped", {}))
    out.mkdir(parents=True, exist_ok=True)
    plot = plot_performance_profile({n: p["ratios"] for n, p in prof.items()}, out / "profile.png",
                                    title=f"performance profiles ({meta['preset']}): steps to AdamW's target")
    md = leaderboard_markdown(boards, prof, meta, plot.name)
    paths = {"json": out / "leaderboard.json", "md": out / "leaderboard.md", "plot": plot}
    paths["json"].write_text(json.dumps(json_safe({"meta": dict(meta), "profiles": prof,
                                                   "workloads": {w: {"target": t, "rows": rows}
                                                                 for w, (t, rows) in boards.items()}}),
                                        indent=1) + "\n")
    paths["md"].write_text(md)
    if page is not None:
        rel = Path(out).resolve().relative_to(page.resolve().parent) if out.resolve().is_relative_to(
            page.resolve().parent) else out
        page.write_text(md.replace(f"]({plot.name})", f"]({rel.as_posix()}/{plot.name})"))
        paths["page"] = page
    return paths
