"""``reproduce compare``: every chosen optimizer on every chosen workload, each cell through the protocol.

Per (optimizer, workload) cell: the lr is tuned on the tuning seeds over the workload's grid for the optimizer's
lr family, with bracketing (ties go to the grid's centre; at most ``max_extensions`` points past an edge), the
choice runs on the eval seeds to T, then on the eval seeds with schedules that end at each of ``fractions`` x T
(never the middle of a longer run), for the steps-to-target estimate. The optimizer's step is timed against
torch's fused AdamW on the workload's own parameter shapes in interleaved rounds, as ``reproduce bench`` does.
Each finished cell is one JSON record; ``--resume`` reuses finished cells and runs.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from common.compare.workloads import build_model, check_workload, train_run
from common.config import apply_overrides, load_yaml, to_plain
from common.errors import ConfigError
from common.lit.lm_sweep import final_val_loss
from common.results.context import RunContext
from common.results.record import IncompleteRecordError, load_record, provenance, write_record
from common.results.sweep import arm_summary, protocol_sweep, run_at
from reproduce.compare.zoo import NOT_APPLICABLE, ZOO, ZooEntry
from reproduce.run import TUNING_SEED_BASE

CONFIGS = Path(__file__).resolve().parent / "configs"
BASELINE = "adamw"


def presets() -> list[str]:
    return sorted(p.stem for p in CONFIGS.glob("*.yaml"))


def load_compare_preset(preset: str, overrides: Sequence[str] = ()) -> DictConfig:
    """A compare preset (name or YAML file) with ``key=value`` overrides, checked before anything runs."""
    path = Path(preset) if preset.endswith((".yaml", ".yml")) else CONFIGS / f"{preset}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown compare preset {preset!r}; valid: {', '.join(presets())} or a .yaml file")
    cfg = apply_overrides(load_yaml(path), list(overrides))
    for key in ("seeds", "tuning_seeds", "max_extensions", "fractions", "optimizers", "workloads", "timing"):
        if key not in cfg:
            raise ConfigError(f"compare preset {path.name}: missing {key}")
    if int(cfg.seeds) < 2 or int(cfg.tuning_seeds) < 1:
        raise ConfigError("compare needs seeds >= 2 and tuning_seeds >= 1 (the protocol asks for 3 and 2)")
    if any(not 0 < float(f) < 1 for f in cfg.fractions):
        raise ConfigError(f"fractions must lie in (0, 1), got {[float(f) for f in cfg.fractions]}")
    for name, section in cfg.workloads.items():
        check_workload(str(name), section)
    return cfg


def select(names: Sequence[str], available: Sequence[str], what: str) -> list[str]:
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(f"unknown {what} {', '.join(unknown)}; valid: {', '.join(available)}")
    return list(names)


def _grid(entry: ZooEntry, section: Any, wname: str) -> list[float]:
    if entry.lrs is not None:
        return list(entry.lrs)
    if entry.family not in section.lrs:
        raise ConfigError(f"workload {wname} has no lr grid for family {entry.family!r} ({entry.name}); "
                          f"it has {', '.join(section.lrs)}")
    return [float(f"{float(x) * entry.lr_scale:.6g}") for x in section.lrs[entry.family]]


def cell_key(entry: ZooEntry, section: Any, grid: list[float], cfg: DictConfig) -> str:
    """Hash of everything that determines a cell's runs: a changed setting never reuses old runs."""
    blob = json.dumps([entry.describe(), to_plain(section), grid, int(cfg.seeds), int(cfg.tuning_seeds),
                       int(cfg.max_extensions), [float(f) for f in cfg.fractions], _trainer(cfg)],
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _trainer(cfg: DictConfig) -> dict[str, Any]:
    t = cfg.get("trainer")
    return to_plain(t) if t else {}


def run_cell(entry: ZooEntry, wname: str, section: Any, cfg: DictConfig, preset: str, out: Path, *,
             resume: bool, stream: Any = None) -> dict[str, Any]:
    """Tune, evaluate and time one cell; write and return its record (or reuse a finished one with --resume)."""
    grid = _grid(entry, section, wname)
    key = cell_key(entry, section, grid, cfg)
    path = out / wname / f"{entry.name}.json"
    if resume and path.is_file():
        try:
            rec = load_record(path)
            if rec.get("config_key") == key:
                print(f"[{wname}/{entry.name}] reusing the finished cell {path}", file=stream or sys.stderr)
                return rec
        except IncompleteRecordError:
            pass
    seeds = list(range(int(cfg.seeds)))
    tuning = list(range(TUNING_SEED_BASE, TUNING_SEED_BASE + int(cfg.tuning_seeds)))
    ctx = RunContext(out_dir=out / "work", preset=preset, seeds=seeds, trainer=_trainer(cfg),
                     stream=stream, claim_id=f"{wname}/{entry.name}", resume=resume, tuning_seeds=tuning,
                     runs_key=f"{wname}/{entry.name}-{key}")
    steps = int(section.steps)
    t0 = time.perf_counter()

    def run(arm: str, lr: float, seed: int, label: str, n_steps: int | None = None) -> dict[str, Any]:
        n = n_steps or steps
        return train_run(section, ctx, run_name=f"{wname}/{entry.name}/lr{lr:g}/T{n}/s{seed}", seed=seed,
                         label=label, optimizer=entry.factory(lr, section), steps=n, module=entry.module)

    sweep = protocol_sweep(ctx, [entry.name], {entry.name: grid}, run, final_val_loss, metric_name="val loss",
                           max_extensions=int(cfg.max_extensions))
    summary = arm_summary(sweep, entry.name).to_record()  # a cell record, read back as JSON by the leaderboard
    runs = list(sweep.runs)
    chosen = sweep.chosen(entry.name)
    fractions: dict[str, list[float]] = {"1": list(summary["finals"])}
    if chosen is not None and entry.name != BASELINE:  # the baseline sets the target at T: its ratio is 1
        for f in sorted(float(x) for x in cfg.fractions):
            n = max(1, round(f * steps))
            ev, rr = run_at(ctx, entry.name, chosen, seeds,
                            lambda a, x, s, lb, n=n: run(a, x, s, lb, n_steps=n), final_val_loss,
                            phase=f"eval at {f:g}T", key_prefix=f"f{f:g}-")
            fractions[f"{f:g}"] = list(ev.metrics)
            runs += rr
    evals = sweep.eval_runs(entry.name)
    summary["fractions"] = dict(sorted(fractions.items(), key=lambda kv: float(kv[0])))
    summary["run_step_ms"] = _median([r.get("step_time_ms") for r in evals])
    summary["state_bytes_per_param"] = next((r.get("state_bytes_per_param") for r in evals
                                             if r.get("state_bytes_per_param") is not None), None)
    summary["opt_step"] = step_time(entry, section, chosen or grid[len(grid) // 2], cfg.timing)
    record = {
        "kind": "compare cell", "preset": preset, "workload": wname, "optimizer": entry.describe(),
        "config_key": key, "workload_config": to_plain(section), "grid": grid,
        "fixed": {"tuned": "lr only", "max_extensions": int(cfg.max_extensions),
                  "fractions": [float(f) for f in cfg.fractions]},
        "protocol": sweep.protocol.to_record(), "summary": summary,
        "runs": runs,
        "wall_s": time.perf_counter() - t0, "provenance": provenance(),
    }
    write_record(path, record)
    return load_record(path)


def _median(xs: list[Any]) -> float | None:
    ok = [float(x) for x in xs if x is not None]
    return statistics.median(ok) if ok else None


def step_time(entry: ZooEntry, section: Any, lr: float, timing: Any) -> dict[str, Any]:
    """The optimizer's step and torch's fused AdamW's on the workload's parameter shapes (random fixed grads),
    timed in interleaved rounds on one thread; the ratio is of the medians from the same rounds."""
    import torch

    from common.bench.timing import failure_line, state_bytes, time_interleaved
    from reproduce.bench import params_with_grads
    from reproduce.bench_candidates import yardstick

    device = torch.device("cpu")
    shapes = [tuple(p.shape) for p in build_model(section).parameters()]
    name, make_yard = yardstick(device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        opt = entry.factory(lr, section)(params_with_grads(shapes, device))
        yard = make_yard(params_with_grads(shapes, device))
        times = time_interleaved([opt.step, yard.step], device, warmup=int(timing.warmup), steps=int(timing.steps),
                                 rounds=int(timing.rounds))
    except Exception as err:  # reported in the cell, never fatal to the comparison
        return {"error": failure_line(err)}
    finally:
        torch.set_num_threads(threads)
    mine, base = times
    if isinstance(mine, str) or isinstance(base, str):
        return {"error": mine if isinstance(mine, str) else base}
    n = sum(int(torch.Size(s).numel()) for s in shapes)
    return {"median_ms": mine.median_ms, "yardstick": name, "yardstick_ms": base.median_ms,
            "ratio": mine.median_ms / base.median_ms, "state_bytes_per_param": state_bytes(opt) / n,
            "params": n, "tensors": len(shapes), "threads": 1, "steps": int(timing.steps),
            "rounds": int(timing.rounds)}


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def run_compare(cfg: DictConfig, preset: str, optimizers: Sequence[ZooEntry], workloads: Sequence[str], out: Path,
                *, resume: bool = False, stream: Any = None, jobs: int = 1) -> dict[str, dict[str, dict[str, Any]]]:
    """Every applicable cell, the baseline's first in each workload; returns {workload: {optimizer: record}} and
    writes the leaderboard, the performance profile and the page beside the records. ``jobs`` > 1 runs that many
    cells at once in worker processes of one torch thread each (cells are independent: the target is applied only
    when the leaderboard is written), with the same results as one process."""
    from common.compare.leaderboard import write_outputs

    def say(message: str) -> None:
        print(message, file=stream or sys.stderr, flush=True)

    entries = list(optimizers)
    if BASELINE not in [e.name for e in entries]:
        entries.insert(0, ZOO[BASELINE])
        say(f"adding {BASELINE}: every workload's target is tuned AdamW's mean final val loss")
    entries.sort(key=lambda e: e.name != BASELINE)
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    skipped: dict[str, dict[str, str]] = {}
    plan = [(w, e) for w in workloads for e in entries if e.applies(cfg.workloads[w]) is None]
    for w in workloads:
        for e in entries:
            why = e.applies(cfg.workloads[w])
            if why:
                skipped.setdefault(w, {})[e.name] = why
    t0 = time.perf_counter()
    if jobs <= 1:
        for i, (w, e) in enumerate(plan, 1):
            say(f"[compare {preset}] cell {i}/{len(plan)}: {e.name} on {w} ({time.perf_counter() - t0:.0f} s so far)")
            cells.setdefault(w, {})[e.name] = run_cell(e, w, cfg.workloads[w], cfg, preset, out, resume=resume,
                                                       stream=stream)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_one_thread) as pool:
            futures = {pool.submit(run_cell, e, w, cfg.workloads[w], cfg, preset, out, resume=resume): (w, e)
                       for w, e in plan}
            for i, fut in enumerate(as_completed(futures), 1):
                w, e = futures[fut]
                cells.setdefault(w, {})[e.name] = fut.result()
                say(f"[compare {preset}] finished cell {i}/{len(plan)}: {e.name} on {w} "
                    f"({time.perf_counter() - t0:.0f} s so far)")
    write_outputs(out, cells, cells_meta(cells, preset, skipped))
    return cells


def cells_meta(cells: dict[str, dict[str, dict[str, Any]]], preset: str,
               skipped: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """What the leaderboard says about how the cells were run, read from the cell records themselves."""
    recs = [r for by_opt in cells.values() for r in by_opt.values()]
    first = recs[0]
    return {"preset": preset, "seeds": len(first["protocol"]["eval_seeds"]),
            "tuning_seeds": len(first["protocol"]["tuning_seeds"]),
            "tuning_seed_list": first["protocol"]["tuning_seeds"], "eval_seed_list": first["protocol"]["eval_seeds"],
            "max_extensions": first["fixed"]["max_extensions"], "fractions": first["fixed"]["fractions"],
            "workloads": {w: next(iter(cells[w].values()))["workload_config"] for w in sorted(cells)},
            "optimizers": {r["optimizer"]["name"]: r["optimizer"]
                           for r in sorted(recs, key=lambda r: (r["optimizer"]["name"] != BASELINE,
                                                               r["optimizer"]["name"]))},
            "skipped": skipped or {},
            "not_applicable": dict(NOT_APPLICABLE), "wall_s": sum(r.get("wall_s") or 0.0 for r in recs)}


def load_cells(out: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every finished cell record under ``out`` ({workload: {optimizer: record}})."""
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(out.glob("*/*.json")):
        rec = load_record(path)
        if rec.get("kind") == "compare cell":
            cells.setdefault(rec["workload"], {})[rec["optimizer"]["name"]] = rec
    return cells


def rebuild(out: Path, page: Path | None = None) -> dict[str, Path]:
    """The leaderboard, profile and (optionally) a page such as COMPARE.md from the records in ``out``."""
    from common.compare.leaderboard import write_outputs

    cells = load_cells(out)
    if not cells:
        raise ConfigError(f"no compare cell records under {out}")
    preset = next(iter(next(iter(cells.values())).values()))["preset"]
    return write_outputs(out, cells, cells_meta(cells, preset), page=page)
