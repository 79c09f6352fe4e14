"""Forecast alerts: raised when a sensor trends towards a datasheet limit, withdrawn when the
trend stops. Pure code, no I/O; the PredictionAgent stores and announces what it returns.

A forecast is raised when the trend towards `max` (or `min`) is significant (`raise_z`)
and the limit is predicted within `horizon_s`; it is updated as the estimate moves (at most
every `update_interval_s`), stays up while the value is beyond the limit (the prediction came
true; the limits detector raises its own alert), and is withdrawn after `withdraw_after`
evaluations in a row without a trend worth the name (below `withdraw_z`, away from the
limit, or a crossing beyond twice the horizon). An operator's close mutes the sensor until
the same withdrawal rule says its trend has stopped.

Times are reading times, as for every alert; the interval is also kept relative
(`details.interval_s`), so a task can be due on the gateway's clock before the early end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from edge.detection.lifecycle import AlertChange, alert_id
from edge.detection.settings import LimitSettings
from edge.prediction.series import BucketSeries
from edge.prediction.settings import PredictionSettings
from edge.prediction.trend import Trend, fit_trend
from edge.records import AlertRecord

DETECTOR = "forecast"
Bound = Literal["max", "min"]


@dataclass(frozen=True, slots=True)
class Forecast:
    """When the fitted trend reaches a limit, seconds after `at` (reading time)."""

    bound: Bound
    limit: float
    at: float
    eta_s: float
    low_s: float  # the interval's early end
    high_s: float  # the interval's late end (inf: the trend may yet stop short of the limit)
    trend: Trend
    span_s: float  # the history it was fitted on
    reached: bool  # the value is already beyond the limit

    def reason(self, unit: str | None, confidence: float) -> str:
        limit = f"{self.bound} {self.limit:g}{' ' + unit if unit else ''}"
        if self.reached:
            return f"reached {limit}, as predicted"
        late = f"-{_duration(self.high_s)}" if math.isfinite(self.high_s) else " or later"
        return (f"predicted to reach {limit} in ~{_duration(self.eta_s)}, "
                f"{round(confidence * 100)} % interval {_duration(self.low_s)}{late}")


def forecast(trend: Trend, limits: LimitSettings, at: float, last_value: float,
             span_s: float) -> Forecast | None:
    """The crossing the trend points at, or None if it points at no configured limit.

    A value already beyond a limit is that limit `reached`, whatever the trend does now.
    """
    bounds: tuple[tuple[Bound, float | None], ...] = (("max", limits.max), ("min", limits.min))
    for bound, limit in bounds:
        if limit is not None and (last_value >= limit if bound == "max" else last_value <= limit):
            return Forecast(bound, limit, at, 0.0, 0.0, 0.0, trend, span_s, reached=True)
    rising = trend.slope > 0
    limit = limits.max if rising else limits.min
    if limit is None or trend.slope == 0.0:
        return None
    distance = limit - trend.level
    if distance * trend.slope <= 0:  # the fitted level is past it: as good as reached
        return Forecast("max" if rising else "min", limit, at, 0.0, 0.0, 0.0, trend, span_s,
                        reached=True)
    fast = trend.slope_high if rising else trend.slope_low
    slow = trend.slope_low if rising else trend.slope_high
    eta = distance / trend.slope
    low = distance / fast if fast * trend.slope > 0 else eta
    high = distance / slow if slow * trend.slope > 0 else math.inf
    return Forecast("max" if rising else "min", limit, at, eta, min(low, eta), max(high, eta),
                    trend, span_s, reached=False)


def _duration(seconds: float) -> str:
    if seconds < 5400:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 2 * 86_400:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86_400)} d"


@dataclass(slots=True)
class _Sensor:
    series: BucketSeries
    limits: LimitSettings
    asset_id: str | None = None
    calm: int = 0  # evaluations in a row without a trend worth a forecast
    alert: AlertRecord | None = None  # the open forecast
    muted: Bound | None = None  # closed by an operator while this trend lasted
    last_emitted: float = -math.inf


class Predictor:
    """Forecasts for every sensor with a `max` or `min` limit."""

    def __init__(self, gateway_id: str, settings: PredictionSettings,
                 limits: dict[str, LimitSettings]) -> None:
        self._gateway_id = gateway_id
        self._settings = settings
        self._sensors = {sensor_id: _Sensor(BucketSeries(settings.bucket_s, settings.history_s),
                                            sensor_limits)
                         for sensor_id, sensor_limits in limits.items()
                         if sensor_limits.max is not None or sensor_limits.min is not None}

    @property
    def sensor_ids(self) -> frozenset[str]:
        return frozenset(self._sensors)

    @property
    def open_count(self) -> int:
        return sum(1 for s in self._sensors.values() if s.alert is not None)

    def observe(self, sensor_id: str, asset_id: str | None, ts: float, value: float,
                unit: str | None) -> None:
        sensor = self._sensors.get(sensor_id)
        if sensor is not None:
            sensor.series.add(ts, value)
            sensor.asset_id = asset_id
            sensor.series.unit = unit

    def evaluate(self) -> list[AlertChange]:
        """Judge every sensor that closed a bucket since the last call."""
        changes: list[AlertChange] = []
        for sensor_id, sensor in self._sensors.items():
            if sensor.series.closed:
                sensor.series.closed = 0
                change = self._judge(sensor_id, sensor)
                if change is not None:
                    changes.append(change)
        return changes

    def restore(self, alerts: Iterable[AlertRecord]) -> None:
        """Take back the forecasts that were open when the daemon stopped."""
        for alert in alerts:
            sensor = self._sensors.get(alert.sensor_id)
            if sensor is not None and alert.detector == DETECTOR and alert.state == "open":
                sensor.alert = alert
                sensor.last_emitted = alert.updated_at.timestamp()

    def close(self, sensor_id: str) -> None:
        """An operator closed the forecast: none again until this trend has stopped."""
        sensor = self._sensors.get(sensor_id)
        if sensor is not None:
            if sensor.alert is not None:
                sensor.muted = sensor.alert.details.get("bound", "max")
            sensor.alert = None
            sensor.calm = 0

    def take_decided(self, alert: AlertRecord) -> bool:
        """An operator acknowledged or snoozed the open forecast: later versions build on it."""
        sensor = self._sensors.get(alert.sensor_id)
        if sensor is None or sensor.alert is None or sensor.alert.alert_id != alert.alert_id \
                or alert.state != "open":
            return False
        sensor.alert = alert
        return True

    def to_json(self) -> dict[str, Any]:
        return {sensor_id: {"series": s.series.to_json(), "calm": s.calm, "muted": s.muted}
                for sensor_id, s in self._sensors.items() if s.series.end > -math.inf}

    def load(self, state: dict[str, Any]) -> None:
        for sensor_id, saved in state.items():
            sensor = self._sensors.get(sensor_id)
            if sensor is not None:
                sensor.series.load(saved["series"])
                sensor.calm = int(saved["calm"])
                sensor.muted = saved["muted"]

    def _judge(self, sensor_id: str, sensor: _Sensor) -> AlertChange | None:
        settings = self._settings
        series = sensor.series
        if series.span_s < settings.min_span_s:
            return None
        predicted = self._forecast(series, sensor.limits)
        held = sensor.muted or (sensor.alert.details.get("bound", "max") if sensor.alert else None)
        calm = self._calm(predicted, held)
        sensor.calm = sensor.calm + 1 if calm else 0
        if sensor.muted is not None:
            if sensor.calm >= settings.withdraw_after:
                sensor.muted = None
            return None
        if sensor.alert is None:
            if predicted is not None and self._worth_raising(predicted) and \
                    self._beyond_cycle(series, predicted):
                return self._open(sensor_id, sensor, predicted)
            return None
        if sensor.calm >= settings.withdraw_after:
            return self._withdraw(sensor, series.end)
        if predicted is not None and not calm and \
                series.end - sensor.last_emitted >= settings.update_interval_s:
            return self._update(sensor, predicted)
        return None

    def _forecast(self, series: BucketSeries, limits: LimitSettings) -> Forecast | None:
        # One window: its recent halves were tried (a new trend shows sooner there), and
        # raised a false forecast per sensor-day on the fault-free plant for 20 % more lead.
        t, y = series.arrays(self._settings.window_s)
        return forecast(fit_trend(t, y, self._settings.confidence), limits, series.end,
                        series.last_value, self._settings.window_s)

    def _worth_raising(self, predicted: Forecast) -> bool:
        z = abs(predicted.trend.z)
        return not predicted.reached and z >= self._settings.raise_z and \
            predicted.eta_s <= self._settings.horizon_s

    def _beyond_cycle(self, series: BucketSeries, predicted: Forecast) -> bool:
        """The trend is more than the daily cycle: the change against a period ago trends
        towards the limit too, fast enough to reach it within the horizon.

        Judged once a period of history exists (a new sensor is judged on its trend alone).
        """
        period = self._settings.seasonal_period_s
        if period is None or series.span_s < period + self._settings.min_span_s:
            return True
        t, change = series.change_since(period, predicted.span_s)
        if len(t) < 10:
            return True
        excess = fit_trend(t, change, self._settings.confidence)
        if excess.z * predicted.trend.z <= 0 or abs(excess.z) < self._settings.raise_z:
            return False
        # The limit must be in reach at the pace beyond the cycle alone.
        return (predicted.limit - predicted.trend.level) / excess.slope <= self._settings.horizon_s

    def _calm(self, predicted: Forecast | None, bound: Bound | None) -> bool:
        """No trend worth a forecast on `bound` (the held one, or any if None)."""
        if predicted is None or (bound is not None and predicted.bound != bound):
            return True
        if predicted.reached:
            return False
        return abs(predicted.trend.z) < self._settings.withdraw_z or \
            predicted.eta_s > 2 * self._settings.horizon_s

    def _severity(self, predicted: Forecast) -> Literal["warning", "critical"]:
        soon = predicted.reached or predicted.low_s <= self._settings.critical_within_s
        return "critical" if soon else "warning"

    def _details(self, sensor: _Sensor, predicted: Forecast) -> dict[str, Any]:
        trend = predicted.trend
        return {"bound": predicted.bound, "limit": predicted.limit, "reached": predicted.reached,
                "eta_s": round(predicted.eta_s), "interval_s": [
                    round(predicted.low_s),
                    round(predicted.high_s) if math.isfinite(predicted.high_s) else None],
                "confidence": self._settings.confidence,
                "evaluated_at": _iso(predicted.at),  # what interval_s counts from
                "predicted_at": _iso(predicted.at + predicted.eta_s),
                "slope_per_h": trend.slope * 3600, "level": trend.level, "z": round(trend.z, 2),
                "window_s": predicted.span_s, "unit": sensor.series.unit}

    def _open(self, sensor_id: str, sensor: _Sensor, predicted: Forecast) -> AlertChange:
        at = predicted.at
        alert = AlertRecord(
            alert_id=alert_id(self._gateway_id, sensor_id, DETECTOR, at),
            asset_id=sensor.asset_id, sensor_id=sensor_id, detector=DETECTOR,
            severity=self._severity(predicted), state="open", score=abs(predicted.trend.z),
            value=sensor.series.last_value,
            reason=predicted.reason(sensor.series.unit, self._settings.confidence),
            details=self._details(sensor, predicted), opened_at=_at(at), updated_at=_at(at))
        sensor.alert = alert
        sensor.last_emitted = at
        return AlertChange("open", alert)

    def _update(self, sensor: _Sensor, predicted: Forecast) -> AlertChange | None:
        assert sensor.alert is not None
        reason = predicted.reason(sensor.series.unit, self._settings.confidence)
        severity = self._severity(predicted)
        if reason == sensor.alert.reason and severity == sensor.alert.severity:
            return None
        sensor.alert = sensor.alert.model_copy(update={
            "severity": severity, "score": abs(predicted.trend.z),
            "value": sensor.series.last_value, "reason": reason,
            # what operators decided (acknowledged, snoozed) is carried forward
            "details": {**sensor.alert.details, **self._details(sensor, predicted)},
            "updated_at": _at(max(predicted.at, sensor.alert.updated_at.timestamp()))})
        sensor.last_emitted = predicted.at
        return AlertChange("updated", sensor.alert)

    def _withdraw(self, sensor: _Sensor, at: float) -> AlertChange:
        assert sensor.alert is not None
        alert = sensor.alert.model_copy(update={
            "state": "resolved", "value": sensor.series.last_value,
            "reason": f"withdrawn: the trend stopped ({sensor.alert.reason})",
            "updated_at": _at(max(at, sensor.alert.updated_at.timestamp())),
            "resolved_at": _at(max(at, sensor.alert.updated_at.timestamp()))})
        sensor.alert = None
        sensor.calm = 0
        return AlertChange("resolved", alert)


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _iso(ts: float) -> str:
    return _at(ts).isoformat().replace("+00:00", "Z")
