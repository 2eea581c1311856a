"""SOAP-specific checks on its smoke run: three arms, the step claim's runs ending at 0.6 T, state sizes."""

import pytest

from common.results.record import load_record

pytestmark = pytest.mark.smoke


def test_p1_runs_soap_to_0_6_T_and_compares_with_adamw_and_shampoo(smoke_run):
    rec = load_record(smoke_run("soap") / "p1.json")
    s = rec["summary"]
    assert set(s["arms"]) == {"adamw", "soap", "shampoo"}
    short = s["short"]["soap"]
    assert short["f"] == 0.6 and short["steps"] == round(0.6 * 12) and short["baseline"] == "adamw"
    assert set(short["candidates"]) == {f"{x:g}" for x in (s["arms"]["soap"]["lr"], 2 * s["arms"]["soap"]["lr"])}
    assert {r["phase"] for r in rec["arms"]["runs"]} >= {"tune", "eval", "eval at 0.6T"}
    assert rec["protocol"]["test"]["kind"] == "steps-at-fT" and "vs_shampoo" in rec["protocol"]["test"]
    assert s["tokens_per_step"] == 8 * 32
    assert all(a["state_bytes"] for a in s["arms"].values())
    assert s["arms"]["soap"]["state_bytes"] > s["arms"]["adamw"]["state_bytes"]  # L, R, Q on top of Adam's moments
