"""RAdam-specific checks on its smoke run, and a diverged arm that is recorded while the run goes on."""

import pytest

from common.results.record import load_record
from reproduce.cli import main

pytestmark = pytest.mark.smoke


def test_c2_tunes_on_tuning_seeds_and_runs_the_whole_grid_on_the_eval_seeds(smoke_run):
    rec = load_record(smoke_run("radam") / "c2.json")
    runs = rec["arms"]["runs"]
    tune = [r for r in runs if r["phase"] == "tune"]
    grid = [r for r in runs if r["phase"] == "grid"]
    assert len(tune) == 3 * 2 * 1 and {r["seed"] for r in tune} == {1000}
    assert len(grid) == 3 * 2 * 2 and {r["seed"] for r in grid} == {0, 1}
    for r in runs:
        assert r["val_curve"][0][0] == 0 and r["val_curve"][-1][0] == 8
        assert r["initial_val_loss"] > 0
    assert set(rec["summary"]["spread"]) == {"adam", "adam_warmup", "radam"}


def test_c3_tunes_on_the_tuning_seeds_then_evaluates_the_choice(smoke_run):
    out = smoke_run("radam")
    runs = load_record(out / "c3.json")["arms"]["runs"]
    assert sum(r["phase"] == "tune" for r in runs) == 3 * 2
    assert {r["seed"] for r in runs if r["phase"] == "eval"} == {0, 1}
    assert (out / "tb").is_dir()


def test_a_diverged_arm_is_recorded_and_the_run_goes_on(tmp_path):
    code = main(["radam", "c2", "--preset", "smoke", "--seeds", "1", "--out", str(tmp_path),
                 "claims.c2.lrs=[1.0e+4]", "claims.c2.steps=6"])
    assert code == 0
    rec = load_record(tmp_path / "c2.json")
    runs = rec["arms"]["runs"]
    # every arm on the tuning seed and (the whole grid) on the eval seed; an arm whose tuning run stayed finite is
    # also evaluated, and that run is the grid's
    assert sum(r["phase"] in ("tune", "grid") for r in runs) == 3 * 2 and all(r["failed"] for r in runs)
    assert any(r["diverged"] and r["divergence_reason"] for r in runs)
    assert rec["verdict"]["status"] == "inconclusive"
