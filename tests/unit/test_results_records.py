import json
import math

import pytest

from common.results.record import IncompleteRecordError, json_safe, load_record, provenance, write_record
from common.results.verdict import (
    CONTRADICTED,
    NOT_REPRODUCED,
    PARTIAL,
    REPRODUCED,
    Verdict,
    count_rule,
)


def test_json_safe_turns_non_finite_into_null_and_tensors_into_lists():
    import torch

    out = json_safe({"a": float("nan"), "b": [1.0, float("inf")], "t": torch.tensor([1.5, 2.0]), 3: (1, 2)})
    assert out == {"a": None, "b": [1.0, None], "t": [1.5, 2.0], "3": [1, 2]}
    json.dumps(out, allow_nan=False)


def test_write_then_load_round_trip_marks_complete(tmp_path):
    path = write_record(tmp_path / "r" / "c1.json", {"claim": "c1", "x": math.nan})
    rec = load_record(path)
    assert rec["complete"] is True and rec["x"] is None
    assert not list(tmp_path.rglob("*.partial"))


@pytest.mark.parametrize("body", ['{"claim": "c1"}', '{"claim": "c1", "complete": fal', "", "[1, 2]"])
def test_partial_or_truncated_record_is_never_taken_as_complete(tmp_path, body):
    path = tmp_path / "c1.json"
    path.write_text(body)
    with pytest.raises(IncompleteRecordError, match="c1.json"):
        load_record(path)


def test_provenance_has_versions_and_date():
    p = provenance()
    for key in ("git_commit", "git_dirty", "python", "torch", "lightning", "device", "torch_threads", "date"):
        assert key in p
    assert p["torch_threads"] >= 1


def test_count_rule_levels():
    assert count_rule({"a": True, "b": True}, partial_at_least=1).status == REPRODUCED
    assert count_rule({"a": True, "b": False}, partial_at_least=1).status == PARTIAL
    assert count_rule({"a": False, "b": False}, partial_at_least=1).status == NOT_REPRODUCED
    assert count_rule({"a": True, "b": True}, partial_at_least=1, contradicted=True).status == CONTRADICTED
    three = {"a": True, "b": True, "c": False}
    assert count_rule(three, partial_at_least=2).status == PARTIAL
    assert count_rule({**three, "b": False}, partial_at_least=2).status == NOT_REPRODUCED


def test_verdict_rejects_unknown_status_and_round_trips():
    with pytest.raises(ValueError, match="unknown verdict"):
        Verdict("probably fine")
    v = Verdict(PARTIAL, {"a": True}, ["why"])
    assert Verdict.from_dict(v.to_dict()) == v
