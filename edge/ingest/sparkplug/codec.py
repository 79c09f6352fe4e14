"""The Sparkplug B codec as the pipeline uses it: sessions, rebirth requests, STATE.

`SparkplugCodec` wraps the pure `SparkplugSessions` with the `sparkplug.*` settings: it asks
a node for a rebirth (NCMD `Node Control/Rebirth`) only when `request_rebirth` is on, at
most once per node per `rebirth_min_interval_s`, through the publisher it is given (the MQTT
source); it restores births from the buffer at start; and it makes the primary host's STATE
payloads when the gateway is configured as one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import orjson

from edge.ingest.sparkplug.schema import DataType, Payload
from edge.ingest.sparkplug.session import Decoded, Naming, SparkplugSessions
from edge.ingest.sparkplug.topics import command_topic, state_topic
from edge.records import SparkplugBirth
from edge.settings.payloads import SparkplugSettings

log = logging.getLogger(__name__)

Publisher = Callable[[str, bytes, int, bool], None]  # topic, payload, qos, retain


class SparkplugCodec:
    def __init__(self, settings: SparkplugSettings, clock: Callable[[], float] = time.time) -> None:
        self._settings = self.settings = settings
        self._clock = clock
        self.sessions = SparkplugSessions(Naming(settings.sensor_id, settings.asset))
        self._publish: Publisher | None = None
        self._last_request: dict[tuple[str, str], float] = {}
        self.rebirths_requested = 0

    def attach(self, publish: Publisher) -> None:
        """Where NCMD and STATE messages go (the gateway's MQTT connection)."""
        self._publish = publish

    def restore(self, births: Iterable[SparkplugBirth]) -> int:
        return self.sessions.restore((birth.scope, birth.payload, birth.received_us)
                                     for birth in births)

    def decode(self, topic: str, payload: bytes, received_us: int) -> Decoded:
        return self.sessions.decode(topic, payload, received_us)

    def request_rebirth(self, group: str, node: str) -> bool:
        """Ask a node to rebirth, if enabled and not asked recently; whether it was sent."""
        if not self._settings.request_rebirth or self._publish is None:
            return False
        now = self._clock()
        last = self._last_request.get((group, node))
        if last is not None and now - last < self._settings.rebirth_min_interval_s:
            return False
        self._last_request[(group, node)] = now
        self._publish(command_topic(group, node), rebirth_payload(now), 0, False)
        self.rebirths_requested += 1
        log.info("sparkplug rebirth requested", extra={"group": group, "node": node})
        return True

    def state_message(self, online: bool) -> tuple[str, bytes] | None:
        """The primary host's STATE topic and payload (None unless configured as one)."""
        host = self._settings.primary_host_id
        if host is None:
            return None
        body = {"online": online, "timestamp": int(self._clock() * 1000)}
        return state_topic(host), orjson.dumps(body)


def rebirth_payload(now: float) -> bytes:
    """NCMD with `Node Control/Rebirth = true` (Sparkplug 3.0, section 6.4.2)."""
    message = Payload()
    message.timestamp = int(now * 1000)
    metric = message.metrics.add()
    metric.name = "Node Control/Rebirth"
    metric.timestamp = message.timestamp
    metric.datatype = DataType.BOOLEAN
    metric.boolean_value = True
    return bytes(message.SerializeToString())
