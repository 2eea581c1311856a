"""Sophia-specific checks on its smoke run."""

import pytest

from common.results.record import load_record

pytestmark = pytest.mark.smoke


def test_s1_records_ratio_inputs_win_rate_trace_and_tokens(smoke_run):
    rec = load_record(smoke_run("sophia") / "s1.json")
    s = rec["summary"]
    assert s["tokens_per_step"] == 8 * 32 == s["effective_batch_tokens"]
    assert set(s["best"]) == {"adamw", "sophiag"} and "target" in s and "se" in s
    sophia_runs = [r for r in rec["arms"]["runs"] if r["arm"] == "sophiag"]
    assert sophia_runs and all(len(r["hessian_trace"]) == 24 // 4 for r in sophia_runs)  # k=4 over 24 steps
    assert all(0.0 <= w <= 1.0 for r in sophia_runs for _, w, _ in r["hessian_trace"])
    assert all(not r["hessian_trace"] for r in rec["arms"]["runs"] if r["arm"] == "adamw")
    assert {"val_vs_steps", "val_vs_time", "win_rate"} <= set(rec["plots"])
