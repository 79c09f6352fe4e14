"""The building blocks on hand-made series: datasheet limits and rates, silence, tail
probabilities, settings merges. (Learned detectors are specified end to end in
test_sensor_models.py and test_asset_model.py.)"""

from __future__ import annotations

import random

import pytest

from edge.detection.finding import Finding
from edge.detection.limits import StaticLimitDetector
from edge.detection.rate import RateOfChangeDetector
from edge.detection.settings import (
    DetectionSettings,
    DetectorSettings,
    LimitSettings,
    SilenceSettings,
    merged,
)
from edge.detection.silence import SilenceDetector
from edge.detection.tails import TailModel, _quantum


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


# --- rate of change ---------------------------------------------------------

def test_rate_of_change_fires_above_the_slope() -> None:
    detector = RateOfChangeDetector(max_per_s=2.0)
    assert _fired(_run(detector, [0, 1, 2, 3, 10, 11])) == [4]
    assert detector.update(5.0, 0.0) is None, "a reading that is not newer is not judged"


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


def test_silence_never_opens_for_a_sensor_known_only_from_a_backfill() -> None:
    detector = SilenceDetector(SilenceSettings(factor=5, min_gap_s=0))
    for i in range(100):  # an hour-old burst, replayed at once
        detector.update(1000.0 + i, 4600.0)
    assert detector.check(4600.0 + 3600.0) is None, "never seen live: its silence is not known"
    for i in range(30):  # now it reports live
        detector.update(8200.0 + i, 8200.0 + i)
    assert detector.check(8230.0) is None
    assert detector.check(8300.0) is not None


def test_a_publisher_that_sends_batches_is_silent_only_when_the_batches_stop() -> None:
    """1 Hz readings sent as one batch every 10 s (field trial review): live, never silent
    between batches, silent after five batches' time without one."""
    detector = SilenceDetector(SilenceSettings(factor=5, min_gap_s=0))
    for batch in range(60):
        sent = 100.0 + 10.0 * batch
        for i in range(10):
            detector.update(sent - 10.0 + i, sent)
        for wait in (1.0, 5.0, 9.9):
            assert detector.check(sent + wait) is None, f"batch {batch}, {wait} s later"
    last = 100.0 + 10.0 * 59
    assert detector.check(last + 45.0) is None
    assert detector.check(last + 55.0) is not None


def test_silence_after_a_restart_counts_from_the_restart() -> None:
    detector = SilenceDetector(SilenceSettings(factor=5, min_gap_s=0))
    for i in range(20):
        detector.update(float(i), float(i))
    restarted = SilenceDetector(SilenceSettings(factor=5, min_gap_s=0))
    restarted.load(detector.state())
    assert restarted.check(3600.0) is None, "an hour of downtime is not the sensor's silence"
    assert restarted.check(3603.0) is None
    assert restarted.check(3606.0) is not None, "still nothing five periods after the restart"


# --- tail probabilities --------------------------------------------------------

def test_tail_probabilities_are_calibrated_on_a_heavy_tail() -> None:
    rng = random.Random(1)
    tail = TailModel(seed=2)
    rare = 0
    for i in range(40_000):
        p = tail.observe(rng.paretovariate(3.0))  # a power-law tail
        rare += i > 2000 and p < 1e-3
    assert rare / 38_000 < 2e-3, "at most twice as many 1e-3 events as promised"


def test_tail_probabilities_treat_quantised_levels_as_ties() -> None:
    tail = TailModel(seed=3)
    rng = random.Random(3)
    for _ in range(2000):
        tail.add(float(round(rng.gauss(0.0, 0.6))))  # whole steps: mostly -1, 0, 1
    assert tail.two_sided(1.0) > 0.1, "a common level is not rare"
    assert tail.two_sided(3.0) > 1e-6, "the next level up is rarer, not impossible"
    assert tail.two_sided(30.0) < 1e-5


def test_a_filling_reservoir_knows_its_quantum_after_every_value() -> None:
    # While the reservoir fills nothing leaves it, so each insertion updates the smallest gap
    # exactly (a young tail's floor is never a stale one, and no array is re-measured).
    tail = TailModel(seed=5)
    rng = random.Random(5)
    for _ in range(128):
        tail.add(round(rng.uniform(0.0, 50.0), 1))
        assert tail._quantum == _quantum(tail._sample)


def _noise_with_excursions(tail: TailModel, excursions: int, size: float, seed: int = 7,
                           every: int = 300, burst: int = 1) -> None:
    """Gaussian noise with an excursion of `size` (lasting `burst` readings) every `every`."""
    rng = random.Random(seed)
    for i in range(every * excursions + every // 2):
        excursion = i % every == every // 2 and i >= every
        for _ in range(burst if excursion else 1):
            tail.observe(size + rng.gauss(0.0, 1.0) if excursion else rng.gauss(0.0, 1.0))


def test_an_excursion_that_recurs_becomes_routine_and_a_larger_one_stays_rare() -> None:
    first, recurring = TailModel(seed=8), TailModel(seed=8)
    _noise_with_excursions(first, 1, 40.0)
    _noise_with_excursions(recurring, 6, 40.0)  # a load step every 300 readings
    assert first.two_sided(40.0) < 1e-6, "once, a 40-sigma step is rare"
    routine = recurring.two_sided(40.0)
    assert 1e-4 < routine < 0.1, "six of them in 1,800 readings: about that often"
    assert recurring.two_sided(80.0) < 1e-6, "twice the routine step is not routine"
    assert recurring.two_sided(-40.0) < 1e-6, "each side has its own excursions"


def test_one_long_excursion_is_one_precedent_not_many() -> None:
    # A burst of 25 readings far out (a noise burst, a developing fault) is one excursion:
    # it must not teach the tail that such values are routine.
    tail = TailModel(seed=9)
    _noise_with_excursions(tail, 1, 40.0, burst=25)
    assert tail.two_sided(40.0) < 1e-6


def test_remembered_excursions_survive_a_snapshot() -> None:
    recurring = TailModel(seed=8)
    _noise_with_excursions(recurring, 6, 40.0)
    restored = TailModel(seed=8)
    restored.load(recurring.state())
    assert restored.two_sided(40.0) == recurring.two_sided(40.0) > 1e-4
    older = recurring.state()
    del older["hp"], older["lp"]  # a snapshot from before excursions were remembered
    restored.load(older)
    assert restored.two_sided(40.0) < recurring.two_sided(40.0) / 100


def _young_averaged_tail(wandering: bool, seed: int = 4) -> TailModel:
    """A drift-like averaged feature after 600 readings: a fast-crossing one (an average of
    noise) or a slowly wandering one (a thermal level: a smooth random walk)."""
    rng = random.Random(seed)
    tail, level, slope = TailModel(seed=seed, xi_max=0.5, averaged=True), 0.0, 0.0
    for _ in range(600):
        slope = 0.98 * slope + 0.002 * rng.gauss(0.0, 1.0)
        level += slope
        tail.add(level if wandering else 0.6 * rng.gauss(0.0, 1.0))
    return tail


def _bodies_beyond(tail: TailModel, bodies: float) -> float:
    """A value `bodies` times the body (median to 95 % quantile) beyond the 95 % quantile."""
    high = tail.quantile(0.95)
    return high + bodies * (high - tail.median())


def test_a_young_averaged_tail_extrapolates_from_its_body_beyond_the_reservoir() -> None:
    tail = _young_averaged_tail(wandering=False)
    rank_floor = 1.0 / 129  # what the reservoir alone could say
    assert tail.two_sided(_bodies_beyond(tail, 8.0)) < 1e-6 < rank_floor, "far beyond: rare"
    assert tail.two_sided(tail.median()) > 0.5, "the body is common"


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_a_young_averaged_tail_of_a_slowly_wandering_feature_stays_cautious(seed: int) -> None:
    # Few independent excursions: the scale of its body is barely known (a Student t of few
    # degrees of freedom), so eight bodies out is not yet a once-in-a-month event.
    wandering = _young_averaged_tail(wandering=True, seed=seed)
    noisy = _young_averaged_tail(wandering=False, seed=seed)
    assert wandering.two_sided(_bodies_beyond(wandering, 8.0)) > 1e-4
    assert noisy.two_sided(_bodies_beyond(noisy, 8.0)) < 1e-6


# --- settings ---------------------------------------------------------------

def test_per_sensor_overrides_merge_onto_the_defaults() -> None:
    defaults = DetectionSettings().defaults
    override = DetectorSettings.model_validate({"drift": {"slow_span": 600},
                                                "flatline": {"enabled": False}, "sensitivity": 0.3})
    effective = merged(defaults, override)
    assert effective.drift.slow_span == 600
    assert effective.drift.fast_span == defaults.drift.fast_span
    assert not effective.flatline.enabled
    assert effective.outlier == defaults.outlier
    assert effective.sensitivity == 0.3


def test_unknown_detector_keys_are_config_errors() -> None:
    with pytest.raises(ValueError):
        DetectorSettings.model_validate({"zscore": {"window": 60}})


def test_the_learned_detectors_named_in_records_are_the_engines() -> None:
    """Feedback and the false-alarm rule read LEARNED_DETECTORS from the records layer (below
    detection and maintenance): its names must be the detectors' own."""
    from edge.detection.drift import DriftDetector
    from edge.detection.flatline import FlatlineDetector
    from edge.detection.outlier import OutlierDetector
    from edge.detection.sensor_model import ASSET_DETECTOR
    from edge.detection.silence import SilenceDetector
    from edge.records import LEARNED_DETECTORS

    engines = {OutlierDetector.name, DriftDetector.name, FlatlineDetector.name,
               SilenceDetector.name, ASSET_DETECTOR}
    assert engines == LEARNED_DETECTORS
