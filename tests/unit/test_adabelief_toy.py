"""C1 toy machinery: Beale's function, seeded starts, and batched starts == separate runs."""

import numpy as np
import pytest
import torch

from papers.adabelief.optim import AdaBelief
from papers.adabelief.toy import BEALE_OPTIMUM, beale, distance, run_trajectories, starts


def test_beale_minimum_and_gradient_at_optimum():
    xy = torch.tensor(BEALE_OPTIMUM, dtype=torch.float64, requires_grad=True)
    f = beale(xy[0], xy[1])
    f.backward()
    assert f.item() == 0.0
    assert torch.allclose(xy.grad, torch.zeros(2, dtype=torch.float64))
    assert beale(np.array(0.0), np.array(0.0)) == pytest.approx(1.5**2 + 2.25**2 + 2.625**2)


def test_starts_are_seeded_and_within_jitter():
    a, b = starts((-2.5, -2.5), 0.05, [0, 1, 2]), starts((-2.5, -2.5), 0.05, [0, 1, 2])
    assert torch.equal(a, b)
    assert ((a + 2.5).abs() <= 0.05).all()
    assert not torch.equal(a[0], a[1])


def test_batched_starts_equal_separate_runs():
    x0 = starts((-2.5, -2.5), 0.05, [0, 1, 2])

    def factory(params):
        return AdaBelief(params, lr=0.05, eps=1e-8, weight_decouple=False, rectify=False)

    final, path = run_trajectories(beale, factory, x0, steps=40)
    for i in range(3):
        single, _ = run_trajectories(beale, factory, x0[i : i + 1], steps=40)
        np.testing.assert_array_equal(final[i], single[0])
    assert path.shape == (3, 41, 2)


def test_distance_marks_diverged_starts_infinite():
    d = distance(np.array([[3.0, 0.5], [np.nan, 1.0], [0.0, 0.5]]), BEALE_OPTIMUM)
    assert d[0] == 0.0 and np.isinf(d[1]) and d[2] == pytest.approx(3.0)
