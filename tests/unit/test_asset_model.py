"""The asset model: quiet while an asset's sensors keep their relation, an alert naming the
sensor when the relation breaks though each sensor alone still looks normal; rows formed from
readings that arrive at different times."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np

from edge.detection import ASSET_DETECTOR, DetectionEngine
from edge.detection.asset_rows import AssetRows
from edge.detection.lifecycle import AlertChange
from edge.detection.settings import AssetModelSettings

START = 1_767_225_600.0
PERIOD_S = 10.0


def _pump(seed: int, rows: int, break_from: int | None = None, offset_sigmas: float = 0.0,
          related: bool = True, pressure_sensor: bool = True,
          spike_at: int | None = None,
          suppressed: Callable[[str, str], bool] | None = None) -> list[AlertChange]:
    """Flow, pressure and current of one pump follow its load (a daily cycle that moves the
    current by about 40 noise sigmas); from `break_from` the current departs from what the
    load implies. `related=False`: the current wanders on its own (an AR(1) of a few minutes).

    (With only two sensors a broken relation cannot say which of them broke it: the third one
    is what lets the alert name the current.)"""
    rng = random.Random(seed)
    engine = DetectionEngine("gw")
    engine.suppressed = suppressed
    changes = []
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
        if break_from is not None and i >= break_from:
            current += offset_sigmas * 0.05 * min(1.0, (i - break_from) / 50)
        if i == spike_at:  # one reading, far out, on two sensors at once
            flow += 80 * 0.1
            pressure -= 80 * 0.02
        changes += engine.observe("pump/flow", "pump", ts, flow)
        if pressure_sensor:
            changes += engine.observe("pump/pressure", "pump", ts, pressure)
        changes += engine.observe("pump/current", "pump", ts, current)
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
