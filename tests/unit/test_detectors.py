"""Each detector on hand-made series: fires where it must, quiet where it must, no flapping."""

from __future__ import annotations

import math
import random

import pytest

from edge.detection.drift import DriftDetector
from edge.detection.finding import Finding
from edge.detection.flatline import FlatlineDetector
from edge.detection.limits import StaticLimitDetector
from edge.detection.rate import RateOfChangeDetector
from edge.detection.settings import (
    DetectionSettings,
    DetectorSettings,
    DriftSettings,
    FlatlineSettings,
    LimitSettings,
    SilenceSettings,
    ZScoreSettings,
    merged,
)
from edge.detection.silence import SilenceDetector
from edge.detection.suite import DetectorSuite
from edge.detection.zscore import RobustZScoreDetector


def _noise(n: int, sigma: float = 1.0, mean: float = 50.0, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [mean + rng.gauss(0, sigma) for _ in range(n)]


def _run(detector: object, values: list[float], start: int = 0) -> list[Finding | None]:
    return [detector.update(float(start + i), v) for i, v in enumerate(values)]  # type: ignore[attr-defined]


def _fired(results: list[Finding | None]) -> list[int]:
    return [i for i, r in enumerate(results) if r is not None]


# --- static limits ---------------------------------------------------------

def test_limits_fire_critical_above_max_and_warning_between() -> None:
    detector = StaticLimitDetector(LimitSettings(max=100, warn_max=90))
    results = _run(detector, [50, 95, 105, 50])
    assert [r.severity if r else None for r in results] == [None, "warning", "critical", None]
    assert results[2] is not None and "above the critical limit 100" in results[2].reason


def test_limits_with_hysteresis_do_not_flap_at_the_limit() -> None:
    detector = StaticLimitDetector(LimitSettings(max=100, hysteresis=2))
    hovering = [99.5, 100.5, 99.2, 100.3, 98.5, 100.1, 99.9]  # all within 2 of the limit
    results = _run(detector, [101, *hovering])
    assert all(r is not None for r in results), "once beyond, it stays until 2 inside"
    assert _run(detector, [97.9]) == [None]  # clearly back inside


def test_limits_without_hysteresis_do_flap_which_is_why_it_exists() -> None:
    detector = StaticLimitDetector(LimitSettings(max=100))
    assert _fired(_run(detector, [101, 99.5, 100.5, 99.2])) == [0, 2]


def test_low_limits_fire_below_min() -> None:
    detector = StaticLimitDetector(LimitSettings(min=0, warn_min=5))
    results = _run(detector, [10, 3, -1])
    assert [r.severity if r else None for r in results] == [None, "warning", "critical"]
    assert results[2] is not None and "below" in results[2].reason


@pytest.mark.parametrize("bad", [{"min": 10, "max": 5}, {"max": 10, "warn_max": 12},
                                 {"min": 0, "warn_min": -1}])
def test_inconsistent_limits_are_config_errors(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LimitSettings(**bad)


# --- robust z-score ----------------------------------------------------------

def test_zscore_fires_on_a_spike_and_stays_quiet_on_noise() -> None:
    detector = RobustZScoreDetector(ZScoreSettings())
    values = _noise(2000)
    values[1500] = 50 + 15  # a 15 sigma spike
    fired = _fired(_run(detector, values))
    assert fired == [1500]


def test_zscore_respects_its_warm_up() -> None:
    detector = RobustZScoreDetector(ZScoreSettings(min_readings=30))
    values = _noise(40)
    values[10] = 500  # during warm-up: not judged
    assert _fired(_run(detector, values)) == []


def test_zscore_fires_during_a_noise_burst() -> None:
    detector = RobustZScoreDetector(ZScoreSettings())
    values = _noise(500) + _noise(50, sigma=8, seed=2)
    fired = _fired(_run(detector, values))
    assert fired and fired[0] >= 500 and fired[0] < 510


def test_zscore_is_quiet_after_a_stuck_stretch() -> None:
    detector = RobustZScoreDetector(ZScoreSettings())
    values = _noise(300) + [50.0] * 300 + _noise(400, seed=3, mean=51.0)
    assert _fired(_run(detector, values)) == []


# --- drift -----------------------------------------------------------------

def test_drift_fires_on_a_slow_ramp_and_not_on_noise() -> None:
    detector = DriftDetector(DriftSettings())
    quiet = _noise(3000)
    ramp = [v + 12 * i / 400 for i, v in enumerate(_noise(400, seed=5))]
    results = _run(detector, quiet + ramp)
    fired = _fired(results)
    assert fired and fired[0] >= 3000, "no finding on plain noise"
    assert fired[0] < 3400, "the ramp is caught before it ends"


def test_drift_ignores_a_slow_daily_cycle_of_a_few_sigma() -> None:
    detector = DriftDetector(DriftSettings())
    values = [v + 3 * math.sin(2 * math.pi * i / 8640) for i, v in enumerate(_noise(20_000))]
    assert _fired(_run(detector, values)) == []


def test_drift_accepts_a_lasting_new_level_eventually() -> None:
    detector = DriftDetector(DriftSettings(slow_span=200))
    results = _run(detector, _noise(1000) + _noise(3000, mean=70, seed=9))
    fired = _fired(results)
    assert fired and fired[-1] < 1000 + 3 * 200, "the alarm ends once the level is accepted"


# --- rate of change ----------------------------------------------------------

def test_rate_of_change_fires_above_the_slope() -> None:
    detector = RateOfChangeDetector(max_per_s=2.0)
    assert _fired(_run(detector, [0, 1, 2, 3, 10, 11])) == [4]
    assert detector.update(5.0, 0.0) is None, "a reading that is not newer is not judged"


# --- flatline ---------------------------------------------------------------

def test_flatline_fires_after_n_identical_readings_and_clears_on_change() -> None:
    detector = FlatlineDetector(FlatlineSettings(readings=5))
    results = _run(detector, [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 3.0])
    assert _fired(results) == [5, 6]


def test_flatline_honours_epsilon_and_minimum_duration() -> None:
    detector = FlatlineDetector(FlatlineSettings(readings=3, epsilon=0.01, min_duration_s=10))
    values = [5.0, 5.001, 4.999, 5.0, 5.002] * 3
    fired = _fired(_run(detector, values))
    assert fired and fired[0] == 10, "within epsilon counts as the same; 10 s must pass"


def test_flatline_stays_quiet_on_noise() -> None:
    detector = FlatlineDetector(FlatlineSettings())
    assert _fired(_run(detector, [round(v, 2) for v in _noise(5000)])) == []


# --- silence ----------------------------------------------------------------

def test_silence_fires_after_factor_times_the_period_and_clears_on_a_reading() -> None:
    detector = SilenceDetector(SilenceSettings(factor=5, min_gap_s=0))
    for i in range(20):
        detector.update(i * 2.0, i * 2.0)  # (reading time, arrival): live
    assert detector.check(38.0 + 9.0) is None  # 9 s < 5 x 2 s
    finding = detector.check(38.0 + 11.0)
    assert finding is not None and finding.severity == "critical"
    detector.update(50.0, 50.0)
    assert detector.check(51.0) is None


def test_silence_needs_a_learned_period_and_is_not_taught_by_the_gap() -> None:
    detector = SilenceDetector(SilenceSettings(factor=5, min_gap_s=0, min_intervals=5))
    detector.update(0.0, 0.0)
    detector.update(1.0, 1.0)
    assert detector.check(1000.0) is None, "two readings teach no period"
    for i in range(2, 10):
        detector.update(float(i), float(i))
    detector.update(500.0, 500.0)  # back after a long gap
    assert detector.check(507.0) is not None, "the period is still ~1 s, not 490 s"


# --- suite and settings ------------------------------------------------------

def test_suite_skips_redelivered_and_out_of_order_readings() -> None:
    suite = DetectorSuite(DetectorSettings(), LimitSettings(max=10))
    assert suite.update(100.0, 50.0, 100.0)[0].detector == "limits"
    assert suite.update(100.0, 50.0, 101.0) == ()  # the same reading again
    assert suite.update(99.0, 50.0, 102.0) == ()  # older than what we judged


def test_per_sensor_overrides_merge_onto_the_defaults() -> None:
    defaults = DetectionSettings().defaults
    override = DetectorSettings.model_validate({"zscore": {"window": 60}, "flatline": {"enabled": False}})
    effective = merged(defaults, override)
    assert effective.zscore.window == 60
    assert effective.zscore.warning == defaults.zscore.warning
    assert not effective.flatline.enabled
    assert effective.drift == defaults.drift
