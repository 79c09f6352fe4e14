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
judged (`judged_seq`, saved in the buffer every tick once its alerts are stored); an event
that starts past it, a `FeedGapEvent`, or a tick that finds it behind and idle makes it
read the missing readings from the buffer, in order, storing alerts chunk by chunk
(tests/unit/test_slow_agent.py). While it is behind, silence is judged only up to the
arrival of the oldest reading it has not seen: a sensor is not silent because the agent
has not judged its readings yet.

After a restart the open alerts are restored from the buffer, the detectors warm up on
the readings of the last `detection.warmup_window_s` that were judged before, and the
readings committed but not judged before the stop are judged now (with alerts), so a
restart neither blinds the detectors, nor loses a fault, nor opens a second alert for a
fault that is still going on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from edge.agents.base import BaseAgent
from edge.bus import EventBus
from edge.detection.feedback import FeedbackBook, FeedbackView
from edge.detection.finding import Finding
from edge.detection.lifecycle import AlertChange, AlertTracker
from edge.detection.settings import DetectionSettings, merged
from edge.detection.suite import DetectorSuite
from edge.events import AnomalyDetectedEvent, BaseEventModel, DataProcessedEvent, FeedGapEvent
from edge.logs import RateLimitedLog
from edge.maintenance import alerts as alert_rules
from edge.maintenance.decisions import DecisionRequest, UnknownTarget, decision_record
from edge.metrics import GatewayMetrics
from edge.records import (
    FLAG_CLOCK_SUSPECT,
    AlertRecord,
    DecisionRecord,
    LabelRecord,
    Reading,
    ReadingRow,
)
from edge.settings import SensorSettings

log = logging.getLogger(__name__)

_CATCH_UP_CHUNK = 20_000
_RELEASE_SWEEP_S = 60.0


class AlertLog(Protocol):
    """The buffer's alert log, as this agent sees it."""

    async def append(self, items: Sequence[AlertRecord], decision: DecisionRecord | None = None,
                     labels: Sequence[LabelRecord] = ()) -> None: ...

    async def open_items(self) -> list[AlertRecord]: ...

    async def get(self, item_id: str) -> AlertRecord | None: ...


class ReadingsSource(Protocol):
    """The buffer's readings, for the warm-up after a restart and for catching up."""

    async def recent_readings(self, since_received_us: int, up_to_seq: int,
                              limit: int = ...) -> list[Reading]: ...

    async def readings_after(self, after_seq: int, limit: int) -> list[ReadingRow]: ...

    async def last_seq(self) -> int: ...


class PositionStore(Protocol):
    """Where the judged position survives restarts (the buffer's meta store)."""

    async def get_int(self, key: str) -> int | None: ...

    async def set_int(self, key: str, value: int) -> None: ...

    async def get_json(self, key: str) -> Any: ...

    async def set_json(self, key: str, value: Any) -> None: ...


JUDGED_SEQ_KEY = "anomaly_detection.judged_seq"
FEEDBACK_KEY = "anomaly_detection.feedback"


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
                 positions: PositionStore, clock: Callable[[], float] = time.time) -> None:
        super().__init__(agent_id, bus, metrics)
        self._settings = settings
        self._sensors = sensors
        self._alerts = alerts
        self._readings = readings
        self._positions = positions
        self._clock = clock
        self._tracker = AlertTracker(gateway_id, settings)
        self._suites: dict[str, DetectorSuite] = {}
        self._assets: dict[str, str | None] = {}
        self._unsaved: list[AlertChange] = []
        self._lock = asyncio.Lock()  # the bus worker and the clock tick take turns
        self._tick_task: asyncio.Task[None] | None = None
        self.judged_seq = 0  # every reading up to this buffer seq has been judged
        self._saved_seq = 0
        self._seq_at_last_tick = -1
        self._next_release = 0.0
        self._opened_log = RateLimitedLog(log, interval_s=10.0)
        self.feedback = FeedbackBook(settings.false_alarm_suppress_s)

    async def start(self) -> None:
        restored = await self._alerts.open_items()
        self._tracker.restore(restored)
        self.feedback.load(await self._positions.get_json(FEEDBACK_KEY) or [])
        saved = await self._positions.get_int(JUDGED_SEQ_KEY)
        # A buffer from before this position was kept: start at its end, as before.
        self.judged_seq = self._saved_seq = saved if saved is not None else \
            await self._readings.last_seq()
        warmed = await self._warm_up()
        log.info("anomaly detection ready", extra={"restored_open_alerts": len(restored),
                                                   "warmup_readings": warmed,
                                                   "judged_seq": self.judged_seq})
        self._metrics.alerts_open.set(self._tracker.open_count)
        await super().start()
        self._tick_task = asyncio.create_task(self._tick_forever(), name="anomaly-tick")

    async def stop(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        try:
            async with self._lock:
                await self._flush(None)
                await self._save_position()
        except Exception:  # the buffer may be failing; the next start re-judges what is left
            log.warning("anomaly detection stopped with unsaved alert changes", exc_info=True)
        self._opened_log.flush()  # the count of 'alert opened' lines held back
        await super().stop()

    @property
    def tracked_sensors(self) -> int:
        return len(self._suites)

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

    async def tick(self) -> None:
        """Clock work: catch up when behind and idle, judge silence when caught up, save."""
        async with self._lock:
            last_seq = await self._readings.last_seq()
            behind = self.judged_seq < last_seq
            if behind and self.judged_seq == self._seq_at_last_tick:
                await self._catch_up(last_seq)  # nothing came by event since the last tick
                behind = self.judged_seq < last_seq
            self._seq_at_last_tick = self.judged_seq
            now = self._clock()
            if behind:
                # Judge silence only up to the arrival of the oldest reading not judged yet:
                # a sensor is not silent because this agent has not seen its readings.
                oldest = await self._readings.readings_after(self.judged_seq, 1)
                if oldest:
                    now = min(now, oldest[0].received_us / 1e6)
            self._check_silence(now)
            self._release_idle(now)
            await self._flush(None)
            await self._save_position()

    def _release_idle(self, now: float) -> None:
        """Give back the detection state of sensors idle for long (none with an open alert)."""
        if now < self._next_release:
            return
        self._next_release = now + _RELEASE_SWEEP_S
        cutoff = now - self._settings.release_idle_s
        for sensor_id in [s for s, suite in self._suites.items()
                          if suite.last_arrival < cutoff and not self._tracker.has_open(s)]:
            del self._suites[sensor_id]
            self._assets.pop(sensor_id, None)

    def _check_silence(self, now: float) -> None:
        for sensor_id, suite in self._suites.items():
            finding = suite.check_silence(now)
            if finding is not None:
                self._unsaved += self._tracker.observe(
                    sensor_id, self._assets.get(sensor_id), now, (finding,),
                    frozenset({"silence"}))

    async def _save_position(self) -> None:
        # Only once every alert change up to it is stored: a restart re-judges the rest.
        if not self._unsaved and self.judged_seq != self._saved_seq:
            await self._positions.set_int(JUDGED_SEQ_KEY, self.judged_seq)
            self._saved_seq = self.judged_seq

    def _judge(self, readings: Iterable[Reading]) -> None:
        observe = self._tracker.observe
        changes = self._unsaved
        for reading in readings:
            if reading.flags & FLAG_CLOCK_SUSPECT:
                continue  # its time cannot be trusted: stored, not judged
            suite = self._suites.get(reading.sensor_id) or self._suite_for(reading)
            findings = suite.update(reading.ts_us / 1e6, reading.value, reading.received_us / 1e6)
            if findings and self.feedback.active:
                findings = self._not_suppressed(reading.sensor_id, findings)
            if findings or self._tracker.has_open(reading.sensor_id):
                changes += observe(reading.sensor_id, reading.asset_id, reading.ts_us / 1e6,
                                   findings, suite.names)

    def _not_suppressed(self, sensor_id: str, findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
        """Findings an operator's recent false-alarm decision does not silence."""
        now = self._clock()
        kept = tuple(f for f in findings if not self.feedback.suppressed(sensor_id, f.detector, now))
        if len(kept) < len(findings):
            self._metrics.anomaly_candidates.labels("false_alarm_feedback").inc(
                len(findings) - len(kept))
        return kept

    async def decide(self, request: DecisionRequest, received_at: datetime) -> DecisionRecord:
        """Apply an operator's decision about an alert (acknowledge, snooze, close, false
        alarm, undo); stored with the alert's new version. Raises UnknownTarget/Rejection."""
        async with self._lock:
            alert = await self._alerts.get(request.target_id)
            if alert is None:
                raise UnknownTarget(f"no alert {request.target_id!r}")
            updated = alert_rules.decide(alert, request, received_at)  # may raise Rejection
            if request.action in ("close", "false_alarm"):
                self._tracker.close(alert.sensor_id, alert.detector)
            detail = self._feedback_for(alert, request, received_at)
            if detail:
                updated = updated.model_copy(update={"details": {**updated.details,
                                                                 "feedback": detail}})
            record = decision_record(request, received_at, "applied",
                                     f"alert {updated.state}" + (f"; {detail}" if detail else ""))
            await self._alerts.append([updated], decision=record)
            if detail:
                await self._positions.set_json(FEEDBACK_KEY, self.feedback.to_json())
            self._metrics.alerts_open.set(self._tracker.open_count)
            change = AlertChange("closed" if updated.state == "closed" else "updated", updated)
            await self._publish(_event(self.agent_id, change, None))
            return record

    def _feedback_for(self, alert: AlertRecord, request: DecisionRequest, now: datetime) -> str:
        view: FeedbackView | None
        if request.action == "false_alarm":
            view = self.feedback.false_alarm(alert.sensor_id, alert.detector, now.timestamp(),
                                             request.decision_id)
        elif request.action == "undo_false_alarm":
            original = alert.details.get("false_alarm", {}).get("decision_id", "")
            view = self.feedback.undo(alert.sensor_id, alert.detector, str(original))
            if view is None:
                return ""
        else:
            return ""
        return (f"{alert.detector} on {alert.sensor_id}: {view.false_alarms} false alarm(s), "
                f"sensitivity x{view.sensitivity_factor}, suppressed until "
                f"{datetime.fromtimestamp(view.suppressed_until, UTC).isoformat()}"
                if view.false_alarms else f"{alert.detector} on {alert.sensor_id}: feedback undone")

    async def _catch_up(self, up_to_seq: int | None) -> None:
        """Judge the readings after `judged_seq` up to `up_to_seq` (None: the newest now).

        The target is fixed when the catch-up starts, and alerts are stored chunk by chunk,
        so a long backlog neither delays the first alert nor runs after a moving end.
        """
        target = up_to_seq if up_to_seq is not None else await self._readings.last_seq()
        while self.judged_seq < target:
            rows = [row for row in await self._readings.readings_after(self.judged_seq,
                                                                       _CATCH_UP_CHUNK)
                    if row.seq <= target]
            if not rows:
                return
            self._judge(Reading._make(row[1:]) for row in rows)
            self.judged_seq = rows[-1].seq
            await self._flush(None)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.silence_check_interval_s)
            try:
                await self.tick()
            except Exception:  # logged and retried next tick; one bad tick stops nothing
                log.exception("anomaly detection tick failed")

    async def _warm_up(self) -> int:
        since_us = int((self._clock() - self._settings.warmup_window_s) * 1_000_000)
        # Only readings judged before the stop: the rest are judged (with alerts) on catch-up.
        readings = await self._readings.recent_readings(since_us, self.judged_seq)
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
            # One line per detector and interval, with a count: a fault across a whole
            # plant must not flood the journal (edge_anomalies_total counts them all).
            self._opened_log.warning(alert.detector, "alert opened", alert_id=alert.alert_id,
                                     sensor_id=alert.sensor_id, detector=alert.detector,
                                     severity=alert.severity, reason=alert.reason)
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
        state=change.change, opened_at=alert.opened_at,
        snoozed_until=alert.details.get("snoozed_until"))
