"""NotificationAgent: tells HMIs and PLCs about alerts and tasks over MQTT (and a webhook).

Consumes: `AnomalyDetectedEvent`, `MaintenanceTaskCreatedEvent`, `HumanDecisionEvent`.
Publishes (MQTT, not the bus): `{prefix}/alerts/{asset_id}/{sensor_id}`,
`{prefix}/tasks/{asset_id}` and `{prefix}/decisions/{alert|task}/{id}` as JSON, QoS
`notifications.qos`. The alert topic holds the current state retained: a new subscriber
sees what is wrong now; when the last open alert of a sensor resolves (or an operator
closes it), that version is published and the retained message cleared. Updates of a
snoozed alert are not repeated until the snooze ends.
Config: `notifications.*`.

Retry policy: not retried (1 attempt): publishing is not idempotent (a retry after the MQTT
publish and before the webhook would notify twice), and neither step can fail here (the
MQTT source queues while offline, the webhook sender has its own bounded queue).
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

_NO_ASSET = "_"


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
                 webhook: WebhookPort | None = None) -> None:
        super().__init__(agent_id, bus, metrics)
        self._prefix = topic_prefix
        self._qos = qos
        self._publisher = publisher
        self._webhook = webhook
        self.capabilities = ("mqtt", "webhook") if webhook else ("mqtt",)
        # retained topic -> open alert id -> its latest JSON
        self._open_by_topic: dict[str, dict[str, bytes]] = {}

    def alert_topic(self, asset_id: str | None, sensor_id: str) -> str:
        return f"{self._prefix}/alerts/{asset_id or _NO_ASSET}/{sensor_id}"

    def task_topic(self, asset_id: str | None) -> str:
        return f"{self._prefix}/tasks/{asset_id or _NO_ASSET}"

    async def process(self, event: BaseEventModel) -> None:
        body = event.model_dump_json().encode()
        if isinstance(event, AnomalyDetectedEvent):
            if self._snoozed_update(event):
                return
            self._alert(event, body)
        elif isinstance(event, HumanDecisionEvent):
            decision = event.decision
            topic = f"{self._prefix}/decisions/{decision.target_kind}/{decision.target_id}"
            self._publisher.publish(topic, decision.model_dump_json().encode(), self._qos, False)
            self._metrics.notifications.labels("mqtt", "sent").inc()
            return  # decisions go to MQTT only: the webhook carries alerts and tasks
        elif isinstance(event, MaintenanceTaskCreatedEvent):
            self._publisher.publish(self.task_topic(event.asset_id), body, self._qos, False)
            self._metrics.notifications.labels("mqtt", "sent").inc()
        if self._webhook is not None:
            self._webhook.send(body)

    @staticmethod
    def _snoozed_update(alert: AnomalyDetectedEvent) -> bool:
        """An update of an alert an operator snoozed: not repeated until the snooze ends."""
        return alert.state == "updated" and alert.snoozed_until is not None and \
            alert.snoozed_until > alert.timestamp

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
