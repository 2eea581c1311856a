"""`reproduce regress` end to end on a cheap claim: a rerun matches its reference; drift is caught."""

import json

import pytest

from reproduce.cli import main


def _make_reference(tmp_path):
    ref = tmp_path / "reference" / "radam"
    assert main(["radam", "c1", "--preset", "smoke", "--out", str(ref)]) == 0
    return tmp_path / "reference", ref / "c1.json"


@pytest.mark.slow  # three claim runs
def test_regress_passes_on_a_faithful_rerun_and_fails_on_drift(tmp_path, capsys):
    reference, record = _make_reference(tmp_path)
    assert main(["regress", "radam", "--reference", str(reference), "--out", str(tmp_path / "rerun")]) == 0
    out = capsys.readouterr().out
    assert "adam_ratio_min" in out and "DRIFT" not in out

    data = json.loads(record.read_text())
    data["summary"]["adam_ratio_min"] += 100.0  # a reference the code does not reproduce
    record.write_text(json.dumps(data))
    assert main(["regress", "radam", "--reference", str(reference), "--out", str(tmp_path / "rerun2")]) == 1
    assert "DRIFT" in capsys.readouterr().out


def test_regress_without_records_is_one_clear_error(tmp_path, capsys):
    assert main(["regress", "radam", "--reference", str(tmp_path)]) == 2
    assert "no reference records" in capsys.readouterr().err
