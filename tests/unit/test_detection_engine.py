"""DetectionEngine, the one decision path: alert contents, ids, restarts (restore, snapshots),
release of idle sensors, silence by reading time, candidate counts and the benchmark entry
points the scorers call."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from edge.detection import (
    DetectionEngine,
    DetectionSettings,
    DetectorSettings,
    SensorInAlertError,
    SensorProfile,
    SnapshotError,
    SnapshotVersionError,
)
from edge.detection.benchmark import nab_flags, skab_in_alarm
from edge.detection.lifecycle import AlertChange, alert_id
from edge.detection.likelihood import budget_per_day
from edge.detection.settings import ValidationSettings
from edge.detection.validation import Candidate, Validator
from edge.records import Reading

START = 1_767_225_600.0
SPIKE_AT = 400


def _series(seed: int, readings: int = 500, spike_at: int | None = SPIKE_AT) -> list[float]:
    rng = random.Random(seed)
    values = [20.0 + rng.gauss(0.0, 1.0) for _ in range(readings)]
    if spike_at is not None:
        values[spike_at] = 60.0
    return values


def _feed(engine: DetectionEngine, values: list[float], sensor: str = "s", first: int = 0,
          period_s: float = 60.0) -> list[AlertChange]:
    changes: list[AlertChange] = []
    for i, value in enumerate(values[first:], start=first):
        changes += engine.observe(sensor, "a", START + i * period_s, value)
    return changes


def test_an_alert_carries_likelihood_feature_and_why_it_was_accepted() -> None:
    opened = [c.alert for c in _feed(DetectionEngine("gw"), _series(1)) if c.change == "open"]
    assert len(opened) == 1
    alert = opened[0]
    assert alert.detector == "outlier" and alert.value == 60.0 and alert.asset_id == "a"
    assert alert.score is not None and alert.score == alert.details["likelihood"]
    assert 0.99 < alert.score <= 1.0
    assert alert.details["accepted_because"] == "extreme"
    assert alert.details["feature"] in {"level", "change"}
    assert alert.details["rate_per_day"] <= budget_per_day(DetectionSettings().sensitivity)
    assert alert.alert_id == alert_id("gw", "s", "outlier", START + SPIKE_AT * 60.0)


def test_a_replay_of_the_same_readings_derives_the_same_alert_ids() -> None:
    first = [c.alert.alert_id for c in _feed(DetectionEngine("gw"), _series(1))]
    again = [c.alert.alert_id for c in _feed(DetectionEngine("gw"), _series(1))]
    assert first and first == again


def test_redelivered_and_out_of_order_readings_are_not_judged_again() -> None:
    engine = DetectionEngine("gw")
    _feed(engine, _series(1), first=0)
    assert engine.observe("s", "a", START + 10 * 60.0, 999.0) == []  # older than the newest
    assert engine.observe("s", "a", START + 499 * 60.0, 999.0) == []  # the same time again


def test_a_restored_open_alert_is_updated_not_reopened() -> None:
    values = _series(2, 1800, spike_at=None)
    for i in range(1500, 1700):
        values[i] += 8.0  # a lasting step
    before = DetectionEngine("gw")
    changes = _feed(before, values[:1600])
    drift = next(c.alert for c in changes if c.change == "open" and c.alert.detector == "drift")
    after = DetectionEngine("gw")  # the daemon restarts with its snapshot and open alerts
    after.load_snapshot(before.snapshot())
    after.restore(before.open_alerts())
    later = _feed(after, values, first=1600)
    assert not [c for c in later if c.change == "open" and c.alert.detector == "drift"]
    assert any(c.alert.alert_id == drift.alert_id and c.change == "resolved" for c in later)


def test_a_snapshot_restores_what_was_learned() -> None:
    values = _series(3, 800, spike_at=700)
    learned = DetectionEngine("gw")
    _feed(learned, values[:600])
    restored = DetectionEngine("gw")
    report = restored.load_snapshot(learned.snapshot())
    assert report.sensors_restored == 1 and report.assets_restored == 1 and not report.skipped
    assert restored.snapshot() == learned.snapshot()
    cold = DetectionEngine("gw")
    assert [c.alert for c in _feed(restored, values, first=600)] == \
        [c.alert for c in _feed(learned, values, first=600)]
    assert _feed(cold, values, first=600) == [], "a cold engine is still learning at reading 700"


def test_a_damaged_or_foreign_snapshot_is_a_typed_error_and_nothing_is_taken() -> None:
    engine = DetectionEngine("gw")
    _feed(engine, _series(4, 300, spike_at=None))
    good = engine.snapshot()
    for bad in (good[:-20], good[:40] + b"x" + good[41:], b"not a snapshot", b""):
        with pytest.raises(SnapshotError):
            DetectionEngine("gw").load_snapshot(bad)
    foreign = good.replace(b'"version": 1', b'"version": 99', 1)
    with pytest.raises(SnapshotVersionError):
        DetectionEngine("gw").load_snapshot(foreign)


def test_a_sensor_whose_settings_changed_relearns_instead_of_loading() -> None:
    engine = DetectionEngine("gw")
    _feed(engine, _series(5, 300, spike_at=None))
    changed = SensorProfile.build(DetectionSettings(), override=DetectorSettings.model_validate(
        {"drift": {"slow_span": 500}}))
    other = DetectionEngine("gw", DetectionSettings(), {"s": changed})
    report = other.load_snapshot(engine.snapshot())
    assert report.sensors_restored == 0 and "s" in report.skipped
    sensitivity_only = SensorProfile.build(DetectionSettings(), override=DetectorSettings(sensitivity=0.2))
    assert DetectionEngine("gw", DetectionSettings(), {"s": sensitivity_only}) \
        .load_snapshot(engine.snapshot()).sensors_restored == 1


def test_a_sensor_with_an_open_alert_is_never_released() -> None:
    engine = DetectionEngine("gw")
    _feed(engine, _series(6, SPIKE_AT + 1))
    assert engine.open_count == 1
    with pytest.raises(SensorInAlertError):
        engine.release("s")


def test_a_released_sensor_comes_back_with_what_it_had_learned() -> None:
    values = _series(7, 800, spike_at=700)
    kept = DetectionEngine("gw")
    _feed(kept, values[:600])
    released = DetectionEngine("gw")
    _feed(released, values[:600])
    saved = released.release("s")
    assert saved is not None and released.sensor_count == 0
    assert released.adopt("s", saved)
    assert [c.alert for c in _feed(released, values, first=600)] == \
        [c.alert for c in _feed(kept, values, first=600)]


def test_silence_is_judged_on_arrival_and_resolved_by_a_reading() -> None:
    """Without an arrival time (recorded data), the reading time stands in for it."""
    engine = DetectionEngine("gw")
    for i in range(30):
        engine.observe("s", "a", START + i * 10.0, 1.0 + (i % 3))
    assert engine.tick(START + 300.0) == []  # 10 s after the last: live
    opened = engine.tick(START + 400.0)
    assert [(c.change, c.alert.detector) for c in opened] == [("open", "silence")]
    changes = []
    for i in range(40, 60):
        changes += engine.observe("s", "a", START + i * 10.0, 2.0)
    assert ("resolved", "silence") in [(c.change, c.alert.detector) for c in changes]


def test_a_backfill_of_old_readings_never_opens_a_silence_alert() -> None:
    engine = DetectionEngine("gw")
    for i in range(100):  # a day-old burst, delivered now
        engine.observe("s", "a", START - 86_400.0 + i * 10.0, float(i % 5), START)
    assert engine.tick(START + 3600.0) == []


@pytest.mark.parametrize("bad_ts", [math.nan, math.inf, -math.inf, 1e18])
def test_a_reading_without_a_usable_time_is_skipped_and_the_sensor_still_judged(bad_ts: float) -> None:
    # NaN raised (and left the sensor's last time NaN: blind for good); 1e18 raised in the
    # alert tracker (no date that far).
    engine = DetectionEngine("gw")
    for i in range(400):
        engine.observe("s", "a", START + i * 60, 50.0 + (i % 7) * 0.1)
    assert engine.observe("s", "a", bad_ts, 50.0) == []
    engine.learn("s", "a", bad_ts, 50.0)
    opened = [c for c in engine.observe("s", "a", START + 400 * 60, 5000.0) if c.change == "open"]
    assert [c.alert.detector for c in opened] == ["outlier"]


def test_readings_batches_are_judged_like_single_readings() -> None:
    values = _series(8)
    single = _feed(DetectionEngine("gw"), values)
    batch = DetectionEngine("gw").observe_readings(
        Reading("s", "a", round((START + i * 60.0) * 1e6), v, None, None, 0, 0)
        for i, v in enumerate(values))
    assert [c.alert for c in batch] == [c.alert for c in single]


def test_candidates_are_counted_once_per_episode_by_outcome() -> None:
    validator = Validator(ValidationSettings(persist_readings=3, persist_gap_readings=2))
    candidate = Candidate("s", None, "outlier", "change", 0.0, 0.0, period_s=60.0)
    assert validator.consider(candidate) is None  # one candidate reading: pending
    validator.quiet("s", {"outlier"})
    validator.quiet("s", {"outlier"})  # two quiet readings end the episode
    assert validator.counts == {"rejected_transient": 1}
    for _ in range(2):
        assert validator.consider(candidate) is None
    assert validator.consider(candidate) == "persistent"
    assert validator.consider(candidate._replace(kind="change", extreme=True)) == "extreme"
    assert validator.counts == {"rejected_transient": 1, "accepted_persistent": 1,
                                "accepted_extreme": 1}


def test_the_engine_exposes_and_drains_candidate_counts() -> None:
    engine = DetectionEngine("gw")
    _feed(engine, _series(9))
    assert engine.candidate_counts.get("accepted_extreme", 0) >= 1
    drained = engine.drain_candidate_counts()
    assert drained == {k: v for k, v in drained.items() if v} and engine.candidate_counts == {}


def _datetimes(n: int) -> list[datetime]:
    first = datetime(2026, 1, 1)  # naive, as the scorers pass them
    return [first + timedelta(minutes=5 * i) for i in range(n)]


def test_nab_flags_has_the_scorers_signature_and_is_causal() -> None:
    values = np.array(_series(10, 600, spike_at=500))
    stamps = _datetimes(600)
    flags = nab_flags(stamps, values)
    assert flags.dtype == bool and flags.shape == (600,) and flags[500]
    assert np.array_equal(nab_flags(stamps[:550], values[:550]), flags[:550])


def test_skab_in_alarm_has_the_scorers_signature() -> None:
    rng = np.random.default_rng(11)
    columns = {"flow": 32.0 + rng.normal(0, 0.4, 500), "current": 1.0 + rng.normal(0, 0.3, 500)}
    columns["flow"][450:] += 30.0
    alarm = skab_in_alarm([t.replace(tzinfo=None) for t in _datetimes(500)], columns)
    assert alarm.dtype == bool and alarm.shape == (500,)
    assert alarm[460:].all() and not alarm[:300].any()


def test_timestamps_with_a_zone_are_read_as_given() -> None:
    stamps = [t.replace(tzinfo=UTC) for t in _datetimes(600)]
    values = np.array(_series(10, 600, spike_at=500))
    assert np.array_equal(nab_flags(stamps, values), nab_flags(_datetimes(600), values))


def test_a_relation_break_is_one_asset_alert_not_also_a_sensor_alert() -> None:
    """The broken sensor's own drift candidate, corroborated by the asset model, opens the
    asset model's alert (naming it), and while that alert names it, its further candidates
    are the same episode: one alert, where the engineer should look."""
    from edge.simulator.factory import DEFAULT_SENSORS, FactoryModel, Fault

    pump = tuple(s for s in DEFAULT_SENSORS if s.asset_id == "pump-1")
    model = FactoryModel(seed=7, period_s=10.0, sensors=pump)
    start, duration = 1_700_006_400.0, 3 * 86_400.0
    fault = Fault("relation_break", "pump-1/current", "pump-1", start + duration - 6000,
                  start + duration - 2000, 4.0)
    for faults in ([fault], []):
        engine = DetectionEngine("gw")
        opened = [(c.alert.detector, c.alert.sensor_id)
                  for ts, spec, value in model.stream(start, duration, faults)
                  for c in engine.observe(spec.sensor_id, spec.asset_id, ts, value)
                  if c.change == "open"]
        assert opened == ([("asset_model", "pump-1/current")] if faults else [])


def test_how_rare_reads_at_a_glance() -> None:
    from edge.detection.engine import _once_in

    assert _once_in(1e-30) == _once_in(0.0) == "less than once in a thousand years"
    assert _once_in(1 / 3650) == "about once in 10 years"
    assert _once_in(1 / 20) == "about once in 20 days"
    assert _once_in(2.0) == "about 2.0 times a day"


def test_a_sensor_joining_an_asset_during_its_alert_waits_and_the_alert_still_resolves() -> None:
    """A new member changes the asset's rows and its model relearns, but a model never learns
    while its alert is open: joined then, the alert could never resolve. It joins after."""
    import random

    from edge.simulator.factory import DEFAULT_SENSORS, FactoryModel, Fault

    pump = tuple(s for s in DEFAULT_SENSORS if s.asset_id == "pump-1")
    model = FactoryModel(seed=7, period_s=10.0, sensors=pump)
    start, duration = 1_700_006_400.0, 3 * 86_400.0
    fault = Fault("relation_break", "pump-1/current", "pump-1", start + duration - 6000,
                  start + duration - 2000, 4.0)
    engine = DetectionEngine("gw")
    noise = random.Random(3)
    changes: list[str] = []
    for ts, spec, value in model.stream(start, duration, [fault]):
        for c in engine.observe(spec.sensor_id, spec.asset_id, ts, value):
            if c.alert.detector == "asset_model":
                changes.append(c.change)
        if changes and spec.sensor_id == pump[0].sensor_id:  # a newcomer, once it is open
            engine.observe("pump-1/newcomer", "pump-1", ts + 0.5, 20.0 + noise.gauss(0, 1))
    assert changes[0] == "open" and "resolved" in changes, changes
    assert "pump-1/newcomer" in engine._assets["pump-1"].rows.members, "it joined after"


def test_a_released_sensor_returning_takes_its_model_back_even_after_a_restart() -> None:
    """Released for memory, a model is kept compressed and saved with the snapshot: the sensor
    returning after a restart judges as if it had never been released."""
    values = _series(7, 800, spike_at=700)
    kept = DetectionEngine("gw")
    _feed(kept, values[:600])
    released = DetectionEngine("gw")
    _feed(released, values[:600])
    assert released.release("s") is not None
    assert released.sensor_count == 0 and released.released_count == 1
    restarted = DetectionEngine("gw")
    restarted.load_snapshot(released.snapshot())
    assert restarted.released_count == 1
    expected = [c.alert for c in _feed(kept, values, first=600)]
    assert expected, "the spike is caught by what was learned"
    assert [c.alert for c in _feed(restarted, values, first=600)] == expected
    assert restarted.released_count == 0 and restarted.sensor_count == 1
