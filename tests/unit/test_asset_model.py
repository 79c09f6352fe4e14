"""The asset model: quiet while an asset's sensors keep their relation, an alert naming the
sensor when the relation breaks though each sensor alone still looks normal; rows formed from
readings that arrive at different times."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from edge.detection import ASSET_DETECTOR, DetectionEngine
from edge.detection.asset_rows import AssetRows
from edge.detection.lifecycle import AlertChange
from edge.detection.settings import AssetModelSettings, DetectionSettings
from edge.records import AlertRecord

START = 1_767_225_600.0
PERIOD_S = 10.0


def _pump_readings(seed: int, rows: int, breaks: tuple[tuple[int, int], ...] = (),
                   offset_sigmas: float = 0.0, related: bool = True,
                   pressure_sensor: bool = True, spike_at: int | None = None,
                   ) -> Iterator[tuple[int, float, list[tuple[str, float]]]]:
    """Flow, pressure and current of one pump follow its load (a daily cycle that moves the
    current by about 40 noise sigmas); within each `breaks` span of rows [start, end) the
    current departs from what the load implies. `related=False`: the current wanders on its
    own (an AR(1) of a few minutes). Yields (row, ts, [(sensor, value)]).

    (With only two sensors a broken relation cannot say which of them broke it: the third one
    is what lets the alert name the current.)"""
    rng = random.Random(seed)
    other = 0.5
    keep = math.exp(-PERIOD_S / 300.0)
    for i in range(rows):
        ts = START + i * PERIOD_S
        load = 0.5 + 0.2 * math.sin(2 * math.pi * ts / 86_400.0)
        other = 0.5 + keep * (other - 0.5) + 0.02 * math.sqrt(1 - keep * keep) * rng.gauss(0.0, 1.0)
        flow = 30.0 + 12.0 * load + rng.gauss(0.0, 0.1)
        pressure = 4.0 + 1.5 * load + rng.gauss(0.0, 0.02)
        drive = load if related else other
        current = 10.0 + 5.0 * drive + rng.gauss(0.0, 0.05)
        for start, end in breaks:
            if start <= i < end:
                current += offset_sigmas * 0.05 * min(1.0, (i - start) / 50)
        if i == spike_at:  # one reading, far out, on two sensors at once
            flow += 80 * 0.1
            pressure -= 80 * 0.02
        readings = [("pump/flow", flow)]
        if pressure_sensor:
            readings.append(("pump/pressure", pressure))
        readings.append(("pump/current", current))
        yield i, ts, readings


def _pump(seed: int, rows: int, break_from: int | None = None, offset_sigmas: float = 0.0,
          related: bool = True, pressure_sensor: bool = True,
          spike_at: int | None = None,
          suppressed: Callable[[str, str], bool] | None = None) -> list[AlertChange]:
    """The alerts `_pump_readings` opens (a break from `break_from` to the end)."""
    engine = DetectionEngine("gw")
    engine.suppressed = suppressed
    changes = []
    breaks = () if break_from is None else ((break_from, rows),)
    for _, ts, readings in _pump_readings(seed, rows, breaks, offset_sigmas, related,
                                          pressure_sensor, spike_at):
        for sensor_id, value in readings:
            changes += engine.observe(sensor_id, "pump", ts, value)
    return [c for c in changes if c.change == "open"]


def test_sensors_that_keep_their_relation_raise_no_asset_alert() -> None:
    assert [c for c in _pump(1, 6000) if c.alert.detector == ASSET_DETECTOR] == []


def test_a_broken_relation_opens_an_asset_alert_naming_the_sensor() -> None:
    # Six noise sigmas, inside the range the load moves the current: alone it looks normal.
    opened = [c for c in _pump(1, 6000, break_from=5000, offset_sigmas=6.0)
              if c.alert.detector == ASSET_DETECTOR]
    assert opened, "the relation break is found"
    alert = opened[0].alert
    assert alert.opened_at.timestamp() >= START + 5000 * PERIOD_S
    assert alert.sensor_id == "pump/current" and alert.asset_id == "pump"
    contributors = alert.details["contributors"]
    assert contributors[0]["sensor_id"] == "pump/current" and contributors[0]["share"] > 0.5
    assert alert.details["accepted_because"] in {"extreme", "persistent", "corroborated"}


def test_independent_sensors_have_no_relation_to_break() -> None:
    opened = _pump(2, 6000, break_from=5000, offset_sigmas=6.0, related=False, pressure_sensor=False)
    assert [c for c in opened if c.alert.detector == ASSET_DETECTOR] == []


def test_rows_take_the_latest_value_of_each_sensor_within_the_tolerance() -> None:
    rows = AssetRows(AssetModelSettings())
    for name in ("fast", "slow"):
        rows.join(name)
    formed = []
    for step in range(12):  # fast every 10 s, slow every 30 s
        ts = START + 10.0 * step
        if step % 3 == 0:
            formed.append(rows.add(1, ts, 100.0 + step, 30.0))
        formed.append(rows.add(0, ts, float(step), 10.0))
    made = [f for f in formed if f is not None]
    assert len(made) >= 8, "rows follow the fastest member"
    ts, row = made[-1]
    assert np.array_equal(row, np.array([10.0, 109.0])) and ts == START + 100.0


def test_a_member_that_stops_reporting_stops_the_rows() -> None:
    rows = AssetRows(AssetModelSettings())
    rows.join("a")
    rows.join("b")
    assert rows.add(0, START, 1.0, 1.0) is None
    assert rows.add(1, START, 2.0, 1.0) is not None
    made = [rows.add(0, START + t, 1.0, 1.0) for t in range(1, 20)]  # b is silent
    assert sum(m is not None for m in made) <= 3 and rows.dropped > 0  # 3 periods of tolerance


def test_a_spike_that_the_sensors_alert_is_not_alerted_again_by_the_asset_model() -> None:
    """The spike ripples through the averaged SPE for some rows; the sensors' own alerts name
    it already, so the asset model opens no second, asset-wide one."""
    opened = _pump(1, 6000, spike_at=5000)
    assert {c.alert.detector for c in opened if c.alert.sensor_id in
            ("pump/flow", "pump/pressure")} >= {"outlier"}, "the spike is alerted"
    assert [c for c in opened if c.alert.detector == ASSET_DETECTOR] == []


def test_an_eigenvalue_hovering_about_one_does_not_flip_the_modes() -> None:
    """Kaiser's rule with hysteresis: a second mode is kept (or left out) until its eigenvalue
    clears one by a margin, so refits do not change what the SPE measures back and forth."""
    from edge.detection.asset_model import kept_modes

    def eigenvalues(second: float) -> np.ndarray:
        return np.array([1.9, second, 3.0 - 1.9 - second])

    assert kept_modes(eigenvalues(1.05), None) == 2, "Kaiser's rule on a first fit"
    assert kept_modes(eigenvalues(1.05), previous=1) == 1, "not clear of one: unchanged"
    assert kept_modes(eigenvalues(1.2), previous=1) == 2
    assert kept_modes(eigenvalues(0.95), previous=2) == 2, "not clear below one: unchanged"
    assert kept_modes(eigenvalues(0.8), previous=2) == 1


def test_an_operators_false_alarm_on_the_asset_model_silences_it_whichever_sensor_it_named() -> None:
    """The asset alert is filed under its top contributor; a false-alarm decision filed under
    another member (an earlier alert's sensor) silences the asset model all the same."""
    opened = _pump(1, 6000, break_from=5000, offset_sigmas=6.0,
                   suppressed=lambda sensor, detector: detector == ASSET_DETECTOR
                   and sensor == "pump/flow")
    assert [c for c in opened if c.alert.detector == ASSET_DETECTOR] == []


def _drive(engine: DetectionEngine, readings: Iterator[tuple[int, float, list[tuple[str, float]]]],
           on_open: Callable[[int, AlertChange], None] | None = None) -> list[tuple[int, AlertChange]]:
    """Feed `_pump_readings` to `engine`; the openings and resolutions, by row."""
    seen = []
    for i, ts, values in readings:
        for sensor_id, value in values:
            for change in engine.observe(sensor_id, "pump", ts, value):
                if change.change in ("open", "resolved"):
                    seen.append((i, change))
                    if on_open is not None and change.change == "open":
                        on_open(i, change)
    return seen


def test_a_silenced_asset_model_does_not_swallow_a_members_own_fault() -> None:
    """While feedback silences the asset model, its candidate rows are no evidence: the
    current's own candidates must not be 'corroborated' by them into an asset alert that may
    not open (and so dropped); the current's own detectors alert its 20-sigma shift."""
    engine = DetectionEngine("gw")
    engine.suppressed = lambda sensor, detector: detector == ASSET_DETECTOR
    seen = _drive(engine, _pump_readings(1, 5600, ((5000, 5600),), offset_sigmas=20.0))
    opened = [(i, c.alert) for i, c in seen if c.change == "open"]
    assert [a for _, a in opened if a.detector == ASSET_DETECTOR] == []
    assert any(a.sensor_id == "pump/current" and 5000 <= i < 5600 for i, a in opened), opened
    counts = engine.candidate_counts
    assert counts.get("accepted_corroborated", 0) == 0
    # per episode (a few), not per candidate row (hundreds over these 600 rows)
    assert 1 <= counts["rejected_false_alarm_feedback"] <= 10


def test_an_asset_alert_closed_by_an_operator_lets_the_next_fault_alert() -> None:
    """A close mutes the asset model's condition until its rows are normal again, as for a
    sensor; then the mute lifts, and the member it was filed under is not 'alerting' for good
    (which would freeze the model and swallow every later fault)."""
    engine = DetectionEngine("gw")
    closed: list[int] = []

    def close_soon(i: int, change: AlertChange) -> None:
        if change.alert.detector == ASSET_DETECTOR and not closed:
            assert engine.close(change.alert.sensor_id, ASSET_DETECTOR)
            closed.append(i)

    seen = _drive(engine, _pump_readings(1, 8200, ((5000, 5600), (7000, 7600)), 6.0), close_soon)
    asset_opened = [i for i, c in seen if c.change == "open" and c.alert.detector == ASSET_DETECTOR]
    assert closed and asset_opened[0] == closed[0] and 5000 <= closed[0] < 5600
    assert [i for i in asset_opened[1:] if i < 7000] == [], "the closed condition stays quiet"
    assert any(7000 <= i < 7600 for i in asset_opened[1:]), "the next fault alerts again"
    assert not engine._tracker.has_open("pump/current", besides="drift")


def test_a_restored_asset_alert_without_a_model_resolves_and_the_model_relearns() -> None:
    """After a restart without the asset model (no snapshot), nothing can judge its open
    alert: it resolves at the asset's next reading, saying why, and the model learns again."""
    first = DetectionEngine("gw")
    seen = _drive(first, _pump_readings(1, 5200, ((5000, 5200),), 6.0))
    restored = [a for a in first.open_alerts() if a.detector == ASSET_DETECTOR]
    assert restored, seen
    second = DetectionEngine("gw")
    second.restore(restored)
    later = _drive(second, ((i, START + (6000 + i) * PERIOD_S, values)
                            for i, _, values in _pump_readings(2, 3000)))
    resolved = [(i, c.alert) for i, c in later if c.change == "resolved"]
    assert resolved and resolved[0][0] == 0 and resolved[0][1].alert_id == restored[0].alert_id
    assert "not restored" in resolved[0][1].details["resolved_because"]
    model = second._assets["pump"].model
    assert model is not None and model.learned, "the members joined and the model relearned"


def test_a_snapshot_in_the_first_half_of_learning_restores_the_same_model() -> None:
    """Before its first fit the model has chosen no modes: a snapshot then must not pin the
    placeholder (one mode), or the restarted model keeps a different shape by hysteresis."""
    from edge.detection.asset_model import AssetModel

    settings = AssetModelSettings()
    rng = np.random.default_rng(3)
    mixing = rng.normal(size=(4, 4))
    rows = rng.normal(size=(settings.learning_rows + 400, 4)) @ mixing
    straight = AssetModel(4, settings, seed=1)
    early = settings.learning_rows // 4
    for row in rows[:early]:
        straight.update(row, may_learn=True)
    state = straight.state()
    assert state["kept"] is None
    restarted = AssetModel(4, settings, seed=1)
    restarted.load(state)
    p_straight = [straight.update(row, may_learn=True) for row in rows[early:]]
    p_restarted = [restarted.update(row, may_learn=True) for row in rows[early:]]
    assert straight.learned and restarted.learned
    assert straight.state()["kept"] == restarted.state()["kept"]
    assert p_straight == p_restarted


@pytest.mark.parametrize("restart_at", [5300, 7020],
                         ids=["while the closed condition lasts", "after its mute lifted"])
def test_an_asset_close_holds_across_a_restart_and_ends_with_its_condition(
        restart_at: int) -> None:
    """The agent restores the latest closes after a restart (or a worker recovery). At 5300
    the closed condition still lasts: muted again, it does not reopen. At 7020 the mute had
    lifted and a new fault has begun: the restart must not take it for the closed one (lifted
    closes are saved with the models). Either way the next fault alerts as without a restart."""
    readings = list(_pump_readings(1, 8200, ((5000, 5600), (7000, 7600)), 6.0))
    first = DetectionEngine("gw")
    closed: list[AlertRecord] = []

    def close(_: int, change: AlertChange) -> None:
        if change.alert.detector == ASSET_DETECTOR and not closed:
            assert first.close(change.alert.sensor_id, ASSET_DETECTOR)
            closed.append(change.alert.model_copy(update={"state": "closed"}))

    _drive(first, iter(readings[:restart_at]), close)
    assert closed
    assert (first._assets["pump"].muted_sensor is None) == (restart_at > 5600)
    second = DetectionEngine("gw")
    second.load_snapshot(first.snapshot())
    second.restore(first.open_alerts())
    second.restore_closed(closed)
    opened = [i for i, c in _drive(second, iter(readings[restart_at:]))
              if c.change == "open" and c.alert.detector == ASSET_DETECTOR]
    assert opened and 7000 <= opened[0] < 7600, opened


def test_closing_a_restored_asset_alert_no_model_judges_leaves_no_mute() -> None:
    """With asset models switched off after a restart, nothing can lift a close's mute: the
    close drops the alert for good, so the sensor is not 'alerting' (nor unreleasable) for
    ever."""
    first = DetectionEngine("gw")
    _drive(first, _pump_readings(1, 5100, ((5000, 5100),), 6.0))
    [restored] = [a for a in first.open_alerts() if a.detector == ASSET_DETECTOR]
    off = DetectionSettings.model_validate({"asset_model": {"enabled": False}})
    second = DetectionEngine("gw", off)
    second.restore([restored])
    assert second.close(restored.sensor_id, ASSET_DETECTOR)
    _drive(second, ((i, START + (6000 + i) * PERIOD_S, values)
                    for i, _, values in _pump_readings(2, 300)))
    assert not second._tracker.has_open(restored.sensor_id, besides="drift")
    second.release(restored.sensor_id)  # refused while it counted as alerting


def test_an_asset_whose_member_stops_reporting_lets_go_of_its_alert_and_mute() -> None:
    """With a member silent for good no row forms: nothing could judge the asset alert. It
    resolves, saying why (the member's silence alert says what happened); a close's mute is
    dropped; the sensor it was filed under can be released."""
    for close_it in (False, True):
        engine = DetectionEngine("gw")
        _drive(engine, _pump_readings(1, 5300, ((5000, 5300),), 6.0))
        [alert] = [a for a in engine.open_alerts() if a.detector == ASSET_DETECTOR]
        if close_it:
            assert engine.close(alert.sensor_id, ASSET_DETECTOR)
        without_pressure = ((i, START + (5300 + i) * PERIOD_S,
                             [(s, v) for s, v in values if s != "pump/pressure"])
                            for i, _, values in _pump_readings(2, 300))
        seen = _drive(engine, without_pressure)
        resolved = [c.alert for _, c in seen
                    if c.change == "resolved" and c.alert.detector == ASSET_DETECTOR]
        if close_it:
            assert resolved == [] and engine._assets["pump"].muted_sensor is None
        else:
            assert [a.alert_id for a in resolved] == [alert.alert_id]
            assert "stopped reporting" in resolved[0].details["resolved_because"]
        assert not engine._tracker.has_open(alert.sensor_id, besides="silence")
        engine.release(alert.sensor_id)


def test_a_sensor_close_whose_mute_lifted_is_not_muted_again_by_a_restart() -> None:
    from edge.detection import SensorProfile
    from edge.detection.settings import LimitSettings

    settings = DetectionSettings(resolve_after_s=0, resolve_after_readings=3)
    profiles = {"s": SensorProfile.build(settings, limits=LimitSettings(max=50.0))}
    first = DetectionEngine("gw", settings, profiles=profiles)
    [opened] = first.observe("s", "a", 1.0, 60.0)
    assert first.close("s", "limits")
    for t in range(2, 8):
        first.observe("s", "a", float(t), 20.0)  # normal: the mute lifts
    second = DetectionEngine("gw", settings, profiles=profiles)
    second.load_snapshot(first.snapshot())
    second.restore_closed([opened.alert.model_copy(update={"state": "closed"})])
    [again] = second.observe("s", "a", 8.0, 61.0)
    assert again.change == "open"
