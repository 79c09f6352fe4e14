"""AnomalyDetectionAgent: runs the detection engine on every committed reading.

Consumes: `DataProcessedEvent` (readings already durable in the buffer), `FeedGapEvent`, and
`NodeStateEvent` (a Sparkplug node or device died: its sensors are stale, one alert says so).
Publishes: `AnomalyDetectedEvent` when an alert opens, is updated, or resolves; the alert
version is written to the buffer first (and synced from there).
Config: `detection.*` (sensitivity, learning, detectors, validation, asset model, life
cycle), `sensors.<id>.limits` and `sensors.<id>.detection`, `assets.<id>.detection`.

The decisions are the engine's (edge/detection/engine.py, docs/detection.md); this agent
adds storage, events, the clock, operators' decisions and false-alarm feedback. The engine
runs where its host says (edge/agents/detection_host.py): by default in a worker process on
the other core, so judging never takes CPU from commits and acknowledgements. Should the
worker die, a new one is started and recovers as after a restart (below), from the saved
position: alert changes not stored yet are judged again, and restored open alerts keep a
fault that is still going on from opening a second alert.

Retry policy: retried (3 attempts), because `process` is idempotent under retry: the
engine judges each reading once (an older or repeated timestamp is skipped, and a reading
already judged is not read again), and the alert changes it produced wait in `_unsaved`
until the buffer has them. A retry after a failed alert write finds no new reading and
stores and announces what waits, once (tests/unit/test_anomaly_retry.py). Should every
attempt fail, the changes still wait and go out with the next event.

Catch-up: the pipeline never waits for this agent; when its queue is full the event is
dropped for it. The agent remembers the buffer sequence number of the last reading it
judged (`judged_seq`, saved in the buffer every tick once its alerts are stored); an event
that starts past it, a `FeedGapEvent`, or a tick that finds it behind and idle makes it
read the missing readings from the buffer, in order, storing alerts chunk by chunk
(tests/unit/test_slow_agent.py). While it is behind, silence is judged only up to the
arrival of the oldest reading it has not seen: a sensor is not silent because the agent
has not judged its readings yet.

Restarts: what the models learned is saved in the buffer (`detection.snapshot_interval_s`
and at stop), always at a judged position whose alerts are stored. After a restart the
snapshot is loaded, the readings judged after it are learned again without alerts, the
open alerts are restored, and the readings committed but not judged before the stop are
judged now (with alerts): a restart neither blinds the detectors, nor loses a fault, nor
opens a second alert for a fault that is still going on. Without a usable snapshot the
models learn from the last `detection.warmup_window_s` of judged readings instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from edge.agents.base import BaseAgent
from edge.agents.detection_host import (
    DetectionHost,
    DetectionWorkerError,
    InlineDetection,
    WorkerDetection,
)
from edge.agents.detection_shards import ShardedDetection
from edge.agents.follow import ReadingsSource, catch_up, catch_up_rows
from edge.bus import EventBus
from edge.detection.feedback import FEEDBACK_KEY, FeedbackBook, FeedbackView
from edge.detection.lifecycle import AlertChange
from edge.detection.profiles import AssetProfile, SensorProfile
from edge.detection.session import DetectionSession
from edge.detection.settings import DetectionSettings
from edge.detection.snapshot import SnapshotError
from edge.events import (
    AnomalyDetectedEvent,
    BaseEventModel,
    DataProcessedEvent,
    FeedGapEvent,
    NodeStateEvent,
)
from edge.logs import RateLimitedLog
from edge.maintenance import alerts as alert_rules
from edge.maintenance.decisions import DecisionRequest, UnknownTarget, decision_record
from edge.metrics import GatewayMetrics
from edge.prediction.predictor import DETECTOR as FORECAST
from edge.records import AlertRecord, DecisionRecord, LabelRecord, Reading, ReadingRow
from edge.settings import AssetSettings, SensorSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

_RELEASE_SWEEP_S = 60.0
_CLOSED_RESTORED = 1000  # the newest closed alerts whose mute a restart takes back
# A stop must end within systemd's TimeoutStopSec (45 s): a stuck worker cannot hold it longer.
_STOP_SNAPSHOT_TIMEOUT_S = 15.0


class AlertLog(Protocol):
    """The buffer's alert log, as this agent sees it."""

    async def append(self, items: Sequence[AlertRecord], decision: DecisionRecord | None = None,
                     labels: Sequence[LabelRecord] = (),
                     position: tuple[str, int] | None = None) -> None: ...

    async def open_items(self) -> list[AlertRecord]: ...

    async def get(self, item_id: str) -> AlertRecord | None: ...

    async def latest(self, state: str | None = None, limit: int = 1000) -> list[AlertRecord]: ...


class PositionStore(Protocol):
    """Where the judged position, the feedback and the models survive restarts (buffer meta)."""

    async def get_int(self, key: str) -> int | None: ...

    async def set_int(self, key: str, value: int) -> None: ...

    async def get_json(self, key: str) -> Any: ...

    async def set_json(self, key: str, value: Any) -> None: ...

    async def get_snapshot(self, key: str) -> tuple[bytes, int] | None: ...

    async def set_snapshot(self, key: str, data: bytes, position: int) -> None: ...


JUDGED_SEQ_KEY = "anomaly_detection.judged_seq"
SNAPSHOT_KEY = "anomaly_detection.models"


def sensor_profiles(detection: DetectionSettings,
                    sensors: dict[str, SensorSettings]) -> dict[str, SensorProfile]:
    """The engine's view of each configured sensor (others get the defaults)."""
    return {sensor_id: SensorProfile.build(detection, limits=sensor.limits,
                                           override=sensor.detection, asset_id=sensor.asset)
            for sensor_id, sensor in sensors.items()}


def asset_profiles(detection: DetectionSettings,
                   assets: dict[str, AssetSettings]) -> dict[str, AssetProfile]:
    return {asset_id: AssetProfile.build(detection, asset.detection)
            for asset_id, asset in assets.items()}


class AnomalyDetectionAgent(BaseAgent):
    subscriptions = (DataProcessedEvent, FeedGapEvent, NodeStateEvent)
    max_attempts = 3
    # Committed batches waiting to be judged; more is dropped and caught up from the buffer,
    # which bounds the memory a slow moment can take. Bounded by readings (~30 MB): a live
    # stream commits hundreds of small batches a second, and a bound of 64 batches (~130 ms
    # of them at 10,000 msg/s) overflowed whenever alerts were being stored, after which the
    # catch-up from the buffer competed with ingestion (bench/latency.py).
    queue_size = 100_000
    queue_readings = 200_000
    capabilities = ("limits", "rate", "outlier", "drift", "flatline", "silence", "asset_model",
                    "validation", "alert_lifecycle", "false_alarm_feedback")

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics, *,
                 gateway_id: str, settings: DetectionSettings,
                 sensors: dict[str, SensorSettings], alerts: AlertLog, readings: ReadingsSource,
                 positions: PositionStore, assets: dict[str, AssetSettings] | None = None,
                 clock: Callable[[], float] = time.time, worker: bool = False) -> None:
        """`worker`: run the engine in a worker process (the daemon does, by
        `detection.worker`); else inline, on this event loop and this agent's clock."""
        super().__init__(agent_id, bus, metrics)
        self._settings = settings
        self._alerts = alerts
        self._readings = readings
        self._positions = positions
        self._clock = clock
        profiles, asset_models = sensor_profiles(settings, sensors), \
            asset_profiles(settings, assets or {})
        self.detection: DetectionHost
        if not worker:
            self.detection = InlineDetection(
                DetectionSession(gateway_id, settings, profiles, asset_models, clock))
        elif settings.workers == 1:
            self.detection = WorkerDetection(gateway_id, settings, profiles, asset_models)
        else:
            self.detection = ShardedDetection(
                [WorkerDetection(gateway_id, settings, profiles, asset_models)
                 for _ in range(settings.workers)], profiles)
        self._unsaved: list[AlertChange] = []
        self._prepared = False  # the models are brought to the judged position (snapshot-worthy)
        self._lock = asyncio.Lock()  # the bus worker and the clock tick take turns
        self.judged_seq = 0  # every reading up to this buffer seq has been judged
        self._saved_seq = 0
        self._seq_at_last_tick = -1
        self._next_release = 0.0
        self._next_snapshot = 0.0
        self._opened_log = RateLimitedLog(log, interval_s=10.0)
        self.feedback = FeedbackBook(settings.false_alarm_suppress_s)

    async def start(self) -> None:
        saved = await self._positions.get_int(JUDGED_SEQ_KEY)
        # A buffer from before this position was kept: start at its end, as before.
        self.judged_seq = self._saved_seq = saved if saved is not None else \
            await self._readings.last_seq()
        self.feedback.load(await self._positions.get_json(FEEDBACK_KEY) or [])
        await self.detection.start()
        await self._prepare("anomaly detection ready")
        self._next_snapshot = self._clock() + self._settings.snapshot_interval_s
        await super().start()
        self._tick_every(self._settings.silence_check_interval_s, self.tick)

    async def _prepare(self, message: str) -> None:
        """Bring fresh models to the saved position: the snapshot, the readings judged after
        it (learned, no alerts), the open alerts, operators' mutes and the feedback."""
        learned_from = await self._load_snapshot()
        relearned = 0
        if learned_from is None:
            # From nothing: learn the recent readings first. With the open alerts restored
            # first, their sensors would learn nothing (alerting spans are not learned) and
            # stay blind in their learning period, unable even to resolve the alert.
            relearned = await self._relearn(None)
        restored = [a for a in await self._alerts.open_items() if a.detector != FORECAST]
        await self.detection.restore(restored)
        # Closed by a person within the last suppression span: still muted (until normal).
        # A false alarm's own suppression (the feedback book) covers those it closed.
        since = self._clock() - self._settings.false_alarm_suppress_s
        await self.detection.restore_closed([
            a for a in await self._alerts.latest("closed", limit=_CLOSED_RESTORED)
            if a.detector != FORECAST and "false_alarm" not in a.details
            and a.updated_at.timestamp() >= since])
        await self.detection.set_feedback(self.feedback.to_json())
        if learned_from is not None:
            # After the alerts: as when these readings were first judged, an alert's span
            # is not learned.
            relearned = await self._relearn(learned_from)
        log.info(message, extra={
            "restored_open_alerts": len(restored), "snapshot_position": learned_from,
            "relearned_readings": relearned, "judged_seq": self.judged_seq})
        self._prepared = True
        self._metrics.alerts_open.set(self.detection.open_count)

    async def _recover(self, error: DetectionWorkerError) -> None:
        """A new worker, brought to the judged position as after a restart (snapshot,
        relearning, the stored open alerts). Alert changes still waiting to be stored are
        dropped, and the readings after the saved position are judged again (by the next
        event or tick), so nothing is lost; with none waiting, every change up to the
        judged position is stored and none is judged, stored or announced twice."""
        log.error("detection worker lost: starting a new one", extra={"error": str(error)})
        self._metrics.detection_worker_restarts.inc()
        assert isinstance(self.detection, WorkerDetection | ShardedDetection)
        if self._unsaved:
            self._unsaved = []
            self.judged_seq = self._saved_seq
        self._prepared = False
        try:
            await self.detection.restart()
            await self._prepare("detection worker recovered")
        except BaseException:
            # Half restored (the buffer failed, or a stop cancelled it): never judge or save
            # with it; the next event or tick starts another.
            self.detection.abandon()
            raise

    async def stop(self) -> None:
        await self._stop_ticking()
        try:
            async with self._lock:
                await self._flush(None)
                await self._save_position()
                await self._save_snapshot(timeout_s=_STOP_SNAPSHOT_TIMEOUT_S)
        except Exception:  # the buffer may be failing; the next start re-judges what is left
            log.warning("anomaly detection stopped with unsaved alert changes", exc_info=True)
        await self.detection.stop()
        self._opened_log.flush()  # the count of 'alert opened' lines held back
        await super().stop()

    @property
    def tracked_sensors(self) -> int:
        return self.detection.sensor_count

    def backlog(self, last_committed_seq: int) -> int | None:
        return max(0, last_committed_seq - self.judged_seq)

    async def process(self, event: BaseEventModel) -> None:
        async with self._lock:
            try:
                await self._process(event)
            except DetectionWorkerError as exc:
                await self._recover(exc)  # the next tick catches up what this missed
                return
            await self._flush(event.correlation_id or event.event_id)

    async def _process(self, event: BaseEventModel) -> None:
        if isinstance(event, FeedGapEvent):
            await self._catch_up(None)
        elif isinstance(event, NodeStateEvent):
            await self._node_state(event)
        elif isinstance(event, DataProcessedEvent) and event.last_seq is not None \
                and event.last_seq > self.judged_seq:
            if event.first_seq is not None and event.first_seq > self.judged_seq + 1:
                await self._catch_up(event.first_seq - 1)
            self._unsaved += await self.detection.judge(event.readings)
            self.judged_seq = event.last_seq

    async def tick(self) -> None:
        """Clock work: catch up when behind and idle, judge silence when caught up, save."""
        async with self._lock:
            try:
                await self._tick()
            except DetectionWorkerError as exc:
                await self._recover(exc)

    async def _tick(self) -> None:
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
        self._unsaved += await self.detection.tick(now)
        await self._release_idle(now)
        await self._count_candidates()
        await self._flush(None)
        await self._save_position()
        if self._clock() >= self._next_snapshot and self.judged_seq == self._saved_seq:
            await self._save_snapshot()

    async def _release_idle(self, now: float) -> None:
        """Give back the models of sensors idle for long (none with an open alert)."""
        if now < self._next_release:
            return
        self._next_release = now + _RELEASE_SWEEP_S
        await self.detection.release_idle(now - self._settings.release_idle_s)

    async def _count_candidates(self) -> None:
        for outcome, count in (await self.detection.drain_candidate_counts()).items():
            self._metrics.anomaly_candidates.labels(outcome).inc(count)

    async def _save_position(self) -> None:
        # Only once every alert change up to it is stored: a restart re-judges the rest.
        if not self._unsaved and self.judged_seq != self._saved_seq:
            await self._positions.set_int(JUDGED_SEQ_KEY, self.judged_seq)
            self._saved_seq = self.judged_seq

    async def _save_snapshot(self, timeout_s: float | None = None) -> None:
        """The models at the saved position, whose alerts are all stored."""
        if self._unsaved or self.judged_seq != self._saved_seq or not self._prepared:
            return
        started = time.monotonic()
        # Off the event loop (worker process or thread): commits and acks go on meanwhile.
        data = await self.detection.snapshot(timeout_s)
        await self._positions.set_snapshot(SNAPSHOT_KEY, data, self.judged_seq)
        self._next_snapshot = self._clock() + self._settings.snapshot_interval_s
        log.debug("detection models saved", extra={"bytes": len(data), "sensors":
                                                   self.detection.sensor_count,
                                                   "seconds": round(time.monotonic() - started, 3)})

    async def _load_snapshot(self) -> int | None:
        """Load the saved models; their position, or None if there are none usable."""
        saved = await self._positions.get_snapshot(SNAPSHOT_KEY)
        if saved is None:
            return None
        data, position = saved
        try:
            report = await self.detection.load_snapshot(data)
        except SnapshotError as exc:
            log.warning("detection models not loaded: they relearn", extra={"error": str(exc)})
            return None
        log.info("detection models loaded", extra={
            "sensors_restored": report.sensors_restored,
            "assets_restored": report.assets_restored})
        if report.skipped:
            log.info("some detection models relearn", extra={"skipped": report.skipped})
        return min(position, self.judged_seq)

    async def _relearn(self, snapshot_position: int | None) -> int:
        """Teach the models the readings judged before the stop but after the snapshot
        (without one: the last `warmup_window_s`); no alerts, those were stored."""
        if snapshot_position is not None:
            count = 0

            async def learn(readings: list[Reading], _last_seq: int) -> None:
                nonlocal count
                count += await self.detection.learn(readings)

            await catch_up(self._readings, snapshot_position, self.judged_seq, learn)
            return count
        since_us = int((self._clock() - self._settings.warmup_window_s) * 1_000_000)
        return await self.detection.learn(
            await self._readings.recent_readings(since_us, self.judged_seq))

    async def _node_state(self, event: NodeStateEvent) -> None:
        """A Sparkplug node or device died or was born again (NodeStateEvent)."""
        ts = event.at.timestamp()
        if event.state == "offline":
            self._unsaved += await self.detection.source_offline(
                event.source_id, event.sensor_ids, ts, event.reason)
        else:
            self._unsaved += await self.detection.source_online(event.source_id, ts)

    async def decide(self, request: DecisionRequest, received_at: datetime) -> DecisionRecord:
        """Apply an operator's decision about an alert (acknowledge, snooze, close, false
        alarm, undo); stored with the alert's new version. Raises UnknownTarget/Rejection."""
        async with self._lock:
            await self._flush(None)  # the decision builds on the newest version, stored
            alert = await self._alerts.get(request.target_id)
            if alert is None:
                raise UnknownTarget(f"no alert {request.target_id!r}")
            updated = alert_rules.decide(alert, request, received_at)  # may raise Rejection
            book = self.feedback.to_json()
            try:
                detail = self._feedback_for(alert, request, received_at)
                # All of it again on a new worker (recovered from the store, it knows none).
                await self._on_worker(lambda: self._tell_detection(alert, updated, request.action,
                                                                   bool(detail)))
            except BaseException:  # nothing applied: nor may the false-alarm book change
                self.feedback = FeedbackBook(self._settings.false_alarm_suppress_s)
                self.feedback.load(book)
                raise
            if detail:
                updated = updated.model_copy(update={"details": {**updated.details,
                                                                 "feedback": detail}})
            record = decision_record(request, received_at, "applied",
                                     f"alert {updated.state}" + (f"; {detail}" if detail else ""))
            await self._alerts.append([updated], decision=record)
            if detail:
                await self._positions.set_json(FEEDBACK_KEY, self.feedback.to_json())
            self._metrics.alerts_open.set(self.detection.open_count)
            if alert.state == "open":  # a label on a resolved alert changes nothing live
                change = AlertChange("closed" if updated.state == "closed" else "updated",
                                     updated)
                await self._publish(_event(self.agent_id, change, None))
            return record

    async def _tell_detection(self, alert: AlertRecord, updated: AlertRecord, action: str,
                              feedback_changed: bool) -> None:
        if action in ("close", "false_alarm"):
            await self.detection.close(alert.sensor_id, alert.detector)
        else:  # acknowledge, snooze: the engine's next versions carry them
            await self.detection.take_decided(updated)
        if feedback_changed:
            await self.detection.set_feedback(self.feedback.to_json())

    async def _on_worker(self, call: Callable[[], Awaitable[T]]) -> T:
        """An operator's call that a lost worker does not fail: recover, then once more.
        (Raises DetectionWorkerError, HTTP 503 with nothing applied, if that fails too.)"""
        try:
            return await call()
        except DetectionWorkerError as exc:
            await self._recover(exc)
            return await call()

    def _feedback_for(self, alert: AlertRecord, request: DecisionRequest, now: datetime) -> str:
        view: FeedbackView | None
        if request.action == "false_alarm":
            view = self.feedback.false_alarm(alert.sensor_id, alert.detector, now.timestamp(),
                                             request.decision_id)
            if view is None:
                return (f"{alert.detector} on {alert.sensor_id}: no detection feedback, a "
                        "datasheet limit always alerts")
        elif request.action == "undo_false_alarm":
            original = alert.details.get("false_alarm", {}).get("decision_id", "")
            view = self.feedback.undo(alert.sensor_id, alert.detector, str(original))
            if view is None:
                return ""
        else:
            return ""
        budget = self.feedback.budget_factor(alert.sensor_id)
        return (f"{alert.detector} on {alert.sensor_id}: {view.false_alarms} false alarm(s), "
                f"false-candidate budget x{budget:.3g}, suppressed until "
                f"{datetime.fromtimestamp(view.suppressed_until, UTC).isoformat()}"
                if view.false_alarms else f"{alert.detector} on {alert.sensor_id}: feedback undone")

    async def _catch_up(self, up_to_seq: int | None) -> None:
        """Judge the readings after `judged_seq` up to `up_to_seq` (None: the newest now),
        storing alerts chunk by chunk, so a long backlog does not delay the first alert."""
        target = up_to_seq if up_to_seq is not None else await self._readings.last_seq()

        async def judge(readings: list[ReadingRow], last_seq: int) -> None:
            self._unsaved += await self.detection.judge_buffered(readings)
            self.judged_seq = last_seq
            await self._flush(None)

        await catch_up_rows(self._readings, self.judged_seq, target, judge)


    async def _flush(self, correlation_id: str | None) -> None:
        """Store the waiting alert changes, then announce them (durable first)."""
        if not self._unsaved:
            return
        changes = self._unsaved
        # With the judged position, in one transaction: a daemon killed after it never judges
        # these readings again (it would store and announce their changes twice).
        await self._alerts.append([change.alert for change in changes],
                                  position=(JUDGED_SEQ_KEY, self.judged_seq))
        self._saved_seq = self.judged_seq
        self._unsaved = []
        for change in changes:
            self._log_change(change)
            await self._publish(_event(self.agent_id, change, correlation_id))
        self._metrics.alerts_open.set(self.detection.open_count)

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
