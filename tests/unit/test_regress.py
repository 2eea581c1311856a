"""The regression comparison: drift beyond a claim's tolerance, or a changed verdict, is flagged."""

import os

import torch

from reproduce.regress import _threads_of, compare


def _rec(loss, status="reproduced", nested=None):
    return {"summary": {"best": {"radam": {"loss": loss}}, "n": nested}, "verdict": {"status": status}}


def test_within_tolerance_passes_and_verdict_is_compared():
    rows = compare({"best.radam.loss": 0.03}, _rec(1.50), _rec(1.52))
    assert [r[0] for r in rows] == ["best.radam.loss", "verdict"]
    assert all(r[4] for r in rows)


def test_drift_beyond_tolerance_fails():
    rows = compare({"best.radam.loss": 0.03}, _rec(1.50), _rec(1.54))
    assert rows[0][4] is False


def test_changed_verdict_fails_even_with_equal_metrics():
    rows = compare({"best.radam.loss": 0.03}, _rec(1.5), _rec(1.5, "partially reproduced"))
    assert rows[-1][4] is False


def test_missing_or_non_finite_metric_must_match_exactly():
    assert compare({"best.radam.loss": 0.1}, _rec(None), _rec(None))[0][4] is True
    assert compare({"best.radam.loss": 0.1}, _rec(None), _rec(1.0))[0][4] is False
    assert compare({"missing.key": 0.1}, _rec(1.0), _rec(1.0))[0][4] is True


def test_a_rerun_uses_the_reference_thread_count_and_restores_it():
    before = torch.get_num_threads()
    wanted = 2 if before != 2 and (os.cpu_count() or 1) >= 2 else 1
    with _threads_of({"provenance": {"torch_threads": wanted}}):
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before
    with _threads_of({"provenance": {"torch_threads": 10**6}}):  # never more than this machine's cores
        assert torch.get_num_threads() == os.cpu_count()
    with _threads_of({}):  # an old record without provenance: left as it is
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before
