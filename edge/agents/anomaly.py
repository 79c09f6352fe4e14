"""AnomalyDetectionAgent: runs every sensor's detectors on every committed reading.

Consumes: `DataProcessedEvent` (readings already durable in the buffer) and `FeedGapEvent`.
Publishes: `AnomalyDetectedEvent` when an alert opens, is updated, or resolves; the alert
version is written to the buffer first (and synced from there).
Config: `detection.*` (defaults, life cycle, warm-up), `sensors.<id>.limits` and
`sensors.<id>.detection` (per-sensor overrides).

Retry policy: retried (3 attempts), because `process` is idempotent under retry: detector
state advances once per reading (a reading already judged is skipped), and the alert
changes it produced wait in `_unsaved` until the buffer has them. A retry after a failed
alert write finds no new reading and stores and announces what waits, once
(tests/unit/test_anomaly_retry.py). Should every attempt fail, the changes still wait
and go out with the next event.

Catch-up: the pipeline never waits for this agent; when its queue is full the event is
dropped for it. The agent remembers the buffer sequence number of the last reading it
judged; an event that starts past it, or a `FeedGapEvent`, makes it read the missing
readings from the buffer first, in order (tests/unit/test_slow_agent.py).

After a restart the open alerts are restored from the buffer and the detectors warm up
on the readings of the last `detection.warmup_window_s`, so a restart neither blinds the
detectors nor opens a second alert for a fault that is still going on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from edge.agents.base import BaseAgent
from edge.bus import EventBus
from edge.detection.lifecycle import AlertChange, AlertTracker
from edge.detection.settings import DetectionSettings, merged
from edge.detection.suite import DetectorSuite
from edge.events import AnomalyDetectedEvent, BaseEventModel, DataProcessedEvent, FeedGapEvent
from edge.metrics import GatewayMetrics
from edge.records import AlertRecord, Reading
from edge.settings import SensorSettings

log = logging.getLogger(__name__)

_CATCH_UP_CHUNK = 20_000


class AlertLog(Protocol):
    """The buffer's alert log, as this agent sees it."""

    async def append(self, items: Sequence[AlertRecord]) -> None: ...

    async def open_items(self) -> list[AlertRecord]: ...


class ReadingsSource(Protocol):
    """The buffer's readings, for the warm-up after a restart and for catching up."""

    async def recent_readings(self, since_received_us: int, limit: int = ...) -> list[Reading]: ...

    async def readings_after(self, after_seq: int, limit: int) -> list[tuple[int, Reading]]: ...

    async def last_seq(self) -> int: ...


class AnomalyDetectionAgent(BaseAgent):
    subscriptions = (DataProcessedEvent, FeedGapEvent)
    max_attempts = 3
    # Committed batches waiting to be judged; more is dropped and caught up from the buffer,
    # which bounds the memory a slow moment can take.
    queue_size = 64
    capabilities = ("limits", "zscore", "drift", "rate", "flatline", "silence", "alert_lifecycle")

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics, *,
                 gateway_id: str, settings: DetectionSettings,
                 sensors: dict[str, SensorSettings], alerts: AlertLog, readings: ReadingsSource,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(agent_id, bus, metrics)
        self._settings = settings
        self._sensors = sensors
        self._alerts = alerts
        self._readings = readings
        self._clock = clock
        self._tracker = AlertTracker(gateway_id, settings)
        self._suites: dict[str, DetectorSuite] = {}
        self._assets: dict[str, str | None] = {}
        self._unsaved: list[AlertChange] = []
        self._lock = asyncio.Lock()  # the bus worker and the silence clock take turns
        self._silence_task: asyncio.Task[None] | None = None
        self.judged_seq = 0  # every reading up to this buffer seq has been judged
        self.caught_up_readings = 0

    async def start(self) -> None:
        restored = await self._alerts.open_items()
        self._tracker.restore(restored)
        self.judged_seq = await self._readings.last_seq()
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

    def backlog(self, last_committed_seq: int) -> int | None:
        return max(0, last_committed_seq - self.judged_seq)

    async def process(self, event: BaseEventModel) -> None:
        async with self._lock:
            if isinstance(event, FeedGapEvent):
                await self._catch_up(None)
            elif isinstance(event, DataProcessedEvent) and event.last_seq is not None \
                    and event.last_seq > self.judged_seq:
                if event.first_seq is not None and event.first_seq > self.judged_seq + 1:
                    await self._catch_up(event.first_seq - 1)
                self._judge(event.readings)
                self.judged_seq = event.last_seq
            await self._flush(event.correlation_id or event.event_id)

    async def check_silence(self) -> None:
        """Ask every sensor's silence detector whether it has gone quiet (clock-driven)."""
        async with self._lock:
            now = self._clock()
            for sensor_id, suite in self._suites.items():
                finding = suite.check_silence(now)
                if finding is not None:
                    self._unsaved += self._tracker.observe(
                        sensor_id, self._assets.get(sensor_id), now, (finding,),
                        frozenset({"silence"}))
            await self._flush(None)

    def _judge(self, readings: Iterable[Reading]) -> None:
        observe = self._tracker.observe
        changes = self._unsaved
        for reading in readings:
            suite = self._suites.get(reading.sensor_id) or self._suite_for(reading)
            findings = suite.update(reading.ts_us / 1e6, reading.value, reading.received_us / 1e6)
            if findings or self._tracker.has_open(reading.sensor_id):
                changes += observe(reading.sensor_id, reading.asset_id, reading.ts_us / 1e6,
                                   findings, suite.names)

    async def _catch_up(self, up_to_seq: int | None) -> None:
        """Judge the readings after `judged_seq` (up to `up_to_seq`, or all) from the buffer."""
        while up_to_seq is None or self.judged_seq < up_to_seq:
            rows = await self._readings.readings_after(self.judged_seq, _CATCH_UP_CHUNK)
            if up_to_seq is not None:
                rows = [row for row in rows if row[0] <= up_to_seq]
            if not rows:
                return
            self._judge(reading for _, reading in rows)
            self.judged_seq = rows[-1][0]
            self.caught_up_readings += len(rows)

    async def _watch_silence(self) -> None:
        while True:
            await asyncio.sleep(self._settings.silence_check_interval_s)
            try:
                await self.check_silence()
            except Exception:  # logged and retried next tick; one bad tick stops nothing
                log.exception("silence check failed")

    async def _warm_up(self) -> int:
        since_us = int((self._clock() - self._settings.warmup_window_s) * 1_000_000)
        readings = await self._readings.recent_readings(since_us)
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

    async def _flush(self, correlation_id: str | None) -> None:
        """Store the waiting alert changes, then announce them (durable first)."""
        if not self._unsaved:
            return
        changes = self._unsaved
        await self._alerts.append([change.alert for change in changes])
        self._unsaved = []
        for change in changes:
            self._log_change(change)
            await self._publish(_event(self.agent_id, change, correlation_id))
        self._metrics.alerts_open.set(self._tracker.open_count)

    def _log_change(self, change: AlertChange) -> None:
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


def _event(source: str, change: AlertChange, correlation_id: str | None) -> AnomalyDetectedEvent:
    alert = change.alert
    return AnomalyDetectedEvent(
        source=source, correlation_id=correlation_id, alert_id=alert.alert_id,
        asset_id=alert.asset_id, sensor_id=alert.sensor_id, detector=alert.detector,
        severity=alert.severity, score=alert.score or 0.0,
        value=alert.value if alert.value is not None else float("nan"),
        reading_ts=alert.updated_at, window=alert.details.get("window", {}), reason=alert.reason,
        state=change.change, opened_at=alert.opened_at)
