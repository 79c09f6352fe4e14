"""Sensor models on constructed signals: each fires on its fault and stays quiet on the normal
variant (heavy tail, daily cycle, on/off duty cycle, quantised, stuck, step, spike, limits)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from edge.detection import DetectionEngine, DetectionSettings, LimitSettings, SensorProfile
from edge.detection.flatline import FlatlineDetector
from edge.detection.lifecycle import AlertChange
from edge.detection.settings import FlatlineSettings
from edge.detection.tails import TailModel

MINUTE = 60.0
DAY = 86_400.0
START = 1_767_225_600.0  # 2026-01-01, a Thursday


def _run(values: Callable[[int, float], float], readings: int, period_s: float = MINUTE,
         profile: SensorProfile | None = None) -> list[AlertChange]:
    """Opened alerts of one sensor fed `values(i, ts)`."""
    engine = DetectionEngine("gw", DetectionSettings(), {"s": profile} if profile else None)
    opened = []
    for i in range(readings):
        ts = START + i * period_s
        opened += [c for c in engine.observe("s", None, ts, values(i, ts)) if c.change == "open"]
    return opened


def _after(opened: list[AlertChange], index: int, period_s: float = MINUTE) -> list[AlertChange]:
    return [c for c in opened if c.alert.opened_at.timestamp() >= START + index * period_s]


def _heavy(seed: int) -> Callable[[int, float], float]:
    rng = random.Random(seed)
    return lambda i, ts: 20.0 * rng.lognormvariate(0.0, 0.8)  # CPU-like load, long right tail


def test_heavy_tailed_signal_is_quiet_where_a_gaussian_threshold_would_fire() -> None:
    values = _heavy(1)
    samples = [values(i, 0.0) for i in range(3 * 1440)]  # three days at one reading a minute
    median = sorted(samples)[len(samples) // 2]
    mad = sorted(abs(v - median) for v in samples)[len(samples) // 2]
    robust_six_sigma = sum(1 for v in samples if abs(v - median) > 6 * 1.4826 * mad)
    assert robust_six_sigma > 20  # a 6-sigma rule (even a robust one) alerts all the time
    assert len(_run(_heavy(1), 3 * 1440)) <= 1  # the tail model learned this sensor's tail


def test_heavy_tailed_signal_alerts_on_an_extreme_spike_at_once() -> None:
    normal = _heavy(2)
    opened = _run(lambda i, ts: 5000.0 if i == 2000 else normal(i, ts), 2001)
    assert [(c.alert.detector, c.alert.details["accepted_because"]) for c in opened] == \
        [("outlier", "extreme")]  # one reading: the persistence check is skipped
    assert opened[0].alert.opened_at.timestamp() == START + 2000 * MINUTE
    assert opened[0].alert.score is not None and opened[0].alert.score > 0.99


def _daily(seed: int, step_at: int | None = None, step: float = 0.0) -> Callable[[int, float], float]:
    rng = random.Random(seed)

    def value(i: int, ts: float) -> float:
        cycle = 10.0 * math.sin(2 * math.pi * ts / DAY)  # ten noise sigmas each way
        shifted = step if step_at is not None and i >= step_at else 0.0
        return 50.0 + cycle + rng.gauss(0.0, 1.0) + shifted
    return value


def test_daily_cycle_is_learned_not_alerted() -> None:
    opened = _run(_daily(3), 5 * 1440)
    # The first day cannot tell a cycle from a wander (at most one alert); once the profile
    # is recognised, in the second day, the cycle is the expected level.
    assert len(opened) <= 1
    assert _after(opened, 2 * 1440) == []


def test_daily_cycle_with_a_lasting_step_opens_a_drift_alert() -> None:
    step_at = 4 * 1440 + 300
    opened = _after(_run(_daily(3, step_at, 6.0), 5 * 1440), step_at)
    assert "drift" in {c.alert.detector for c in opened}
    first = min(c.alert.opened_at.timestamp() for c in opened)
    assert first - (START + step_at * MINUTE) <= 3600  # within the hour


def test_a_spike_inside_the_daily_range_opens_an_outlier_alert_by_its_change() -> None:
    # At the night's trough (about 40) a reading of the day's level (48, eight noise sigmas up):
    # no level is unusual, only the departure from the recent baseline.
    trough = int(0.75 * 1440)
    spike_at = 3 * 1440 + trough
    normal = _daily(4)
    opened = _run(lambda i, ts: normal(i, ts) + (8.0 if i == spike_at else 0.0), spike_at + 30)
    spikes = [c.alert for c in _after(opened, spike_at)]
    assert [(a.detector, a.details["feature"]) for a in spikes] == [("outlier", "change")]
    assert _after(_run(_daily(4), spike_at + 30), 2 * 1440) == []  # the normal variant


def test_an_outlier_model_saved_with_the_retired_jump_feature_still_loads() -> None:
    from edge.detection.outlier import OutlierDetector
    from edge.detection.settings import OutlierSettings

    learned = OutlierDetector(OutlierSettings(), seed=1)
    for i in range(500):
        learned.update(10.0 + (i % 7) * 0.1)
    old = learned.state() | {"jump": learned.state()["change"], "previous": 10.6}
    del old["started"], old["held"]
    restored = OutlierDetector(OutlierSettings(), seed=1)
    restored.load(old)
    assert restored.state() == learned.state()
    assert set(learned.state()) == {"level", "change", "baseline", "started", "held"}


def _duty(seed: int, stuck_from: int | None = None) -> Callable[[int, float], float]:
    rng = random.Random(seed)
    state = {"last": 0.0}

    def value(i: int, ts: float) -> float:
        if stuck_from is not None and i >= stuck_from:
            return state["last"]
        running = (i // 90) % 2 == 0  # 90 minutes on, 90 minutes off
        state["last"] = round(12.0 + rng.gauss(0.0, 0.3), 2) if running else 0.0
        return state["last"]
    return value


def test_an_idle_pump_at_zero_is_not_stuck_and_its_duty_cycle_is_normal() -> None:
    assert _run(_duty(4), 3 * 1440) == []


def test_a_pump_that_starts_idle_learns_its_idle_value_from_the_duty_cycle() -> None:
    """Off 37 minutes in every 111, from the first reading: its running levels learn zero as
    common before a rest can be learned, so zero is never far below them; the idle runs that
    recur and end are learned as the rest (before: 182 alerts in two weeks, 169 after day one)."""
    rng = random.Random(6)

    def pump(i: int, ts: float) -> float:
        return 0.0 if i % 111 < 37 else 30.0 + rng.gauss(0.0, 0.5)

    opened = _run(pump, 14 * 1440)
    assert len([c for c in opened if c.alert.detector == "flatline"]) <= 3
    assert _after(opened, 1440) == []  # none after the first day
    stuck_from = 3 * 1440 + 37 + 30  # later, stuck while running: still a fault
    frozen = {"value": 0.0}

    def stuck(i: int, ts: float) -> float:
        if i < stuck_from:
            frozen["value"] = pump(i, ts)
        return frozen["value"]

    rng.seed(6)
    assert "flatline" in {c.alert.detector for c in _after(_run(stuck, stuck_from + 60), stuck_from)}


def test_a_sensor_that_dropped_to_zero_before_still_alerts_when_it_stays_dead() -> None:
    """A loose wire holds a daily-cycling temperature (0 inside its range) at 0 for an hour
    on three days: those runs teach 0 as an idle value, but one that lasts four times the
    longest of them is stuck again, and the dead sensor is reported."""
    rng = random.Random(1)
    # The first episode, ten hours long, is itself reported; it does not stretch the span.
    episodes = [(2 * 1440 + 300, 600), (3 * 1440 + 300, 60), (4 * 1440 + 900, 60)]
    dead_from = 6 * 1440 + 100

    def wire(i: int, ts: float) -> float:
        if i >= dead_from or any(start <= i < start + length for start, length in episodes):
            return 0.0
        return round(10.0 + 20.0 * math.sin(2 * math.pi * i / 1440) + rng.gauss(0.0, 0.5), 2)

    opened = _after(_run(wire, dead_from + 400), dead_from)
    stuck = [c for c in opened if c.alert.detector == "flatline"]
    assert stuck and stuck[0].alert.opened_at.timestamp() <= START + (dead_from + 4 * 60 + 10) * MINUTE


def test_a_pump_stuck_while_running_opens_a_flatline_alert() -> None:
    stuck_from = 2 * 1440 + 30  # thirty minutes into a running period
    opened = _after(_run(_duty(4, stuck_from), stuck_from + 60), stuck_from)
    assert opened and opened[0].alert.detector == "flatline"
    assert opened[0].alert.opened_at.timestamp() - (START + stuck_from * MINUTE) <= 10 * MINUTE


def _quantised(seed: int, stuck_from: int | None = None) -> Callable[[int, float], float]:
    rng = random.Random(seed)
    state = {"last": 20.0}

    def value(i: int, ts: float) -> float:
        if stuck_from is None or i < stuck_from:
            state["last"] = float(round(20.0 + 0.6 * rng.gauss(0.0, 1.0)))  # 1-degree steps
        return state["last"]
    return value


def test_a_quantised_sensor_repeating_values_is_quiet() -> None:
    assert _run(_quantised(5), 2 * 1440) == []


def _few_levels(spike_at: int | None = None) -> Callable[[int, float], float]:
    """A 0.1-degree sensor that steps through 50.0 to 50.6 over and over (a setpoint
    sequence): every feature of it takes a few tied values, never exceeded."""
    return lambda i, ts: 80.0 if i == spike_at else 50.0 + (i % 7) / 10


def test_a_sensor_of_few_levels_alerts_on_a_spike_far_beyond_them_and_not_on_its_levels() -> None:
    # Before, a value beyond a tied top level ranked only as rare as that level (1 in 65), and
    # so did its change: 80 degrees on a sensor of 50.0-50.6 opened nothing.
    # (A noise-free signal is a hard case for any statistics: the spike's trace in the drift's
    # average later reads as a shift too, as it did before.)
    spike_at = 1440
    opened = _run(_few_levels(spike_at), spike_at + 30)
    first = opened[0].alert
    assert (first.detector, first.opened_at.timestamp()) == ("outlier", START + spike_at * MINUTE)
    assert _run(_few_levels(), 3 * 1440) == []


def test_a_quantised_sensor_stuck_far_longer_than_its_runs_is_flagged() -> None:
    stuck_from = 1440
    opened = _after(_run(_quantised(5, stuck_from), stuck_from + 200), stuck_from)
    assert "flatline" in {c.alert.detector for c in opened}


def _flatline_after_quantised_flow(then: float) -> FlatlineDetector:
    """A flow at 32 in steps of one (mostly exactly 32), then a run at `then`."""
    rng = random.Random(8)
    level = TailModel(seed=8)
    flatline = FlatlineDetector(FlatlineSettings(), level, seed=9)
    for i in range(600):
        x = 32.0 + float(round(0.25 * rng.gauss(0.0, 1.0)))  # 31 and 33 in 2 % each
        level.add(x)
        flatline.update(float(i), x, 1e-9)
    for i in range(600, 620):
        level.add(then)
        flatline.update(float(i), then, 1e-9)
    return flatline


def test_a_quantised_flow_that_falls_two_steps_and_sits_there_is_not_an_idle_pump() -> None:
    # Its body sits on one level (5 % quantile = median), and 30 is nearer 32 than zero: a
    # flow that falls by a sixteenth is judged as a fault, not skipped as a rest.
    assert not _flatline_after_quantised_flow(30.0).resting


def test_the_same_flow_at_zero_is_an_idle_pump() -> None:
    assert _flatline_after_quantised_flow(0.0).resting


def _noise(seed: int, step_at: int | None = None, step: float = 0.0) -> Callable[[int, float], float]:
    rng = random.Random(seed)
    return lambda i, ts: 7.0 + rng.gauss(0.0, 0.5) + (step if step_at is not None and i >= step_at else 0.0)


def _load_cycle(seed: int, fault_at: int | None = None) -> Callable[[int, float], float]:
    """A compressor's load/unload cycle: 80 for five minutes, 40 for five, a reading a second;
    from `fault_at` it loads to 160 (twice the load step above loaded)."""
    rng = random.Random(seed)

    def value(i: int, ts: float) -> float:
        loaded = (i // 300) % 2 == 0
        high = 160.0 if fault_at is not None and i >= fault_at else 80.0
        return (high if loaded else 40.0) + rng.gauss(0.0, 0.5)

    return value


def test_a_load_cycle_is_learned_as_routine_and_a_step_twice_its_size_still_alerts() -> None:
    day = 86_400
    opened = _run(_load_cycle(11), day, period_s=1.0)
    # Its steps are learned from their recurrence, so after its first hour they stop alerting
    # (before, the jump feature, winsorised so a fault cannot teach it fast, kept alerting
    # on every few steps all day: 44 alerts a day).
    assert [c.alert.detector for c in _after(opened, 3600, period_s=1.0)
            if c.alert.detector == "outlier"] == []
    faulty = _run(_load_cycle(11, fault_at=day - 1200), day, period_s=1.0)
    assert any(c.alert.detector == "outlier" for c in _after(faulty, day - 1200, period_s=1.0))


@pytest.mark.parametrize("seed", [6, 7, 8])
def test_an_outlier_alert_resolves_as_soon_as_a_dip_ends(seed: int) -> None:
    # A dip of eight noise sigmas for 15 readings: the step back up is as rare as the step
    # down, but it ends the excursion (an ordinary level, back from an unusual one), so the
    # alert resolves after the usual run of normal readings instead of lingering on it.
    values, changes = _noise(seed), []
    engine = DetectionEngine("gw")
    for i in range(3100):
        dip = 4.0 if 3000 <= i < 3015 else 0.0
        changes += engine.observe("s", None, START + i * MINUTE, values(i, 0.0) - dip)
    outlier = [c for c in changes if c.alert.detector == "outlier" and c.change != "updated"]
    assert [c.change for c in outlier] == ["open", "resolved"]
    assert outlier[0].alert.opened_at.timestamp() == START + 3000 * MINUTE
    resolved_at = outlier[1].alert.resolved_at
    assert resolved_at is not None and resolved_at.timestamp() <= START + 3024 * MINUTE


def test_noise_alone_is_quiet() -> None:
    assert _run(_noise(6), 3 * 1440) == []


def test_a_step_of_four_sigma_opens_a_drift_alert_and_resolves_when_it_ends() -> None:
    engine = DetectionEngine("gw")
    values, changes = _noise(6), []
    for i in range(1800):
        step = 2.0 if 1000 <= i < 1400 else 0.0  # four noise sigmas for 400 readings
        changes += engine.observe("s", None, START + i * MINUTE, values(i, 0.0) + step)
    kinds = [(c.change, c.alert.detector) for c in changes]
    assert ("open", "drift") in kinds and ("resolved", "drift") in kinds
    resolved = next(c for c in changes if c.change == "resolved" and c.alert.detector == "drift")
    assert resolved.alert.resolved_at is not None
    assert resolved.alert.resolved_at.timestamp() <= START + 1500 * MINUTE


def test_learned_detectors_stay_quiet_during_learning_but_datasheet_limits_alert_at_once() -> None:
    profile = SensorProfile.build(DetectionSettings(), limits=LimitSettings(max=10.0))
    noise = _noise(7)
    opened = _run(lambda i, ts: 50.0 if i in (3, 150) else noise(i, ts), 190, profile=profile)
    # Reading 150 is still in the learning period: only the datasheet limit sees it.
    assert [(c.alert.detector, c.alert.details["accepted_because"]) for c in opened] == \
        [("limits", "datasheet")] * 2
    assert opened[0].alert.opened_at.timestamp() == START + 3 * MINUTE


@pytest.mark.parametrize("glitch", [1_000.0, 6553.5, 1e6])
def test_one_glitch_reading_opens_an_outlier_alert_and_no_drift(glitch: float) -> None:
    # A 16-bit error code in the data: one reading, then the sensor is normal again. It is an
    # outlier; it must not drag the drift's baseline (a false, lasting drift alert).
    rng = random.Random(11)
    engine = DetectionEngine("gw")
    changes: list[AlertChange] = []
    for i in range(900):
        value = glitch if i == 600 else 40.0 + rng.gauss(0.0, 0.3)
        changes += engine.observe("s", None, START + i, value)
    opened = [c.alert.detector for c in changes if c.change == "open"]
    assert opened == ["outlier"]
    assert engine.open_count == 0, "the outlier alert resolved once the readings were normal"


@pytest.mark.parametrize("burst", [1, 2, 5])
@pytest.mark.parametrize("glitch", [1e6, 3.4e38])  # 3.4e38: a float32 maximum as "invalid"
def test_a_glitch_is_one_alert_not_one_per_reading_while_it_decays(glitch: float, burst: int) -> None:
    # Before, the recent baseline learned the glitch and took dozens of readings to decay from
    # it: each ordinary reading meanwhile read as a new departure (3.4e38 once: ten alerts;
    # twice in a row: six).
    rng = random.Random(0)
    engine = DetectionEngine("gw")
    changes: list[AlertChange] = []
    for i in range(4500):
        value = glitch if 1500 <= i < 1500 + burst else 10.0 + rng.gauss(0.0, 0.5)
        changes += engine.observe("s", "a", START + i, value)
    assert [(c.alert.detector, c.alert.details["feature"]) for c in changes
            if c.change == "open"] == [("outlier", "level")]


def test_readings_too_large_for_arithmetic_never_blind_the_models() -> None:
    # +1.7e308 then -1.7e308 (finite, so ingest takes them) made the recent baseline -inf,
    # then NaN for good: no change was ever unusual again. Such values are not measurements:
    # they are skipped like NaN, early (while learning) or late.
    trough = int(0.75 * 1440)
    spike_at = 3 * 1440 + trough
    normal = _daily(4)
    huge = {5: 1.7e308, 6: -1.7e308, 1440: 1.7e308, 1441: -1.7e308}

    def value(i: int, ts: float) -> float:
        return huge.get(i, normal(i, ts) + (8.0 if i == spike_at else 0.0))

    opened = _after(_run(value, spike_at + 30), spike_at)
    assert [(c.alert.detector, c.alert.details["feature"]) for c in opened] == [("outlier", "change")]


def _limited(**limits: float) -> DetectionEngine:
    profile = SensorProfile.build(DetectionSettings(), limits=LimitSettings(**limits))
    return DetectionEngine("gw", DetectionSettings(), {"s": profile})


def _opened(changes: list[AlertChange]) -> list[tuple[str, str, str | None]]:
    return [(c.change, c.alert.detector, c.alert.severity) for c in changes]


def test_readings_after_one_stamped_ahead_are_still_judged_by_the_datasheet_limits() -> None:
    # One reading stamped 250 s ahead (within ingest's future skew) makes the next ones late
    # until the timestamps pass it: they are the sensor's current readings, the learned
    # detectors skip them (they need order), the datasheet limits must not go blind.
    engine = _limited(max=95.0, warn_max=85.0)
    assert engine.observe("s", None, START + 250.0, 90.0, arrival=START) != []  # warning
    changes = [c for i in range(1, 6)
               for c in engine.observe("s", None, START + i, 120.0, arrival=START + i)]
    assert ("updated", "limits", "critical") in _opened(changes), "worse than the warning"
    assert [a.severity for a in engine.open_alerts()] == ["critical"]


def test_a_late_breach_opens_a_limit_alert_that_keeps_its_hysteresis() -> None:
    engine = _limited(max=95.0, hysteresis=5.0)
    engine.observe("s", None, START + 250.0, 40.0, arrival=START)
    changes = engine.observe("s", None, START + 1, 120.0, arrival=START + 1)
    assert _opened(changes) == [("open", "limits", "critical")]
    assert changes[0].alert.opened_at.timestamp() == START + 1.0
    # 93 is inside the limit but not back by the hysteresis: still the same breach, also once
    # the readings are in order again.
    for i in range(2, 300):
        engine.observe("s", None, START + i, 93.0, arrival=START + i)
    assert engine.open_count == 1


def test_late_copies_of_readings_judged_before_are_not_judged_again() -> None:
    # A QoS 1 copy after a restart, or a replayed history: late, and arriving after its time.
    engine = _limited(max=95.0)
    changes = [c for i in range(30) for c in engine.observe(
        "s", None, START + i, 120.0 if i in (3, 4) else 40.0, arrival=START + i)]
    assert [(c.change, c.alert.detector) for c in changes] == [("open", "limits"), ("resolved", "limits")]
    restarted = _limited(max=95.0)
    restarted.load_snapshot(engine.snapshot())
    for copy in (engine, restarted):
        assert copy.observe("s", None, START + 4, 120.0, arrival=START + 40) == []
        assert copy.open_count == 0


def test_late_normal_readings_do_not_resolve_a_limit_alert_so_a_late_copy_cannot_reopen_it() -> None:
    engine = _limited(max=95.0)
    engine.observe("s", None, START + 250.0, 40.0, arrival=START)
    opened = engine.observe("s", None, START + 1, 120.0, arrival=START + 1)
    later = [c for i in range(2, 40)
             for c in engine.observe("s", None, START + i, 40.0, arrival=START + i)]
    copy = engine.observe("s", None, START + 1, 120.0, arrival=START + 41)  # inside the window
    assert _opened(opened) == [("open", "limits", "critical")]
    assert [c.change for c in later + copy if c.change != "updated"] == []
    assert [a.alert_id for a in engine.open_alerts()] == [opened[0].alert.alert_id]
    after = [c for i in range(251, 262)
             for c in engine.observe("s", None, START + i, 40.0, arrival=START + i)]
    assert [c.change for c in after] == ["resolved"], "in order again: it resolves"
