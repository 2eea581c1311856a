"""Same seed, same machine: identical metrics on CPU. A cheap Lightning claim (RAdam C2, three arms) run twice in
one process gives records whose summaries, curves and verdicts are equal bit for bit (wall times aside); so does
the toy claim. This is what lets ``reproduce regress`` use tight tolerances."""

from __future__ import annotations

import json

import pytest

from reproduce.cli import main

VOLATILE = {"wall_s", "step_time_ms", "train_s", "val_train_s", "state_bytes"}  # measured time, not maths


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


@pytest.mark.parametrize("argv", [
    ["radam", "c2", "--preset", "smoke", "--seeds", "1", "claims.c2.lrs=[1e-2]"],
    ["radam", "c1", "--preset", "smoke", "--seeds", "1"],
], ids=["lightning-c2", "toy-c1"])
def test_the_same_seed_gives_identical_metrics(tmp_path, argv):
    records = []
    for name in ("first", "second"):
        assert main([*argv, "--out", str(tmp_path / name)]) == 0
        records.append(json.loads((tmp_path / name / f"{argv[1]}.json").read_text()))
    first, second = records
    assert _strip(first["summary"]) == _strip(second["summary"])
    assert _strip(first["arms"]) == _strip(second["arms"])
    assert first["verdict"] == second["verdict"] and first["headline"] == second["headline"]
