"""MARS-specific checks on its smoke run: four arms, one sweep feeding both claims."""

import pytest

from common.results.record import load_record

pytestmark = pytest.mark.smoke


def test_m1_and_m2_share_one_sweep_with_all_four_arms(smoke_run):
    out = smoke_run("mars")
    m1, m2 = load_record(out / "m1.json"), load_record(out / "m2.json")
    assert m1["arms"] == m2["arms"]
    assert {r["arm"] for r in m1["arms"]["runs"]} == {"adamw", "mars", "mars_gamma0", "mars_lion"}
    assert m1["summary"]["m1"]["baseline"] == "adamw" and m2["summary"]["m2"]["baseline"] == "mars_gamma0"
    assert m1["summary"]["tokens_per_step"] == 8 * 32
