"""SOAP-specific checks on its smoke run: three arms, both comparisons, the P2 frequency run."""

import pytest

from common.results.record import load_record

pytestmark = pytest.mark.smoke


def test_p1_compares_soap_with_adamw_and_shampoo_and_runs_p2(smoke_run):
    rec = load_record(smoke_run("soap") / "p1.json")
    s = rec["summary"]
    assert set(s["best"]) == {"adamw", "soap", "shampoo"}
    for base in ("adamw", "shampoo"):
        assert s[f"vs_{base}"] is not None and "iteration_reduction" in s[f"vs_{base}"]
    assert list(s["p2"]) == ["1"] and rec["arms"]["p2_runs"][0]["frequency"] == 1
    assert s["tokens_per_step"] == 8 * 32
    assert all(b["state_bytes"] for b in s["best"].values())
    assert s["best"]["soap"]["state_bytes"] > s["best"]["adamw"]["state_bytes"]  # L, R, Q on top of Adam's moments
