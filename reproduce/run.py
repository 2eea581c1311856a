"""Run a paper's claims at a preset: load config, run each claim, judge it, write its record."""

from __future__ import annotations

import datetime as _dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from omegaconf import DictConfig, OmegaConf

from common.config import apply_overrides, load_yaml, to_plain
from common.errors import ConfigError
from common.results.context import RunContext
from common.results.paper import Claim, Paper
from common.results.record import RECORD_VERSION, provenance, write_record
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


def load_preset(paper: Paper, preset: str, overrides: list[str], seeds: int | None = None) -> DictConfig:
    """The preset's YAML with overrides merged; an unknown preset lists the valid ones. ``preset`` may also be
    the path of a YAML file of the same shape (a user's own preset, e.g. an edited copy of cpu.yaml)."""
    presets = paper.presets()
    if preset in presets:
        cfg = load_yaml(paper.configs_dir() / f"{preset}.yaml")
    elif Path(preset).suffix in (".yaml", ".yml"):
        cfg = load_yaml(preset)  # missing or malformed: one ConfigError naming the file and the line
    else:
        raise ConfigError(f"unknown preset {preset!r} for {paper.id}; valid presets: {', '.join(presets)} "
                          "(or the path of a preset .yaml file)")
    cfg = apply_overrides(cfg, overrides)
    if seeds is not None:  # --seeds wins over the preset's count, global and per claim
        if seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {seeds}")
        cfg.seeds = seeds
        for section in cfg.get("claims", {}).values():
            if isinstance(section, DictConfig) and "seeds" in section:
                section.seeds = seeds
    if "claims" not in cfg or not isinstance(cfg.claims, DictConfig):
        raise ConfigError(f"preset {preset} of {paper.id} has no 'claims' section")
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


def run_claims(paper: Paper, claims: list[Claim], cfg: DictConfig, preset: str, out_dir: Path,
               stream: TextIO | None = None) -> list[ClaimRun]:
    """Run each claim, compute its verdict from the measured summary and write its record."""
    stream = stream or sys.stderr
    trainer = OmegaConf.to_container(cfg.get("trainer", OmegaConf.create({})), resolve=True)
    done = []
    for i, claim in enumerate(claims, 1):
        seeds = list(range(int(cfg.claims[claim.id].get("seeds", cfg.seeds))))  # a claim may need more seeds
        print(f"== {paper.id} {claim.id} ({i}/{len(claims)}): {claim.title} | preset {preset}, "
              f"seeds {seeds}", file=stream, flush=True)
        ctx = RunContext(out_dir=out_dir, preset=preset, seeds=seeds, trainer=dict(trainer),  # type: ignore[arg-type]
                         stream=stream, claim_id=claim.id)
        start = time.perf_counter()
        measurement = claim.run(cfg.claims[claim.id], ctx)
        wall = time.perf_counter() - start
        verdict = claim.judge(measurement.summary)
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
            "summary": measurement.summary,
            "headline": headline,
            "verdict": verdict.to_dict(),
            "plots": plots,
            "wall_s": wall,
            "provenance": provenance(),
        }
        path = write_record(out_dir / f"{claim.id}.json", record)
        print(f"-> {claim.id}: {verdict.status.upper()} | {headline} | {wall:.0f} s | record {path}",
              file=stream, flush=True)
        for reason in verdict.reasons:
            print(f"   {reason}", file=stream, flush=True)
        done.append(ClaimRun(claim, path, verdict, headline, wall))
    return done
