"""AdaBelief-specific checks on its smoke run."""

import pytest

from common.results.record import load_record

pytestmark = pytest.mark.smoke


def test_c1_tunes_every_arm_on_its_own_grid_and_evaluates_on_the_eval_starts(smoke_run):
    rec = load_record(smoke_run("adabelief") / "c1.json")
    runs = rec["arms"]["runs"]
    tuned = {(r["arm"], r["lr"]) for r in runs if r["phase"] == "tune"}
    assert tuned == {("sgd", 1e-4), ("adam", 1e-2), ("adam", 0.1), ("adabelief", 1e-2), ("adabelief", 0.1)}
    assert all(r["seeds"] == rec["tuning_seeds"] for r in runs if r["phase"] == "tune")
    assert all(r["seeds"] == rec["seeds"] == [0, 1] for r in runs if r["phase"] != "tune")
    assert set(rec["protocol"]["arms"]) == {"sgd", "adam", "adabelief"}
    assert rec["protocol"]["test"]["kind"] == "paired-t"
    assert rec["summary"]["shared_lrs"] == 2


def test_c2_reports_speed_and_accuracy_for_every_arm_on_the_eval_seeds(smoke_run):
    rec = load_record(smoke_run("adabelief") / "c2.json")
    assert set(rec["summary"]["arms"]) == {"sgd", "adam", "adabelief"}
    for arm, a in rec["summary"]["arms"].items():
        assert len(a["test_acc"]) == len(a["train_loss_at_speed"]) == 2, arm
        assert a["train_loss_at_speed_mean"] is not None and a["test_acc_mean"] is not None
    assert rec["verdict"]["cap"].startswith("too few seeds") or rec["verdict"]["cap"].startswith("baseline")
    assert "b_acc_vs_adam" in rec["protocol"]["test"]["tests"]
