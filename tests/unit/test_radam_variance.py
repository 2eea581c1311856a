"""C1 simulation: the measured variances behave as the closed forms say."""

import numpy as np

from papers.radam.optim import rectifier
from papers.radam.variance import simulate_variance, window_ratio


def test_rectified_variance_is_r_squared_times_adam_and_nan_before_step_6():
    va, vr = simulate_variance([0.0, 1.0], beta2=0.999, trajectories=300, steps=40, seed=0)
    assert np.isnan(vr[:, :5]).all()
    for t in (6, 20, 40):
        np.testing.assert_allclose(vr[:, t - 1], rectifier(t, 0.999) ** 2 * va[:, t - 1], rtol=1e-12)


def test_simulation_is_seeded():
    a1, _ = simulate_variance([0.1], 0.99, 50, 30, seed=3)
    a2, _ = simulate_variance([0.1], 0.99, 50, 30, seed=3)
    a3, _ = simulate_variance([0.1], 0.99, 50, 30, seed=4)
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)


def test_adam_variance_shrinks_as_v_averages_more_gradients():
    va, _ = simulate_variance([0.0], beta2=0.99, trajectories=4000, steps=600, seed=0)
    ratio = window_ratio(va, (20, 40), (500, 600))[0]
    assert ratio > 3.0


def test_window_ratio_ignores_nan_and_is_inclusive():
    var = np.array([[np.nan, 4.0, 4.0, 1.0, 1.0]])
    np.testing.assert_allclose(window_ratio(var, (1, 3), (4, 5)), [4.0])
