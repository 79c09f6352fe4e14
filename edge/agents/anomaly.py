"""AnomalyDetectionAgent: runs every sensor's detectors on every committed reading.

Consumes: `DataProcessedEvent` (readings already durable in the buffer).
Publishes: `AnomalyDetectedEvent` when an alert opens, is updated, or resolves; the alert
version is written to the buffer first (and synced from there).
Config: `detection.*` (defaults, life cycle, warm-up), `sensors.<id>.limits` and
`sensors.<id>.detection` (per-sensor overrides).

After a restart the open alerts are restored from the buffer and the detectors warm up
on the readings of the last `detection.warmup_window_s`, so a restart neither blinds the
detectors nor opens a second alert for a fault that is still going on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from edge.agents.base import BaseAgent
from edge.bus import EventBus
from edge.detection.lifecycle import AlertChange, AlertTracker
from edge.detection.settings import DetectionSettings, merged
from edge.detection.suite import DetectorSuite
from edge.events import AnomalyDetectedEvent, DataProcessedEvent
from edge.metrics import GatewayMetrics
from edge.records import AlertRecord, Reading
from edge.settings import SensorSettings

log = logging.getLogger(__name__)


class AlertStore(Protocol):
    """The buffer, as this agent sees it."""

    async def append_alerts(self, alerts: Sequence[AlertRecord]) -> None: ...

    async def open_alerts(self) -> list[AlertRecord]: ...

    async def recent_readings(self, since_received_us: int, limit: int = ...) -> list[Reading]: ...


class AnomalyDetectionAgent(BaseAgent[DataProcessedEvent]):
    subscriptions = (DataProcessedEvent,)

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics, *,
                 gateway_id: str, settings: DetectionSettings,
                 sensors: dict[str, SensorSettings], store: AlertStore,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(agent_id, bus, metrics)
        self._settings = settings
        self._sensors = sensors
        self._store = store
        self._clock = clock
        self._tracker = AlertTracker(gateway_id, settings)
        self._suites: dict[str, DetectorSuite] = {}
        self._assets: dict[str, str | None] = {}
        self._silence_task: asyncio.Task[None] | None = None

    def register_capabilities(self) -> tuple[str, ...]:
        return ("limits", "zscore", "drift", "rate", "flatline", "silence", "alert_lifecycle")

    @property
    def open_alert_count(self) -> int:
        return self._tracker.open_count

    async def start(self) -> None:
        restored = await self._store.open_alerts()
        self._tracker.restore(restored)
        warmed = await self._warm_up()
        log.info("anomaly detection ready", extra={"restored_open_alerts": len(restored),
                                                   "warmup_readings": warmed})
        self._metrics.alerts_open.set(self._tracker.open_count)
        await super().start()
        self._silence_task = asyncio.create_task(self._watch_silence(), name="silence-watch")

    async def stop(self) -> None:
        if self._silence_task is not None:
            self._silence_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._silence_task
        await super().stop()

    async def process(self, item: DataProcessedEvent) -> None:
        changes: list[AlertChange] = []
        observe = self._tracker.observe
        for reading in item.readings:
            suite = self._suites.get(reading.sensor_id) or self._suite_for(reading)
            findings = suite.update(reading.ts_us / 1e6, reading.value, reading.received_us / 1e6)
            if findings or self._tracker.has_open(reading.sensor_id):
                changes += observe(reading.sensor_id, reading.asset_id, reading.ts_us / 1e6,
                                   findings, suite.names)
        if changes:
            await self._emit(changes, item.correlation_id or item.event_id)

    async def check_silence(self) -> None:
        """Ask every sensor's silence detector whether it has gone quiet (clock-driven)."""
        now = self._clock()
        changes: list[AlertChange] = []
        for sensor_id, suite in self._suites.items():
            finding = suite.check_silence(now)
            if finding is not None:
                changes += self._tracker.observe(sensor_id, self._assets.get(sensor_id), now,
                                                 (finding,), frozenset({"silence"}))
        if changes:
            await self._emit(changes, None)

    async def _watch_silence(self) -> None:
        while True:
            await asyncio.sleep(self._settings.silence_check_interval_s)
            try:
                await self.check_silence()
            except Exception:  # logged and retried next tick; one bad tick stops nothing
                log.exception("silence check failed")

    async def _warm_up(self) -> int:
        since_us = int((self._clock() - self._settings.warmup_window_s) * 1_000_000)
        readings = await self._store.recent_readings(since_us)
        for reading in readings:
            suite = self._suites.get(reading.sensor_id) or self._suite_for(reading)
            # Findings during warm-up are not alerts: those readings were judged before.
            suite.update(reading.ts_us / 1e6, reading.value, reading.received_us / 1e6)
        return len(readings)

    def _suite_for(self, reading: Reading) -> DetectorSuite:
        sensor = self._sensors.get(reading.sensor_id)
        suite = DetectorSuite(merged(self._settings.defaults, sensor.detection if sensor else None),
                              sensor.limits if sensor else None)
        self._suites[reading.sensor_id] = suite
        self._assets[reading.sensor_id] = reading.asset_id
        return suite

    async def _emit(self, changes: list[AlertChange], correlation_id: str | None) -> None:
        # Durable first: an alert that was announced is always in the buffer.
        await self._store.append_alerts([change.alert for change in changes])
        for change in changes:
            alert = change.alert
            if change.change == "open":
                self._metrics.anomalies.labels(alert.detector, alert.severity).inc()
                log.warning("alert opened", extra={"alert_id": alert.alert_id,
                                                   "sensor_id": alert.sensor_id,
                                                   "detector": alert.detector,
                                                   "severity": alert.severity,
                                                   "reason": alert.reason})
            elif change.change == "resolved":
                log.info("alert resolved", extra={"alert_id": alert.alert_id,
                                                  "sensor_id": alert.sensor_id})
            await self._publish(_event(self.agent_id, change, correlation_id))
        self._metrics.alerts_open.set(self._tracker.open_count)


def _event(source: str, change: AlertChange, correlation_id: str | None) -> AnomalyDetectedEvent:
    alert = change.alert
    return AnomalyDetectedEvent(
        source=source, correlation_id=correlation_id, alert_id=alert.alert_id,
        asset_id=alert.asset_id, sensor_id=alert.sensor_id, detector=alert.detector,
        severity=alert.severity, score=alert.score or 0.0,
        value=alert.value if alert.value is not None else float("nan"),
        reading_ts=alert.updated_at, window=alert.details.get("window", {}), reason=alert.reason,
        state=change.change, opened_at=alert.opened_at)
