"""MARS-specific checks on its smoke run: three arms, one protocol sweep feeding both claims."""

import pytest

from common.results.record import load_record

pytestmark = pytest.mark.smoke


def test_m1_and_m2_share_one_sweep_and_each_records_its_own_test(smoke_run):
    out = smoke_run("mars")
    m1, m2 = load_record(out / "m1.json"), load_record(out / "m2.json")
    assert m1["arms"] == m2["arms"]
    assert {r["arm"] for r in m1["arms"]["runs"]} == {"adamw", "mars", "mars_gamma0"}
    assert {r["phase"] for r in m1["arms"]["runs"]} == {"tune", "eval"}
    assert m1["summary"]["tokens_per_step"] == 8 * 32
    assert m1["protocol"]["arms"] == m2["protocol"]["arms"]
    assert m1["protocol"]["test"] != m2["protocol"]["test"]  # vs AdamW, vs the gamma=0 control
    assert m1["protocol"]["test"]["kind"] == "paired-t"
    assert m1["verdict"]["cap"] is not None  # one tuning seed and one grid point: capped, never a verdict
