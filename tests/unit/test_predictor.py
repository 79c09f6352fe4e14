"""Forecast alerts: raised on a trend towards a limit, updated, withdrawn, muted, restored."""

from __future__ import annotations

import math
import random

import orjson
import pytest

from edge.detection.lifecycle import AlertChange
from edge.detection.settings import LimitSettings
from edge.prediction.predictor import Predictor
from edge.prediction.settings import PredictionSettings

SENSOR = "pump-1/temperature"
LIMITS = LimitSettings(max=95.0, min=10.0)
FAST = PredictionSettings(seasonal_period_s=None)  # a minute a bucket, two hours fitted


def _run(predictor: Predictor, start: float, hours: float, level: object,
         period_s: float = 10.0, seed: int = 1) -> list[AlertChange]:
    """Feed `level(t)` plus noise for `hours`, evaluating every minute (as the agent does)."""
    rng = random.Random(seed)
    changes: list[AlertChange] = []
    ts = start
    while ts < start + hours * 3600:
        value = level(ts) + rng.gauss(0, 0.3)  # type: ignore[operator]
        predictor.observe(SENSOR, "pump-1", ts, value, "degC")
        if ts % 60 < period_s:
            changes += predictor.evaluate()
        ts += period_s
    return changes


def test_a_rise_towards_max_raises_one_forecast_with_time_and_interval() -> None:
    predictor = Predictor("gw", FAST, {SENSOR: LIMITS})
    _run(predictor, 0.0, 2.0, lambda t: 60.0)
    # 60 -> 95 degC in under 6 h: 6 degC an hour.
    changes = _run(predictor, 7200.0, 2.5, lambda t: 60.0 + 6.0 * (t - 7200) / 3600)
    opened = [c for c in changes if c.change == "open"]
    assert len(opened) == 1
    alert = opened[0].alert
    assert alert.detector == "forecast" and alert.state == "open"
    assert alert.reason.startswith("predicted to reach max 95 degC in ~")
    assert "80 % interval" in alert.reason
    low, high = alert.details["interval_s"]
    eta = alert.details["eta_s"]
    assert low <= eta <= (high if high is not None else math.inf)
    # At the moment it opened, the true crossing was (95 - level) / 3.5 hours away.
    opened_at = alert.opened_at.timestamp()
    truth = (95.0 - (60.0 + 6.0 * (opened_at - 7200) / 3600)) / 6.0 * 3600
    assert eta == pytest.approx(truth, rel=0.35)
    assert eta <= FAST.horizon_s


def test_a_steady_sensor_raises_nothing_and_a_falling_one_forecasts_min() -> None:
    predictor = Predictor("gw", FAST, {SENSOR: LIMITS})
    assert _run(predictor, 0.0, 6.0, lambda t: 60.0) == []
    changes = _run(predictor, 6 * 3600.0, 2.0, lambda t: 60.0 - 8.0 * (t - 6 * 3600) / 3600)
    assert [c.alert.details["bound"] for c in changes if c.change == "open"] == ["min"]


def test_a_reversed_trend_withdraws_the_forecast() -> None:
    predictor = Predictor("gw", FAST, {SENSOR: LIMITS})
    _run(predictor, 0.0, 2.0, lambda t: 60.0)
    changes = _run(predictor, 7200.0, 2.5, lambda t: 60.0 + 6.0 * (t - 7200) / 3600)
    assert predictor.open_count == 1
    top = 60.0 + 6.0 * 1.5
    # Maintenance fixed it: back down, then steady.
    changes = _run(predictor, 7200.0 + 5400, 3.0,
                   lambda t: max(60.0, top - 6.0 * (t - 12_600) / 3600))
    withdrawn = [c for c in changes if c.change == "resolved"]
    assert len(withdrawn) == 1 and withdrawn[0].alert.reason.startswith("withdrawn")
    assert predictor.open_count == 0


def test_a_closed_forecast_stays_quiet_while_the_trend_lasts() -> None:
    predictor = Predictor("gw", FAST, {SENSOR: LIMITS})
    _run(predictor, 0.0, 2.0, lambda t: 60.0)
    _run(predictor, 7200.0, 2.0, lambda t: 60.0 + 6.0 * (t - 7200) / 3600)
    assert predictor.open_count == 1
    predictor.close(SENSOR)
    changes = _run(predictor, 14_400.0, 1.0, lambda t: 72.0 + 6.0 * (t - 14_400) / 3600)
    assert [c for c in changes if c.change == "open"] == []


def test_a_daily_cycle_is_not_a_trend_once_a_day_is_known() -> None:
    """A machine that warms every afternoon: the rise is the cycle, not wear."""
    settings = PredictionSettings(horizon_s=24 * 3600.0)  # far enough to see the cycle's rise
    cycle = lambda t: 70.0 + 12.0 * math.sin(2 * math.pi * t / 86_400)  # noqa: E731
    without = Predictor("gw", settings.model_copy(update={"seasonal_period_s": None}),
                        {SENSOR: LIMITS})
    with_cycle = Predictor("gw", settings, {SENSOR: LIMITS})
    assert any(c.change == "open" for c in _run(without, 0.0, 48.0, cycle))
    assert [c for c in _run(with_cycle, 0.0, 48.0, cycle)
            if c.change == "open" and c.alert.opened_at.timestamp() > 26 * 3600] == []


def test_history_survives_a_restart_through_its_json_state() -> None:
    first = Predictor("gw", FAST, {SENSOR: LIMITS})
    _run(first, 0.0, 2.0, lambda t: 60.0)
    _run(first, 7200.0, 0.8, lambda t: 60.0 + 6.0 * (t - 7200) / 3600)
    restarted = Predictor("gw", FAST, {SENSOR: LIMITS})
    restarted.load(orjson.loads(orjson.dumps(first.to_json())))
    ramp = lambda t: 60.0 + 6.0 * (t - 7200) / 3600  # noqa: E731
    a = _run(first, 7200.0 + 2880, 1.5, ramp, seed=5)
    b = _run(restarted, 7200.0 + 2880, 1.5, ramp, seed=5)
    assert [(c.change, c.alert.alert_id) for c in a] == [(c.change, c.alert.alert_id) for c in b]
    assert any(c.change == "open" for c in b)


def test_only_sensors_with_a_max_or_min_are_forecast() -> None:
    predictor = Predictor("gw", FAST, {"a": LimitSettings(warn_max=5.0), "b": LimitSettings(max=5.0)})
    assert predictor.sensor_ids == frozenset({"b"})
