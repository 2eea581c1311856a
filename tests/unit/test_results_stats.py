import math

import pytest

from common.results.stats import first_hit, mean_curve, mean_sd, se_of_difference


def test_mean_sd_and_se_of_difference():
    assert mean_sd([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_sd([5.0]) == (5.0, 0.0)
    assert se_of_difference([1.0, 3.0], [2.0, 2.0]) == pytest.approx(1.0)


def test_mean_curve_keeps_points_every_seed_has():
    a = [(0, 4.0), (50, 3.0), (100, 2.0)]
    b = [(0, 6.0), (50, 5.0)]  # diverged after step 50
    assert mean_curve([a, b]) == [(0.0, 5.0), (50.0, 4.0)]
    assert mean_curve([]) == []


def test_first_hit():
    curve = [(0, 5.0), (50, 3.0), (100, 2.0)]
    assert first_hit(curve, 3.0) == 50
    assert first_hit(curve, 1.0) is None


def test_grid_edges_flags_best_lr_at_either_end():
    from common.results.stats import grid_edges

    s = {"best": {"a": {"lr": 0.006}, "b": {"lr": 0.003}, "c": {"lr": 0.001}, "d": {"lr": None}},
         "grid": {"a": {"0.001": 1, "0.003": 1, "0.006": 1}, "b": {"0.001": 1, "0.003": 1, "0.006": 1},
                  "c": {"0.001": 1, "0.003": 1}, "d": {"0.001": 1}}}
    assert grid_edges(s) == {"a": "high", "c": "low"}
