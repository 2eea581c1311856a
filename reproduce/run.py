"""Run a paper's claims at a preset: load config, run each claim, judge it, write its record."""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from omegaconf import DictConfig, OmegaConf

from common.config import apply_overrides, load_yaml, to_plain
from common.errors import ConfigError
from common.results.context import RunContext
from common.results.paper import Claim, Paper
from common.results.record import RECORD_VERSION, IncompleteRecordError, load_record, provenance, write_record
from common.results.summary import plain
from common.results.verdict import Verdict


@dataclass
class ClaimRun:
    claim: Claim
    record_path: Path
    verdict: Verdict
    headline: str
    wall_s: float


def default_preset() -> tuple[str, str]:
    import torch

    if torch.cuda.is_available():
        return "gpu", "a CUDA device is available"
    return "cpu", "no CUDA device found"


def trainer_arguments() -> list[str]:
    """What ``trainer.<name>=value`` may set: the Lightning Trainer's arguments (e.g. strategy, devices,
    precision), except those ``common.lit.fit`` owns (max_steps, logger, callbacks, validation schedule), plus the
    scale keys ``fit`` reads itself (global_batch, compile_model)."""
    import inspect

    import lightning.pytorch as pl

    from common.lit.fit import SCALE_KEYS

    owned = {"max_steps", "logger", "callbacks", "val_check_interval", "check_val_every_n_epoch", "default_root_dir",
             "enable_checkpointing", "num_sanity_val_steps", "self"}
    return [n for n in inspect.signature(pl.Trainer.__init__).parameters if n not in owned] + list(SCALE_KEYS)


def load_preset(paper: Paper, preset: str, overrides: list[str], seeds: int | None = None,
                keep_dry_run: bool = False) -> DictConfig:
    """The preset's YAML with overrides merged; an unknown preset lists the valid ones. ``preset`` may also be
    the path of a YAML file of the same shape (a user's own preset, e.g. an edited copy of cpu.yaml). A claim's
    ``dry_run:`` mapping (overrides for ``--dry-run``) is removed unless ``keep_dry_run``: no experiment reads it,
    and it must not change a run's hash."""
    presets = paper.presets()
    if preset in presets:
        cfg = load_yaml(paper.configs_dir() / f"{preset}.yaml")
    elif Path(preset).suffix in (".yaml", ".yml"):
        cfg = load_yaml(preset)  # missing or malformed: one ConfigError naming the file and the line
    else:
        raise ConfigError(f"unknown preset {preset!r} for {paper.id}; valid presets: {', '.join(presets)} "
                          "(or the path of a preset .yaml file)")
    cfg = apply_overrides(cfg, overrides, open_sections={"trainer": trainer_arguments})
    if seeds is not None:  # --seeds wins over the preset's count, global and per claim
        if seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {seeds}")
        cfg.seeds = seeds
        for section in cfg.get("claims", {}).values():
            if isinstance(section, DictConfig) and "seeds" in section:
                section.seeds = seeds
    if "claims" not in cfg or not isinstance(cfg.claims, DictConfig):
        raise ConfigError(f"preset {preset} of {paper.id} has no 'claims' section")
    if not keep_dry_run:
        for section in cfg.claims.values():
            if isinstance(section, DictConfig) and "dry_run" in section:
                del section["dry_run"]
    from common.config_check import check_section

    for key in ("seeds", "tuning_seeds"):
        if key in cfg:
            check_section({key: cfg[key]}, "")
    check_section(cfg.claims, "claims")  # every claim, before the first run starts
    return cfg


def select_claims(paper: Paper, cfg: DictConfig, preset: str, wanted: list[str]) -> list[Claim]:
    """Claims to run: those named (each must exist and be in this preset), else all the preset has."""
    known = [c.id for c in paper.claims]
    in_preset = [c for c in known if c in cfg.claims]
    if not wanted:
        return [paper.claim(c) for c in in_preset]
    chosen = []
    for cid in wanted:
        cid = cid.lower()
        if cid not in known:
            raise ConfigError(f"unknown claim {cid!r} for {paper.id}; valid claims: {', '.join(known)}")
        if cid not in in_preset:
            have = [p for p in paper.presets()
                    if cid in load_yaml(paper.configs_dir() / f"{p}.yaml").get("claims", {})]
            raise ConfigError(f"claim {cid} is not part of the {preset} preset; presets that run it: "
                              f"{', '.join(have) or 'none'}")
        chosen.append(paper.claim(cid))
    return chosen


def default_out_dir(paper: Paper, preset: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / paper.id / f"{preset}-{stamp}"


def process_rank() -> int:
    """This process's global rank under a multi-process Lightning strategy (0 otherwise). With
    ``trainer.strategy=ddp`` Lightning starts ranks >= 1 by re-running this command, so every rank runs every
    claim (the collectives need it); only rank 0 writes the output folder."""
    return int(os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or 0)


def runs_key(claim_cfg: object, seeds: list[int], trainer: object) -> str:
    """Names a claim's folder of finished runs: a hash of what determines them."""
    blob = json.dumps([claim_cfg, seeds, trainer], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


TUNING_SEED_BASE = 1000  # tuning seeds are 1000, 1001, ...: disjoint from the eval seeds 0, 1, 2, ...


def claim_seeds(cfg: DictConfig, claim_id: str) -> tuple[list[int], list[int]]:
    """(eval seeds, tuning seeds) of a claim: ``seeds`` and ``tuning_seeds`` counts, per claim or global."""
    section = cfg.claims[claim_id]
    n_eval = int(section.get("seeds", cfg.seeds))
    n_tune = int(section.get("tuning_seeds", cfg.get("tuning_seeds", 2)))
    return list(range(n_eval)), list(range(TUNING_SEED_BASE, TUNING_SEED_BASE + n_tune))


def _finished(path: Path) -> dict | None:
    try:
        return load_record(path)
    except IncompleteRecordError:
        return None


def run_claims(paper: Paper, claims: list[Claim], cfg: DictConfig, preset: str, out_dir: Path,
               stream: TextIO | None = None, resume: bool = False, checkpoints: bool = True) -> list[ClaimRun]:
    """Run each claim, compute its verdict from the measured summary and write its record.

    Every Lightning run checkpoints at each validation (unless ``checkpoints`` is False: the dry run's 2-step runs)
    and every finished (arm, lr, seed) run is saved under ``out_dir/runs``; with ``resume`` a claim whose record is
    complete is not rerun, finished runs are reused and an interrupted one continues from its checkpoint. A partial
    record is never taken for a finished one.
    """
    from common.lit.checkpointing import checkpointing

    stream = stream or sys.stderr
    rank = process_rank()
    if rank:
        out_dir, stream = out_dir / f".rank{rank}", io.StringIO()
    trainer = OmegaConf.to_container(cfg.get("trainer", OmegaConf.create({})), resolve=True)
    done = []
    shared: dict[str, Any] = {}  # claims that run the same experiment on the same config share one measurement
    for i, claim in enumerate(claims, 1):
        seeds, tuning_seeds = claim_seeds(cfg, claim.id)
        record_path = out_dir / f"{claim.id}.json"
        finished = _finished(record_path) if resume else None
        if finished is not None:
            print(f"== {paper.id} {claim.id} ({i}/{len(claims)}): finished record {record_path} reused (--resume)",
                  file=stream, flush=True)
            done.append(ClaimRun(claim, record_path, Verdict.from_dict(finished["verdict"]), finished["headline"],
                                 float(finished.get("wall_s") or 0.0)))
            continue
        print(f"== {paper.id} {claim.id} ({i}/{len(claims)}): {claim.title} | preset {preset}, "
              f"eval seeds {seeds}, tuning seeds {tuning_seeds}", file=stream, flush=True)
        claim_cfg = to_plain(cfg.claims[claim.id])
        key = runs_key(claim_cfg, seeds + tuning_seeds, trainer)
        ctx = RunContext(out_dir=out_dir, preset=preset, seeds=seeds, trainer=dict(trainer),  # type: ignore[arg-type]
                         stream=stream, claim_id=claim.id, resume=resume, runs_key=key, tuning_seeds=tuning_seeds)
        start = time.perf_counter()
        experiment = f"{claim.run.__module__}.{claim.run.__qualname__}:{key}"
        if experiment in shared:
            print(f"[{claim.id}] judging the measurement the earlier claim of this run made (same experiment and "
                  "config)", file=stream, flush=True)
            measurement, wall = shared[experiment]
        else:
            with checkpointing(enabled=checkpoints, resume=resume):
                measurement = claim.run(cfg.claims[claim.id], ctx)
            wall = time.perf_counter() - start
            shared[experiment] = (measurement, wall)
        verdict = claim.judge(measurement.summary)
        protocol = dict(measurement.protocol or {})
        if protocol and protocol.get("kind") != "no tuning":  # the shared part plus this claim's test and cap
            protocol["test"] = claim.test(measurement.summary) if claim.test else protocol.get("test")
            protocol["cap"] = verdict.cap
        headline = claim.headline(measurement.summary)
        plots = {k: Path(v).resolve().relative_to(out_dir.resolve()).as_posix()
                 for k, v in measurement.plots.items()}
        record = {
            "record_version": RECORD_VERSION,
            "paper": paper.id,
            "paper_title": paper.title,
            "claim": claim.id,
            "claim_title": claim.title,
            "preset": preset,
            "paper_result": claim.paper_result,
            "source": claim.source,
            "metric": claim.metric,
            "rule": claim.rule,
            "config": {"seeds": len(seeds), "trainer": trainer, "claim": to_plain(cfg.claims[claim.id])},
            "seeds": seeds,
            "arms": measurement.arms,
            "summary": plain(measurement.summary),
            "protocol": protocol or None,
            # a package of several papers names each claim's own; one without an arXiv id says so in its source
            "claim_arxiv": claim.arxiv or ("" if any(c.arxiv for c in paper.claims) else paper.arxiv),
            "tuning_seeds": tuning_seeds,
            "headline": headline,
            "verdict": verdict.to_dict(),
            "plots": plots,
            "wall_s": wall,
            "provenance": provenance(),
        }
        path = write_record(record_path, record)
        print(f"-> {claim.id}: {verdict.label.upper()} | {headline} | {wall:.0f} s | record {path}",
              file=stream, flush=True)
        for reason in verdict.reasons:
            print(f"   {reason}", file=stream, flush=True)
        done.append(ClaimRun(claim, path, verdict, headline, wall))
    return done
