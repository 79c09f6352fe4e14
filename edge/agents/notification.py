"""NotificationAgent: tells HMIs and PLCs about alerts and tasks over MQTT (and a webhook).

Consumes: `AnomalyDetectedEvent`, `MaintenanceTaskCreatedEvent`, `HumanDecisionEvent`.
Publishes (MQTT, not the bus): `{prefix}/alerts/{asset_id}/{sensor_id}`,
`{prefix}/tasks/{asset_id}` and `{prefix}/decisions/{alert|task}/{id}` as JSON, QoS
`notifications.qos`. The alert topic holds the current state retained: a new subscriber
sees what is wrong now; when the last open alert of a sensor resolves (or an operator
closes it), that version is published and the retained message cleared.
Snooze: updates of a snoozed alert are held back (the newest one kept) until the snooze
ends on the gateway's clock; then the newest held version is published (and posted), so
notifications resume without waiting for the next update. A resolve or close always goes
out at once and drops what was held. A snooze time without a UTC offset (an older buffer)
is read as UTC, never a crash.
Config: `notifications.*`.

Retry policy: not retried (1 attempt): publishing is not idempotent (a retry after the MQTT
publish and before the webhook would notify twice), and neither step can fail here (the
MQTT source queues while offline, the webhook sender has its own bounded queue).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from edge.agents.base import BaseAgent
from edge.bus import EventBus
from edge.events import (
    AnomalyDetectedEvent,
    BaseEventModel,
    HumanDecisionEvent,
    MaintenanceTaskCreatedEvent,
)
from edge.metrics import GatewayMetrics
from edge.times import as_utc

log = logging.getLogger(__name__)

_NO_ASSET = "_"
_UNMUTE_CHECK_S = 1.0  # how often held (snoozed) updates are checked for a snooze that ended


@dataclass(slots=True)
class _Held:
    """The newest update of a snoozed alert, held back until `until_s` (gateway clock)."""

    until_s: float
    event: AnomalyDetectedEvent
    body: bytes


class MessagePublisher(Protocol):
    """The MQTT source's publishing side (queues while the broker is away)."""

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None: ...


class WebhookPort(Protocol):
    """The webhook sender (its own bounded queue, retries and rate limit)."""

    def send(self, body: bytes) -> None: ...


class NotificationAgent(BaseAgent):
    subscriptions = (AnomalyDetectedEvent, MaintenanceTaskCreatedEvent, HumanDecisionEvent)
    max_attempts = 1

    def __init__(self, agent_id: str, bus: EventBus, metrics: GatewayMetrics, *,
                 topic_prefix: str, qos: int, publisher: MessagePublisher,
                 webhook: WebhookPort | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(agent_id, bus, metrics)
        self._prefix = topic_prefix
        self._qos = qos
        self._publisher = publisher
        self._webhook = webhook
        self.capabilities = ("mqtt", "webhook") if webhook else ("mqtt",)
        self._clock = clock
        # retained topic -> open alert id -> its latest JSON
        self._open_by_topic: dict[str, dict[str, bytes]] = {}
        self._held: dict[str, _Held] = {}  # alert id -> its newest update during a snooze

    async def start(self) -> None:
        await super().start()
        self._tick_every(_UNMUTE_CHECK_S, self.tick)

    async def stop(self) -> None:
        await self._stop_ticking()
        await super().stop()

    def tick(self) -> None:
        """Publish the held updates of alerts whose snooze has ended (notifications resume)."""
        now = self._clock()
        for alert_id, held in list(self._held.items()):
            if held.until_s <= now:
                del self._held[alert_id]
                self._send_alert(held.event, held.body)

    def alert_topic(self, asset_id: str | None, sensor_id: str) -> str:
        return f"{self._prefix}/alerts/{asset_id or _NO_ASSET}/{sensor_id}"

    def task_topic(self, asset_id: str | None) -> str:
        return f"{self._prefix}/tasks/{asset_id or _NO_ASSET}"

    async def process(self, event: BaseEventModel) -> None:
        if self._held:
            self.tick()
        body = event.model_dump_json().encode()
        if isinstance(event, AnomalyDetectedEvent):
            until_s = self._snoozed_until_s(event)
            if until_s is not None:
                self._held[event.alert_id] = _Held(until_s, event, body)
                return
            self._held.pop(event.alert_id, None)
            self._send_alert(event, body)
            return
        if isinstance(event, HumanDecisionEvent):
            decision = event.decision
            topic = f"{self._prefix}/decisions/{decision.target_kind}/{decision.target_id}"
            self._publisher.publish(topic, decision.model_dump_json().encode(), self._qos, False)
            self._metrics.notifications.labels("mqtt", "sent").inc()
            return  # decisions go to MQTT only: the webhook carries alerts and tasks
        if isinstance(event, MaintenanceTaskCreatedEvent):
            self._publisher.publish(self.task_topic(event.asset_id), body, self._qos, False)
            self._metrics.notifications.labels("mqtt", "sent").inc()
        if self._webhook is not None:
            self._webhook.send(body)

    def _snoozed_until_s(self, alert: AnomalyDetectedEvent) -> float | None:
        """When the snooze of this update ends (None: not an update, or not snoozed now)."""
        if alert.state != "updated" or alert.snoozed_until is None:
            return None
        until_s = as_utc(alert.snoozed_until).timestamp()
        return until_s if until_s > self._clock() else None

    def _send_alert(self, alert: AnomalyDetectedEvent, body: bytes) -> None:
        self._alert(alert, body)
        if self._webhook is not None:
            self._webhook.send(body)

    def _alert(self, alert: AnomalyDetectedEvent, body: bytes) -> None:
        topic = self.alert_topic(alert.asset_id, alert.sensor_id)
        open_here = self._open_by_topic.setdefault(topic, {})
        if alert.state not in ("resolved", "closed"):
            open_here[alert.alert_id] = body
            self._publisher.publish(topic, body, self._qos, True)
        else:
            open_here.pop(alert.alert_id, None)
            self._publisher.publish(topic, body, self._qos, False)
            if open_here:  # another alert of this sensor is still open: it is the state now
                self._publisher.publish(topic, next(reversed(open_here.values())), self._qos, True)
            else:
                del self._open_by_topic[topic]
                self._publisher.publish(topic, b"", self._qos, True)  # clears the retained state
        self._metrics.notifications.labels("mqtt", "sent").inc()

