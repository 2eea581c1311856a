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
    pytest.param(["radam", "c2", "--preset", "smoke", "--seeds", "1", "claims.c2.lrs=[1e-2]"], marks=pytest.mark.slow),
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


@pytest.mark.distributed
def test_two_runs_in_parallel_on_one_thread_each_equal_a_serial_run(tmp_path):
    """The cpu budget lets two claims run side by side (torch on one thread each): their records must be the
    ones a serial run writes (here: this process, also on one thread, after the pair has finished)."""
    import os
    import subprocess
    import sys

    import torch

    argv = ["mars", "m1", "--preset", "smoke", "--seeds", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "reproduce", *argv, "--out", str(tmp_path / f"p{i}")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(2)]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()[-2000:]
    assert torch.get_num_threads() == 1  # tests/conftest.py
    assert main([*argv, "--out", str(tmp_path / "serial")]) == 0
    ref = json.loads((tmp_path / "serial" / "m1.json").read_text())
    for i in range(2):
        rec = json.loads((tmp_path / f"p{i}" / "m1.json").read_text())
        assert rec["provenance"]["torch_threads"] == ref["provenance"]["torch_threads"] == 1
        assert _strip(rec["summary"]) == _strip(ref["summary"]) and _strip(rec["arms"]) == _strip(ref["arms"])
        assert rec["verdict"] == ref["verdict"]
