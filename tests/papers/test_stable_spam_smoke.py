"""Stable-SPAM-specific checks on its smoke run: six arms, one sweep feeding S1-S3, both semantics judged,
traces recorded; the hyphenated id resolves to the same paper."""

import pytest

from common.results.record import load_record
from reproduce.cli import main
from reproduce.registry import get_paper

pytestmark = pytest.mark.smoke

ARMS = {"adam_fp", "adam_int4", "adam_clip_int4", "spam_int4", "stablespam_official_int4", "stablespam_fixed_int4"}


def test_three_claims_share_one_sweep_of_six_arms_and_judge_both_semantics(smoke_run):
    out = smoke_run("stable_spam")
    recs = [load_record(out / f"{c}.json") for c in ("s1", "s2", "s3")]
    assert recs[0]["arms"] == recs[1]["arms"] == recs[2]["arms"]
    runs = recs[0]["arms"]["runs"]
    assert {r["arm"] for r in runs} == ARMS
    s = recs[0]["summary"]
    assert s["adam_star"] in ("adam_int4", "adam_clip_int4")
    for rec in recs:
        checks = rec["verdict"]["checks"]
        assert any(k.startswith("official: ") for k in checks) and any(k.startswith("fixed: ") for k in checks)
        assert "official:" in rec["headline"] and "fixed:" in rec["headline"]
    for r in runs:
        assert {"spikes", "failed", "trace"} <= set(r)
        assert {"loss", "grad_norm_in", "grad_norm_out"} <= set(r["trace"])
        if r["arm"].startswith("stablespam"):
            assert {"clip_fraction", "threshold"} <= set(r["trace"])
    assert set(s["short"]) == {"stablespam_official_int4", "stablespam_fixed_int4"}
    assert recs[2]["protocol"]["test"]["kind"] == "steps-at-fT"
    assert set(recs[0]["plots"]) == {"val_curves", "lr_sweep", "grad_norms", "train_loss"}


def test_the_hyphenated_id_is_the_same_paper(capsys):
    assert get_paper("stable-spam") is get_paper("stable_spam")
    assert main(["cite", "stable-spam"]) == 0
    assert "huang2025stablespam" in capsys.readouterr().out
