"""``trainer.strategy=ddp trainer.devices=2`` through the CLI (gloo on CPU): Lightning re-runs the command for rank
1, every rank runs every fit of the claim, only rank 0 writes the output folder, and the record matches the
single-process run's (each rank trains on half of the same global batch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.distributed
ROOT = Path(__file__).resolve().parents[2]
ARGS = ["radam", "c2", "--preset", "smoke", "--seeds", "1", "claims.c2.lrs=[1e-2]", "trainer.accelerator=cpu"]


def _run(out: Path, *extra: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "reproduce", *ARGS, *extra, "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=900, cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "c2.json").read_text())


def test_ddp_override_runs_a_claim_and_matches_one_process(tmp_path):
    ddp = _run(tmp_path / "ddp", "trainer.strategy=ddp", "trainer.devices=2")
    from reproduce.cli import main  # the reference in this process: no second interpreter start

    assert main([*ARGS, "--out", str(tmp_path / "single")]) == 0
    single = json.loads((tmp_path / "single" / "c2.json").read_text())
    assert ddp["config"]["trainer"]["strategy"] == "ddp" and ddp["config"]["trainer"]["devices"] == 2
    for a, b in zip(ddp["arms"]["runs"], single["arms"]["runs"], strict=True):
        assert (a["arm"], a["lr"], a["failed"]) == (b["arm"], b["lr"], b["failed"])
        assert a["final_val_loss"] == pytest.approx(b["final_val_loss"], rel=1e-5)
    assert ddp["verdict"]["status"] == single["verdict"]["status"]
    assert not list((tmp_path / "ddp").glob("*.json.partial"))
