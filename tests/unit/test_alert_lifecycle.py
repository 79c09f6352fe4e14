"""AlertTracker: open once, update (not re-open), resolve after a normal span; stable ids."""

from __future__ import annotations

from edge.detection.finding import Finding
from edge.detection.lifecycle import AlertTracker, alert_id
from edge.detection.settings import DetectionSettings

SETTINGS = DetectionSettings(resolve_after_s=10, resolve_after_readings=3, update_interval_s=5)


def _finding(ts: float, severity: str = "warning") -> tuple[Finding, ...]:
    return (Finding("outlier", severity, 7.0, 99.0, ts, "spike"),)  # type: ignore[arg-type]


def test_a_lasting_condition_opens_once_updates_then_resolves_after_the_span() -> None:
    tracker = AlertTracker("gw", SETTINGS)
    changes = []
    for t in range(0, 12):  # abnormal for 12 s
        changes += tracker.observe("s", "a", float(t), _finding(float(t)))
    for t in range(12, 40):  # normal again
        changes += tracker.observe("s", "a", float(t), ())
    kinds = [c.change for c in changes]
    assert kinds == ["open", "updated", "updated", "resolved"]  # updates at most every 5 s
    resolved = changes[-1].alert
    assert resolved.updated_at.timestamp() == 21.0  # 10 s after the last abnormal reading
    assert len({c.alert.alert_id for c in changes}) == 1


def test_worse_severity_updates_at_once() -> None:
    tracker = AlertTracker("gw", SETTINGS)
    tracker.observe("s", "a", 0.0, _finding(0.0))
    changes = tracker.observe("s", "a", 1.0, _finding(1.0, "critical"))
    assert changes[0].change == "updated" and changes[0].alert.severity == "critical"


def test_short_normal_gaps_do_not_resolve_so_alerts_do_not_flap() -> None:
    tracker = AlertTracker("gw", SETTINGS)
    changes = []
    for t in range(60):
        findings = _finding(float(t)) if t % 4 == 0 else ()
        changes += tracker.observe("s", "a", float(t), findings)
    assert [c.change for c in changes].count("open") == 1


def test_ids_are_derived_from_gateway_sensor_detector_and_opening_time() -> None:
    first = AlertTracker("gw", SETTINGS).observe("s", "a", 5.0, _finding(5.0))[0].alert
    replay = AlertTracker("gw", SETTINGS).observe("s", "a", 5.0, _finding(5.0))[0].alert
    other_gateway = AlertTracker("gw2", SETTINGS).observe("s", "a", 5.0, _finding(5.0))[0].alert
    assert first.alert_id == replay.alert_id == alert_id("gw", "s", "outlier", 5.0)
    assert other_gateway.alert_id != first.alert_id


def test_restored_open_alerts_are_updated_not_reopened() -> None:
    before = AlertTracker("gw", SETTINGS)
    opened = before.observe("s", "a", 0.0, _finding(0.0))[0].alert
    after = AlertTracker("gw", SETTINGS)
    after.restore([opened])
    changes = after.observe("s", "a", 30.0, _finding(30.0))
    assert [c.change for c in changes] == ["updated"]
    assert changes[0].alert.alert_id == opened.alert_id


def test_a_silence_check_does_not_count_as_a_normal_reading_for_other_detectors() -> None:
    tracker = AlertTracker("gw", SETTINGS)
    tracker.observe("s", "a", 0.0, _finding(0.0))
    for t in range(1, 100):
        assert tracker.observe("s", "a", float(t), (), frozenset({"silence"})) == []
    assert tracker.open_count == 1


def test_a_condition_closed_by_an_operator_alerts_again_once_the_sensor_was_normal() -> None:
    from edge.detection import DetectionEngine, SensorProfile
    from edge.detection.settings import LimitSettings

    settings = DetectionSettings(resolve_after_s=0, resolve_after_readings=3)
    engine = DetectionEngine("gw", settings, profiles={
        "s": SensorProfile.build(settings, limits=LimitSettings(max=50.0))})
    [opened] = engine.observe("s", "a", 1.0, 60.0)
    assert engine.close("s", "limits")
    assert engine.observe("s", "a", 2.0, 61.0) == [], "muted while the condition lasts"
    for t in range(3, 8):  # normal: no detector is hot, the mute must still see them
        assert engine.observe("s", "a", float(t), 20.0) == []
    [again] = engine.observe("s", "a", 8.0, 62.0)
    assert again.change == "open" and again.alert.alert_id != opened.alert.alert_id


def test_a_restored_acknowledged_alert_resolves_by_reading_time_not_the_decision_time() -> None:
    """Acknowledged at 300 s on the gateway's clock while the sensor's clock says 10 s: after a
    restart the alert still resolves by the sensor's readings, not 290 s later."""
    from datetime import UTC, datetime

    tracker = AlertTracker("gw", SETTINGS)
    opened = tracker.observe("s", "a", 10.0, _finding(10.0))[0].alert
    acknowledged = opened.model_copy(update={
        "updated_at": datetime.fromtimestamp(300.0, UTC),
        "details": {**opened.details, "acknowledged": {"by": "op"}}})
    restarted = AlertTracker("gw", SETTINGS)
    restarted.restore([acknowledged])
    changes = []
    for t in range(11, 40):
        changes += restarted.observe("s", "a", float(t), ())
    assert [c.change for c in changes] == ["resolved"]
    assert changes[0].alert.details["acknowledged"] == {"by": "op"}


def test_a_restored_close_is_lifted_by_reading_time_not_the_close_time() -> None:
    """Closed at 300 s on the gateway's clock while the sensor's clock says 10 s: after a
    restart the mute lifts after the resolve span of readings, not once they reach 310 s."""
    from datetime import UTC, datetime

    tracker = AlertTracker("gw", SETTINGS)
    opened = tracker.observe("s", "a", 10.0, _finding(10.0))[0].alert
    closed = opened.model_copy(update={"state": "closed",
                                       "updated_at": datetime.fromtimestamp(300.0, UTC)})
    restarted = AlertTracker("gw", SETTINGS)
    restarted.restore_muted([closed])
    for t in range(11, 25):
        restarted.observe("s", "a", float(t), ())
    assert not restarted.is_muted("s")
    assert [c.change for c in restarted.observe("s", "a", 25.0, _finding(25.0))] == ["open"]


def test_a_restored_alert_with_a_nonsense_reading_time_falls_back_to_its_last_version() -> None:
    """details come back from storage as JSON: a boolean or an integer too large for a float
    is no time; the alert resolves by `updated_at` instead of failing to restore."""
    from datetime import UTC, datetime

    for nonsense in (True, 10**400, "10", float("nan")):
        tracker = AlertTracker("gw", SETTINGS)
        opened = tracker.observe("s", "a", 10.0, _finding(10.0))[0].alert
        odd = opened.model_copy(update={
            "updated_at": datetime.fromtimestamp(20.0, UTC),
            "details": {**opened.details, "last_abnormal_ts": nonsense}})
        restarted = AlertTracker("gw", SETTINGS)
        restarted.restore([odd])
        early = [c for t in range(21, 29) for c in restarted.observe("s", "a", float(t), ())]
        assert early == [], f"{nonsense!r}: resolves by updated_at (20 s), not earlier"
        late = [c for t in range(30, 34) for c in restarted.observe("s", "a", float(t), ())]
        assert [c.change for c in late] == ["resolved"], repr(nonsense)
