"""AdaBelief-specific checks on its smoke run."""

import pytest

from common.results.record import load_record

pytestmark = pytest.mark.smoke


def test_c1_runs_every_arm_on_its_own_grid_with_per_claim_seeds(smoke_run):
    rec = load_record(smoke_run("adabelief") / "c1.json")
    runs = rec["arms"]["runs"]
    assert {(r["arm"], r["lr"]) for r in runs} == {("sgd", 1e-4), ("adam", 1e-2), ("adam", 0.1),
                                                   ("adabelief", 1e-2), ("adabelief", 0.1)}
    assert all(len(r["distance"]) == len(rec["seeds"]) == 2 for r in runs)
    assert rec["summary"]["shared_lrs"] == 2


def test_c2_reports_speed_and_accuracy_for_every_arm(smoke_run):
    rec = load_record(smoke_run("adabelief") / "c2.json")
    assert set(rec["summary"]["best"]) == {"sgd", "adam", "adabelief", "adamw", "radam"}
    for arm, best in rec["summary"]["best"].items():
        assert best["n"] == 2, arm
        assert best["train_loss_at_speed"] is not None and best["test_acc"] is not None
