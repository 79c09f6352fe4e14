"""The robust trend: slope and interval recovered, wander and spikes not taken for a trend."""

from __future__ import annotations

import numpy as np
import pytest

from edge.prediction.trend import fit_trend


def _minutes(n: int) -> np.ndarray:
    return np.arange(n, dtype=float) * 60.0


def test_a_noisy_ramp_is_recovered_with_its_slope_inside_the_interval() -> None:
    rng = np.random.default_rng(1)
    t = _minutes(120)
    y = 50.0 + 0.002 * t + rng.normal(0, 0.5, len(t))
    trend = fit_trend(t, y, 0.8)
    assert trend.slope_low < 0.002 < trend.slope_high
    assert trend.slope == pytest.approx(0.002, rel=0.1)
    assert trend.z > 5
    assert trend.level == pytest.approx(50.0 + 0.002 * t[-1], abs=0.5)


def test_white_noise_has_no_significant_trend() -> None:
    rng = np.random.default_rng(2)
    zs = [abs(fit_trend(_minutes(120), rng.normal(0, 1, 120), 0.8).z) for _ in range(50)]
    assert sum(z > 3 for z in zs) == 0


def test_a_slow_wander_is_not_taken_for_a_trend() -> None:
    """An AR(1) with a long memory drifts for an hour at a time; the correction widens z."""
    rng = np.random.default_rng(3)
    significant = 0
    for _ in range(50):
        y = np.zeros(120)
        for k in range(1, 120):
            y[k] = 0.97 * y[k - 1] + rng.normal(0, 1)
        significant += abs(fit_trend(_minutes(120), y, 0.8).z) > 3
    assert significant <= 5  # without the correction, most of them are "significant"


def test_spikes_do_not_swing_the_slope() -> None:
    t = _minutes(60)
    y = 10.0 + 0.001 * t
    y[[5, 20, 40]] = 500.0
    assert fit_trend(t, y, 0.8).slope == pytest.approx(0.001, rel=0.05)


def test_too_few_points_is_an_error() -> None:
    with pytest.raises(ValueError):
        fit_trend(_minutes(2), np.array([1.0, 2.0]), 0.8)
