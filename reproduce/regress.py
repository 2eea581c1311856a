"""`reproduce regress`: rerun every reference record's config and compare its summary within the
claim's declared tolerances. Prints a table; non-zero exit on drift or a changed verdict."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from omegaconf import OmegaConf

from common.errors import ConfigError
from common.results.record import find_records, load_record
from reproduce.registry import get_paper, paper_ids, repo_root
from reproduce.run import run_claims


def _get(summary: dict, dotted: str) -> object:
    cur: object = summary
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def compare(claim_tolerances: dict[str, float], ref: dict, new: dict) -> list[tuple[str, object, object, float, bool]]:
    """Rows (metric, reference, new, tolerance, ok) for every metric the claim bounds."""
    rows = []
    for key, tol in claim_tolerances.items():
        a, b = _get(ref["summary"], key), _get(new["summary"], key)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isfinite(a) and math.isfinite(b):
            ok = abs(a - b) <= tol
        else:
            ok = a == b
        rows.append((key, a, b, tol, ok))
    rows.append(("verdict", ref["verdict"]["status"], new["verdict"]["status"], 0.0,
                 ref["verdict"]["status"] == new["verdict"]["status"]))
    return rows


def _selection(items: list[str]) -> dict[str, set[str] | None]:
    """``paper`` (all its claims) or ``paper/claim`` (also ``paper:claim``); unknown ones are one clear error."""
    chosen: dict[str, set[str] | None] = {}
    for item in items or list(paper_ids()):
        pid, _, cid = item.replace(":", "/").partition("/")
        paper = get_paper(pid)
        pid = paper.id  # "stable-spam" names the folder stable_spam
        if not cid:
            chosen[pid] = None
            continue
        known = [c.id for c in paper.claims]
        if cid.lower() not in known:
            raise ConfigError(f"unknown claim {cid!r} for {pid}; valid claims: {', '.join(known)}")
        if pid not in chosen or chosen[pid] is not None:
            chosen.setdefault(pid, set()).add(cid.lower())  # type: ignore[union-attr]
    return chosen


def _fmt(x: object) -> str:
    return f"{x:.5g}" if isinstance(x, float) else str(x)


def format_table(rows: list[tuple]) -> str:
    """paper, claim, metric, reference, now, delta, tolerance, within, verdict unchanged: one row per metric."""
    head = ("paper", "claim", "metric", "reference", "now", "delta", "tolerance", "within", "verdict unchanged")
    body = [tuple(_fmt(v) for v in r) for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


@contextlib.contextmanager
def _threads_of(ref: dict) -> Iterator[None]:
    """Run with the torch thread count the reference was recorded with (at most this machine's cores): CPU
    reductions split across threads round differently, so the same seed on other threads drifts by ulps that
    training can amplify (seen: 0.019 of radam/c2's 0.03 tolerance, 2 threads against 1)."""
    wanted = (ref.get("provenance") or {}).get("torch_threads")
    before = torch.get_num_threads()
    if isinstance(wanted, int) and wanted >= 1:
        torch.set_num_threads(min(wanted, os.cpu_count() or wanted))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def regress(papers: list[str], reference: Path | None, out: Path | None, resume: bool = False) -> int:
    """Rerun the selected reference records (``paper`` or ``paper/claim``), print the comparison table and
    return 1 on drift (a metric beyond its tolerance or a changed verdict), else 0. ``resume`` continues a killed
    regression run in ``out`` (finished claims and runs are reused)."""
    reference = reference or repo_root() / "results" / "reference"
    chosen = _selection(papers)
    out = out or Path(tempfile.mkdtemp(prefix="optrepro-regress-"))
    # Read every reference first: a partial or corrupt one is an error before hours of reruns, not after.
    refs = {pid: [(path, rec) for path in find_records(reference / pid) for rec in [load_record(path)]
                  if claims is None or rec["claim"] in claims]
            for pid, claims in chosen.items()}
    table: list[tuple] = []
    failures = 0
    checked = 0
    for pid, found in refs.items():
        paper = get_paper(pid)
        for path, ref in found:
            claim = paper.claim(ref["claim"])
            cfg = OmegaConf.create({"seeds": ref["config"]["seeds"], "trainer": ref["config"]["trainer"],
                                    "claims": {claim.id: ref["config"]["claim"]}})
            with _threads_of(ref):
                run = run_claims(paper, [claim], cfg, ref["preset"], out / pid, resume=resume)[0]
            new = load_record(run.record_path)
            rows = compare(dict(claim.tolerances), ref, new)
            verdict_ok = rows[-1][4]
            print(f"\n{pid} {claim.id} ({ref['preset']}): reference {path} vs {run.record_path}")
            for key, a, b, tol, ok in rows[:-1]:
                delta = b - a if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
                table.append((pid, claim.id, key, a, b, "-" if delta is None else delta, tol,
                              "yes" if ok else "DRIFT", "yes" if verdict_ok else "NO"))
                failures += not ok
            if not rows[:-1]:
                table.append((pid, claim.id, "(no metrics declared)", "-", "-", "-", "-", "-",
                              "yes" if verdict_ok else "NO"))
            print(f"  verdict: {rows[-1][1]} -> {rows[-1][2]} ({'unchanged' if verdict_ok else 'CHANGED'})")
            failures += not verdict_ok
            checked += 1
    if checked == 0:
        raise ConfigError(f"no reference records under {reference} for {', '.join(papers or chosen)}")
    print("\n" + format_table(table))
    print(f"\nregression: {checked} claim(s), {len(table)} metric row(s) checked; "
          f"{failures} drifted or changed verdict(s)", file=sys.stderr)
    return 1 if failures else 0
