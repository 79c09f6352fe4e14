"""PredictionAgent: forecasts when sensors with datasheet limits will reach them.

Consumes: `DataProcessedEvent` (committed readings) and `FeedGapEvent`.
Publishes: `AnomalyDetectedEvent` with detector `forecast` when a forecast is raised,
updated or withdrawn (the alert version is written to the buffer first); the event carries
`due_within_s`, the early end of the prediction interval, so the scheduler makes the task
due before the predicted crossing.
Config: `prediction.*`, `sensors.<id>.limits` (`max`/`min`: only those sensors are forecast).

Readings only feed bucket sums here; the forecasts are computed on the clock
(`prediction.check_interval_s`), so the hot path pays one dictionary lookup per reading.
Retry policy: not retried (1 attempt): `process` only adds to memory and cannot fail
halfway; storing and announcing happen on the tick, and what failed to store waits for
the next tick.

Like detection, it follows the buffer's sequence numbers: a dropped event or a feed gap
makes it read the missing readings from the buffer. Its history (a day of bucket means per
sensor) and its position are saved in the buffer's meta store every `_SAVE_EVERY` ticks and
at stop; after a restart it reads what it had not seen, and open forecasts are restored
from the alert log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from edge.agents.base import BaseAgent
from edge.agents.follow import ReadingsSource, catch_up
from edge.bus import EventBus
from edge.detection.lifecycle import AlertChange
from edge.events import AnomalyDetectedEvent, BaseEventModel, DataProcessedEvent, FeedGapEvent
from edge.maintenance import alerts as alert_rules
from edge.maintenance.decisions import DecisionRequest, UnknownTarget, decision_record
from edge.metrics import GatewayMetrics
from edge.prediction.predictor import DETECTOR, Predictor
from edge.prediction.settings import PredictionSettings
from edge.records import FLAG_CLOCK_SUSPECT, AlertRecord, DecisionRecord, LabelRecord, Reading
from edge.settings import SensorSettings

log = logging.getLogger(__name__)

STATE_KEY = "prediction.state"
_SAVE_EVERY = 10  # ticks


class AlertLog(Protocol):
    async def append(self, items: Sequence[AlertRecord], decision: DecisionRecord | None = None,
                     labels: Sequence[LabelRecord] = ()) -> None: ...

    async def open_items(self) -> list[AlertRecord]: ...

    async def get(self, item_id: str) -> AlertRecord | None: ...


class StateStore(Protocol):
    async def get_json(self, key: str) -> Any: ...

    async def set_json(self, key: str, value: Any) -> None: ...


class PredictionAgent(BaseAgent):
    subscriptions = (DataProcessedEvent, FeedGapEvent)
    # More is dropped and read back from the buffer; bounded by readings, as the anomaly
    # agent's queue is (a live stream commits hundreds of small batches a second).
    queue_size = 100_000
    queue_readings = 200_000
    capabilities = ("time_to_limit", "prediction_interval", "withdraw_on_reversal")

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics, *,
                 gateway_id: str, settings: PredictionSettings,
                 sensors: dict[str, SensorSettings], alerts: AlertLog,
                 readings: ReadingsSource, state: StateStore,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(agent_id, bus, metrics)
        self._settings = settings
        self._alerts = alerts
        self._readings = readings
        self._store = state
        self._clock = clock
        self.predictor = Predictor(gateway_id, settings, {
            sensor_id: sensor.limits for sensor_id, sensor in sensors.items()
            if sensor.limits is not None})
        self._watched = self.predictor.sensor_ids
        self._unsaved: list[AlertChange] = []
        self._lock = asyncio.Lock()
        self._ticks = 0
        self._seq_at_last_tick = -1
        self.seen_seq = 0  # every reading up to this buffer seq has been observed

    async def start(self) -> None:
        saved = await self._store.get_json(STATE_KEY)
        if saved:
            self.predictor.load(saved["sensors"])
            self.seen_seq = int(saved["seen_seq"])
        else:  # first start: begin at the buffer's end, with no history
            self.seen_seq = await self._readings.last_seq()
        self.predictor.restore(await self._alerts.open_items())
        await catch_up(self._readings, self.seen_seq, await self._readings.last_seq(),
                       self._take)
        log.info("prediction ready", extra={"sensors": len(self._watched),
                                            "open_forecasts": self.predictor.open_count})
        await super().start()
        self._tick_every(self._settings.check_interval_s, self.tick)

    async def stop(self) -> None:
        await self._stop_ticking()
        try:
            async with self._lock:
                await self._flush()
                await self._save_state()
        except Exception:  # the buffer may be failing; the next start reads what is left
            log.warning("prediction stopped without saving its state", exc_info=True)
        await super().stop()

    def backlog(self, last_committed_seq: int) -> int | None:
        return max(0, last_committed_seq - self.seen_seq)

    async def process(self, event: BaseEventModel) -> None:
        async with self._lock:
            if isinstance(event, FeedGapEvent):
                await catch_up(self._readings, self.seen_seq, await self._readings.last_seq(),
                               self._take)
            elif isinstance(event, DataProcessedEvent) and event.last_seq is not None \
                    and event.last_seq > self.seen_seq:
                if event.first_seq is not None and event.first_seq > self.seen_seq + 1:
                    await catch_up(self._readings, self.seen_seq, event.first_seq - 1,
                                   self._take)
                self._observe(event.readings)
                self.seen_seq = event.last_seq

    async def tick(self) -> None:
        """Evaluate the sensors that closed a bucket, store and announce, save now and then."""
        async with self._lock:
            last_seq = await self._readings.last_seq()
            if self.seen_seq < last_seq and self.seen_seq == self._seq_at_last_tick:
                # Nothing came by event since the last tick: what the buffer has was missed.
                await catch_up(self._readings, self.seen_seq, last_seq, self._take)
            self._seq_at_last_tick = self.seen_seq
            self._unsaved += self.predictor.evaluate()
            await self._flush()
            self._ticks += 1
            if self._ticks % _SAVE_EVERY == 0:
                await self._save_state()

    async def decide(self, request: DecisionRequest, received_at: datetime) -> DecisionRecord:
        """An operator's decision about a forecast; a close or false alarm mutes the sensor's
        forecasts until its trend has stopped. Raises UnknownTarget/Rejection."""
        async with self._lock:
            alert = await self._alerts.get(request.target_id)
            if alert is None or alert.detector != DETECTOR:
                raise UnknownTarget(f"no forecast {request.target_id!r}")
            updated = alert_rules.decide(alert, request, received_at)  # may raise Rejection
            if request.action in ("close", "false_alarm"):
                self.predictor.close(alert.sensor_id)
            else:  # acknowledge, snooze: the next versions carry them (predictor.take_decided)
                self.predictor.take_decided(updated)
            record = decision_record(request, received_at, "applied", f"forecast {updated.state}")
            await self._alerts.append([updated], decision=record)
            change = AlertChange("closed" if updated.state == "closed" else "updated", updated)
            await self._publish(forecast_event(self.agent_id, change))
            return record

    async def _take(self, readings: list[Reading], last_seq: int) -> None:
        self._observe(readings)
        self.seen_seq = last_seq

    def _observe(self, readings: Iterable[Reading]) -> None:
        watched = self._watched
        observe = self.predictor.observe
        for reading in readings:
            if reading.sensor_id in watched and not reading.flags & FLAG_CLOCK_SUSPECT:
                observe(reading.sensor_id, reading.asset_id, reading.ts_us / 1e6, reading.value,
                        reading.unit)

    async def _flush(self) -> None:
        """Store the waiting forecast changes, then announce them (durable first)."""
        if not self._unsaved:
            return
        changes = self._unsaved
        await self._alerts.append([change.alert for change in changes])
        self._unsaved = []
        for change in changes:
            alert = change.alert
            if change.change == "open":
                self._metrics.anomalies.labels(DETECTOR, alert.severity).inc()
            log.warning("forecast %s", change.change, extra={
                "alert_id": alert.alert_id, "sensor_id": alert.sensor_id, "reason": alert.reason})
            await self._publish(forecast_event(self.agent_id, change))

    async def _save_state(self) -> None:
        await self._store.set_json(STATE_KEY, {"seen_seq": self.seen_seq,
                                               "sensors": self.predictor.to_json()})



def forecast_event(source: str, change: AlertChange) -> AnomalyDetectedEvent:
    alert = change.alert
    interval = alert.details.get("interval_s") or [None, None]
    evaluated = alert.details.get("evaluated_at")
    return AnomalyDetectedEvent(
        source=source, alert_id=alert.alert_id, asset_id=alert.asset_id,
        sensor_id=alert.sensor_id, detector=alert.detector, severity=alert.severity,
        score=alert.score or 0.0,
        value=alert.value if alert.value is not None else float("nan"),
        # the reading time `due_within_s` counts from (not a decision's later stamp)
        reading_ts=datetime.fromisoformat(evaluated) if evaluated else alert.updated_at,
        window={}, reason=alert.reason, state=change.change,
        opened_at=alert.opened_at, snoozed_until=alert.details.get("snoozed_until"),
        due_within_s=interval[0] if change.change in ("open", "updated") else None)
