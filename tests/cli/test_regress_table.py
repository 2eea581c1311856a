"""``reproduce regress paper/claim``: subsets, the comparison table's columns, and one clear error for an unknown
claim."""

from __future__ import annotations

from reproduce.cli import main


def test_a_claim_subset_prints_the_table(tmp_path, capsys):
    ref = tmp_path / "reference" / "radam"
    assert main(["radam", "c1", "--preset", "smoke", "--seeds", "1", "--out", str(ref)]) == 0
    capsys.readouterr()
    assert main(["regress", "radam/c1", "--reference", str(tmp_path / "reference"), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("paper"))
    assert header.split() == ["paper", "claim", "metric", "reference", "now", "delta", "tolerance", "within",
                              "verdict", "unchanged"]
    rows = [line.split() for line in out.splitlines() if line.startswith("radam  c1")]
    assert {r[2] for r in rows} == {"adam_ratio_min", "rectified_ratio_min", "rectified_ratio_max"}
    assert all(r[-2] == "yes" and r[-1] == "yes" for r in rows)


def test_an_unknown_claim_in_the_subset_is_one_error(capsys):
    assert main(["regress", "radam/c9"]) == 2
    assert "unknown claim 'c9' for radam; valid claims: c1, c2, c3" in capsys.readouterr().err
