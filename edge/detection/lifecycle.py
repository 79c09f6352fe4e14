"""Alert life cycle, per (sensor, detector): opened once, updated while the condition lasts,
resolved after the sensor has been normal for a span. Pure code, no I/O.

Alert ids are derived from (gateway, sensor, detector, time of the opening reading), so a
replay of the same readings derives the same id, and the central upsert keeps one row.
Open alerts are restored from the buffer after a restart, so a fault that outlives the
daemon updates its alert instead of opening a second one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from edge.detection.finding import SEVERITY_RANK, Finding
from edge.detection.settings import DetectionSettings
from edge.records import AlertRecord

Change = Literal["open", "updated", "resolved", "closed"]  # closed: by an operator
_NONE_OPEN: dict[str, object] = {}
LIFTED_KEPT = 1024  # closes whose mute has lifted, remembered (newest): as many as are restored


@dataclass(frozen=True, slots=True)
class AlertChange:
    change: Change
    alert: AlertRecord

    def __reduce__(self) -> tuple[type[AlertChange], tuple[Change, AlertRecord]]:
        # Compiled by mypyc, a frozen class unpickles only through its constructor.
        return AlertChange, (self.change, self.alert)


@dataclass(slots=True)
class _OpenAlert:
    alert: AlertRecord
    last_abnormal_ts: float
    last_emitted_ts: float
    normal_readings: int = 0
    abnormal_readings: int = 1


def alert_id(gateway_id: str, sensor_id: str, detector: str, opened_ts: float) -> str:
    key = f"{gateway_id}|{sensor_id}|{detector}|{round(opened_ts * 1_000_000)}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class AlertTracker:
    """Turns detector findings into alert versions (AlertChange) to store and announce."""

    def __init__(self, gateway_id: str, settings: DetectionSettings) -> None:
        self._gateway_id = gateway_id
        self._resolve_after_s = settings.resolve_after_s
        self._resolve_after_readings = settings.resolve_after_readings
        self._update_interval_s = settings.update_interval_s
        self._open: dict[str, dict[str, _OpenAlert]] = {}
        # Closed by an operator while the condition lasted: quiet until the sensor is normal.
        self._muted: dict[str, dict[str, _OpenAlert]] = {}
        # The alert ids of closes whose mute has lifted (oldest first), saved with the models:
        # a restart must not mute them again (a new episode would be taken for the old one).
        self._lifted: dict[str, None] = {}

    @property
    def open_count(self) -> int:
        return sum(len(by_detector) for by_detector in self._open.values())

    def open_alerts(self) -> list[AlertRecord]:
        return [o.alert for by_detector in self._open.values() for o in by_detector.values()]

    def restore(self, alerts: Iterable[AlertRecord]) -> None:
        """Take back the alerts that were open when the daemon stopped."""
        for alert in alerts:
            if alert.state == "open":
                # The reading time of its last abnormal reading, not `updated_at`: an
                # operator's decision stamps that on the gateway's clock, and against a
                # sensor clock behind it the alert would resolve only once readings caught up.
                ts = _reading_ts(alert)
                self._open.setdefault(alert.sensor_id, {})[alert.detector] = _OpenAlert(
                    alert, last_abnormal_ts=ts, last_emitted_ts=ts)

    def restore_muted(self, alerts: Iterable[AlertRecord]) -> None:
        """Take back the conditions operators closed: muted again until the sensor has been
        normal by the resolve rule (harmless if it already was: the first normal readings
        lift it), so a restart does not reopen what a person closed."""
        for alert in alerts:
            if alert.state == "closed" and not self.is_open(alert.sensor_id, alert.detector) \
                    and not self.lifted(alert.alert_id):
                ts = _reading_ts(alert)  # as in `restore`: reading time, not the close's
                self._muted.setdefault(alert.sensor_id, {}).setdefault(
                    alert.detector, _OpenAlert(alert, last_abnormal_ts=ts, last_emitted_ts=ts))

    def take_decided(self, alert: AlertRecord) -> bool:
        """An operator decided about an open alert (acknowledge, snooze): its stored version is
        the one the next version builds on, so what they decided is carried forward."""
        state = self._open.get(alert.sensor_id, {}).get(alert.detector)
        if state is None or state.alert.alert_id != alert.alert_id or alert.state != "open":
            return False
        state.alert = alert
        return True

    def is_muted(self, sensor_id: str) -> bool:
        """An operator closed an alert of this sensor while its condition lasted."""
        return sensor_id in self._muted

    def has_open(self, sensor_id: str, besides: str | None = None) -> bool:
        """An alert of `sensor_id` is open, or closed while its condition lasts (muted);
        `besides`: one detector not to count."""
        if besides is None:
            return sensor_id in self._open or sensor_id in self._muted
        return any(detector != besides for by_detector in (self._open.get(sensor_id),
                                                          self._muted.get(sensor_id))
                   if by_detector for detector in by_detector)

    def any_alerting(self, sensor_ids: Iterable[str], besides: str | None = None) -> bool:
        """`has_open` for any of `sensor_ids` (per asset row: cheap while nothing is open)."""
        open_, muted = self._open, self._muted
        if not open_ and not muted:
            return False
        return any((sensor_id in open_ or sensor_id in muted) and self.has_open(sensor_id, besides)
                   for sensor_id in sensor_ids)

    def is_muted_detector(self, sensor_id: str, detector: str) -> bool:
        muted_here = self._muted.get(sensor_id)
        return muted_here is not None and detector in muted_here

    def close(self, sensor_id: str, detector: str) -> bool:
        """An operator closed the alert: drop it, and open none for the same condition until
        the sensor has been normal by the resolve rule (so a close does not flap)."""
        open_here = self._open.get(sensor_id)
        if open_here is None or detector not in open_here:
            return False
        state = open_here.pop(detector)
        if not open_here:
            del self._open[sensor_id]
        state.normal_readings = 0
        self._muted.setdefault(sensor_id, {})[detector] = state
        return True

    def unmute(self, sensor_id: str, detector: str) -> None:
        """Forget a close's mute (its condition can no longer be judged)."""
        muted_here = self._muted.get(sensor_id)
        if muted_here is not None:
            state = muted_here.pop(detector, None)
            if state is not None:
                self._lift(state.alert.alert_id)
            if not muted_here:
                del self._muted[sensor_id]

    def lifted(self, alert_id: str) -> bool:
        """The mute of this closed alert has lifted (as far as this tracker knows)."""
        return alert_id in self._lifted

    @property
    def lifted_ids(self) -> list[str]:
        return list(self._lifted)

    def remember_lifted(self, alert_ids: Iterable[str]) -> None:
        """Take back the lifted closes saved with a snapshot."""
        for alert_id in alert_ids:
            self._lift(alert_id)

    def _lift(self, alert_id: str) -> None:
        self._lifted[alert_id] = None
        while len(self._lifted) > LIFTED_KEPT:
            del self._lifted[next(iter(self._lifted))]

    def open_detectors(self, sensor_id: str) -> Container[str]:
        """The detectors with an open alert on `sensor_id` (a live view; empty: none)."""
        return self._open.get(sensor_id, _NONE_OPEN)

    def is_open(self, sensor_id: str, detector: str) -> bool:
        open_here = self._open.get(sensor_id)
        return open_here is not None and detector in open_here

    def observe(self, sensor_id: str, asset_id: str | None, ts: float,
                findings: tuple[Finding, ...],
                judged: frozenset[str] | None = None) -> list[AlertChange]:
        """`judged` detectors looked at `sensor_id` at `ts` (all, if None); `findings` fired.

        Open alerts of judged detectors that did not fire move towards resolution.
        """
        open_here = self._open.get(sensor_id)
        muted = self._muted.get(sensor_id)
        if not findings and not open_here and not muted:
            return []
        changes: list[AlertChange] = []
        fired = set()
        for finding in findings:
            fired.add(finding.detector)
            if muted is not None and finding.detector in muted:
                muted[finding.detector].last_abnormal_ts = finding.ts
                muted[finding.detector].normal_readings = 0
                continue
            change = self._abnormal(sensor_id, asset_id, finding)
            if change is not None:
                changes.append(change)
        if open_here:
            for detector, state in list(open_here.items()):
                if detector not in fired and (judged is None or detector in judged):
                    change = self._normal(sensor_id, detector, state, ts)
                    if change is not None:
                        changes.append(change)
        if muted:
            self._unmute_normal(sensor_id, muted, fired, judged, ts)
        return changes

    def _unmute_normal(self, sensor_id: str, muted: dict[str, _OpenAlert], fired: set[str],
                       judged: frozenset[str] | None, ts: float) -> None:
        for detector, state in list(muted.items()):
            if detector in fired or (judged is not None and detector not in judged):
                continue
            state.normal_readings += 1
            if state.normal_readings >= self._resolve_after_readings and \
                    ts - state.last_abnormal_ts >= self._resolve_after_s:
                del muted[detector]
                self._lift(state.alert.alert_id)
        if not muted:
            del self._muted[sensor_id]

    def _abnormal(self, sensor_id: str, asset_id: str | None, finding: Finding) -> AlertChange | None:
        by_detector = self._open.setdefault(sensor_id, {})
        state = by_detector.get(finding.detector)
        if state is None:
            alert = AlertRecord(
                alert_id=alert_id(self._gateway_id, sensor_id, finding.detector, finding.ts),
                asset_id=asset_id, sensor_id=sensor_id, detector=finding.detector,
                severity=finding.severity, state="open", score=finding.score,
                value=_finite(finding.value), reason=finding.reason,
                details={**finding.details, "window": finding.window, "abnormal_readings": 1,
                         "last_abnormal_ts": finding.ts},
                opened_at=_at(finding.ts), updated_at=_at(finding.ts))
            by_detector[finding.detector] = _OpenAlert(alert, finding.ts, finding.ts)
            return AlertChange("open", alert)
        state.last_abnormal_ts = finding.ts
        state.normal_readings = 0
        state.abnormal_readings += 1
        worse = SEVERITY_RANK[finding.severity] > SEVERITY_RANK[state.alert.severity]
        if not worse and finding.ts - state.last_emitted_ts < self._update_interval_s:
            return None
        state.alert = state.alert.model_copy(update={
            "severity": finding.severity if worse else state.alert.severity,
            "score": finding.score, "value": _finite(finding.value), "reason": finding.reason,
            "details": {**state.alert.details, **finding.details, "window": finding.window,
                        "abnormal_readings": state.abnormal_readings,
                        "last_abnormal_ts": finding.ts},
            "updated_at": _at(max(finding.ts, state.alert.updated_at.timestamp())),
        })
        state.last_emitted_ts = finding.ts
        return AlertChange("updated", state.alert)

    def resolve_now(self, sensor_id: str, detector: str, ts: float,
                    because: str | None = None) -> AlertChange | None:
        """Resolve an open alert at once (its condition ended by an event, not by readings:
        a Sparkplug node that was offline is born again); `because` is kept in its details."""
        state = self._open.get(sensor_id, {}).get(detector)
        if state is None:
            return None
        if because is not None:
            state.alert = state.alert.model_copy(
                update={"details": {**state.alert.details, "resolved_because": because}})
        state.normal_readings = self._resolve_after_readings
        state.last_abnormal_ts = min(state.last_abnormal_ts, ts - self._resolve_after_s)
        return self._normal(sensor_id, detector, state, ts)

    def _normal(self, sensor_id: str, detector: str, state: _OpenAlert, ts: float) -> AlertChange | None:
        state.normal_readings += 1
        if state.normal_readings < self._resolve_after_readings or \
                ts - state.last_abnormal_ts < self._resolve_after_s:
            return None
        del self._open[sensor_id][detector]
        if not self._open[sensor_id]:
            del self._open[sensor_id]
        resolved_at = _at(max(ts, state.alert.updated_at.timestamp()))
        alert = state.alert.model_copy(update={
            "state": "resolved", "updated_at": resolved_at, "resolved_at": resolved_at,
            "details": {**state.alert.details, "abnormal_readings": state.abnormal_readings}})
        return AlertChange("resolved", alert)


def _reading_ts(alert: AlertRecord) -> float:
    """The reading time of the alert's last abnormal reading (details written by this
    module), never later than its last version; `updated_at` where the details lack it."""
    updated = alert.updated_at.timestamp()
    last = alert.details.get("last_abnormal_ts")
    if type(last) not in (int, float):  # bool is an int: not a time
        return updated
    try:
        ts = float(last)  # type: ignore[arg-type]
    except OverflowError:
        return updated
    return min(ts, updated) if math.isfinite(ts) else updated


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
