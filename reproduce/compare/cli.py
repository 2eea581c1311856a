"""The ``reproduce compare`` command: resolve the matrix, run it, print where the leaderboard is."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def compare(args: argparse.Namespace) -> int:
    from reproduce.compare.runner import load_compare_preset, run_compare, select
    from reproduce.compare.zoo import NOT_APPLICABLE, ZOO, user_entry
    from reproduce.run import default_preset

    preset = args.preset
    if preset is None:
        preset, why = default_preset()
        print(f"preset: {preset} (default: {why}; choose with --preset)", file=sys.stderr)
    cfg = load_compare_preset(preset, args.overrides)
    if len(args.hparams) > len(args.optimizer):
        raise ConfigError("--hparams without a matching --optimizer (give them in pairs, in order)")
    users = [user_entry(t, args.hparams[i] if i < len(args.hparams) else None) for i, t in enumerate(args.optimizer)]
    if args.list:
        print("optimizers:")
        for e in ZOO.values():
            print(f"  {e.name:13s} {e.label}  [{e.target}; lr family {e.family}]")
        for name, why in NOT_APPLICABLE.items():
            print(f"  ({name}: not compared: {why})")
        print(f"workloads ({preset}):")
        for name, w in cfg.workloads.items():
            print(f"  {name:14s} {w.kind}, {w.steps} steps")
        return 0
    names = args.optimizers or ([] if users and args.optimizers is not None else list(cfg.optimizers))
    entries = [ZOO[n] for n in select(names, list(ZOO), "optimizer(s)")] + users
    taken = [e.name for e in entries]
    if len(set(taken)) != len(taken):
        raise ConfigError(f"an optimizer is listed twice: {', '.join(taken)}")
    workloads = select(args.workloads or list(cfg.get("default_workloads") or cfg.workloads),
                       list(cfg.workloads), "workload(s)")
    name = Path(preset).stem
    out = Path(args.out) if args.out else REPO / "results" / "compare" / name
    if args.resume and not out.is_dir():
        raise ConfigError(f"--resume: {out} does not exist (nothing to continue; drop --resume to start)")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    run_compare(cfg, name, entries, workloads, out, resume=args.resume, jobs=args.jobs)
    print((out / "leaderboard.md").read_text())
    print(f"wrote {out}/leaderboard.md, leaderboard.json, profile.png and one record per cell under {out}/<workload>/")
    return 0
