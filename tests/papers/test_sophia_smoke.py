"""Sophia-specific checks on its smoke run."""

import pytest

from common.results.record import load_record

pytestmark = pytest.mark.smoke


def test_s1_records_the_half_T_runs_win_rate_trace_and_tokens(smoke_run):
    rec = load_record(smoke_run("sophia") / "s1.json")
    s = rec["summary"]
    assert s["tokens_per_step"] == 8 * 32
    assert set(s["arms"]) == {"adamw", "sophiag"} and s["short"]["sophiag"]["f"] == 0.5
    assert rec["protocol"]["test"]["kind"] == "steps-at-fT"
    assert rec["protocol"]["exceptions"]  # rho by the win-rate rule, said in the record
    full = [r for r in rec["arms"]["runs"] if r["arm"] == "sophiag" and r["phase"] in ("tune", "eval")]
    assert full and all(len(r["hessian_trace"]) == 24 // 4 for r in full)  # k=4 over 24 steps
    assert all(0.0 <= w <= 1.0 for r in full for _, w, _ in r["hessian_trace"])
    assert all(not r["hessian_trace"] for r in rec["arms"]["runs"] if r["arm"] == "adamw")
    assert {"val_curves", "lr_sweep", "win_rate"} <= set(rec["plots"])
