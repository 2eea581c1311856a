"""`reproduce regress`: rerun every reference record's config and compare its summary within the
claim's declared tolerances. Prints a table; non-zero exit on drift or a changed verdict."""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

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


def regress(papers: list[str], reference: Path | None, out: Path | None) -> int:
    reference = reference or repo_root() / "results" / "reference"
    ids = papers or list(paper_ids())
    out = out or Path(tempfile.mkdtemp(prefix="optrepro-regress-"))
    failures = 0
    checked = 0
    # Read every reference first: a partial or corrupt one is an error before hours of reruns, not after.
    refs = {pid: [(path, load_record(path)) for path in find_records(reference / get_paper(pid).id)] for pid in ids}
    for pid in ids:
        paper = get_paper(pid)
        for path, ref in refs[pid]:
            claim = paper.claim(ref["claim"])
            cfg = OmegaConf.create({"seeds": ref["config"]["seeds"], "trainer": ref["config"]["trainer"],
                                    "claims": {claim.id: ref["config"]["claim"]}})
            run = run_claims(paper, [claim], cfg, ref["preset"], out / pid)[0]
            new = load_record(run.record_path)
            print(f"\n{pid} {claim.id} ({ref['preset']}): reference {path} vs {run.record_path}")
            print(f"  {'metric':40s} {'reference':>14s} {'new':>14s} {'tol':>8s}  ok")
            for key, a, b, tol, ok in compare(dict(claim.tolerances), ref, new):
                fa = f"{a:.5g}" if isinstance(a, float) else str(a)
                fb = f"{b:.5g}" if isinstance(b, float) else str(b)
                print(f"  {key:40s} {fa:>14s} {fb:>14s} {tol:8.3g}  {'yes' if ok else 'DRIFT'}")
                failures += not ok
            checked += 1
    if checked == 0:
        raise ConfigError(f"no reference records under {reference} for {', '.join(ids)}")
    print(f"\nregression: {checked} claim(s) checked, {failures} metric(s) drifted", file=sys.stderr)
    return 1 if failures else 0
