"""MqttSource: keeps the gateway's persistent MQTT session alive and feeds the pipeline.

One connection at a time, each a fresh `BatchAckClient` with a new generation number.
Reconnects use exponential backoff with jitter; each state change is logged once.
Acknowledgements carry the generation they were received on: an ack for a message from a
connection that has since dropped is not sent (the broker redelivers it, and the buffer's
unique key makes the second copy a counted duplicate, not a second row).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import NamedTuple

from edge.backoff import Backoff
from edge.ingest.mqtt_client import BatchAckClient, describe_connect_error
from edge.ingest.ports import AckToken, MessageSink, acks_for_generation
from edge.metrics import GatewayMetrics
from edge.settings import MqttSettings

log = logging.getLogger(__name__)

_OUTBOX_LIMIT = 10_000
_NO_ACK = AckToken(0)  # QoS 0: nothing to acknowledge


class _Outgoing(NamedTuple):
    """A notification waiting for the broker."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class MqttSource:
    """The MQTT transport: subscribe, hand messages on, acknowledge after commit."""

    def __init__(self, settings: MqttSettings, client_id: str, sink: MessageSink,
                 metrics: GatewayMetrics) -> None:
        self._settings = settings
        self._client_id = client_id
        self._sink = sink
        self._commands: MessageSink | None = None
        self._command_prefix: str | None = None
        self._metrics = metrics
        self._client: BatchAckClient | None = None
        self._generation = 0
        self._stopping = asyncio.Event()
        self.connected = False
        self.connected_event = asyncio.Event()
        self.last_error: str | None = None
        # Notifications published while disconnected wait here (bounded) for the next link.
        self._outbox: deque[_Outgoing] = deque()
        # A retained message published on every connection, and its opposite as the will
        # (a Sparkplug primary host's STATE online/offline).
        self._presence: tuple[tuple[str, bytes], tuple[str, bytes]] | None = None

    async def run(self) -> None:
        """Connect, wait for the link to drop, back off, reconnect; until `close`."""
        backoff = Backoff(self._settings.reconnect.initial_delay_s,
                          self._settings.reconnect.max_delay_s)
        while not self._stopping.is_set():
            client = await self._connect()
            if client is None:
                await self._sleep_unless_stopping(backoff.next_delay_s())
                continue
            backoff.reset()
            await self._wait_lost_or_stopping(client)
            self._set_connected(False, "connection lost" if not self._stopping.is_set() else None)
            await _close_quietly(client)

    async def close(self) -> None:
        """Stop `run`, which leaves the session (the broker keeps it and queues for us)."""
        self._stopping.set()

    def acknowledge(self, tokens: list[AckToken]) -> None:
        """PUBACK/PUBREC committed messages received on the current connection.

        A token from an older connection is skipped: the broker redelivers that message and
        the buffer's unique key makes the copy a counted duplicate.
        """
        client = self._client
        if client is None or not self.connected:
            return
        pairs = acks_for_generation(tokens, client.generation)
        if pairs:
            client.acknowledge(pairs)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish now if connected, else keep it for the next connection (oldest dropped)."""
        client = self._client
        if client is not None and self.connected:
            client.publish(topic, payload, qos=qos, retain=retain)
            return
        if len(self._outbox) >= _OUTBOX_LIMIT:
            self._outbox.popleft()
            self._metrics.messages_dropped.labels("notification_outbox_full").inc()
        self._outbox.append(_Outgoing(topic, payload, qos, retain))

    def _flush_outbox(self, client: BatchAckClient) -> None:
        while self._outbox:
            message = self._outbox.popleft()
            client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)

    def announce_presence(self, online: tuple[str, bytes], will: tuple[str, bytes]) -> None:
        """Publish `online` (retained) on every connection; the broker publishes `will`
        (retained) when the connection dies without a goodbye."""
        self._presence = (online, will)

    def route_commands(self, prefix: str, commands: MessageSink) -> None:
        """Subscribe to `prefix/#` too and hand those messages to `commands`, not the pipeline."""
        self._command_prefix = prefix.rstrip("/") + "/"
        self._commands = commands

    def _on_message(self, topic: str, payload: bytes, qos: int, token: AckToken | None,
                    retained: bool) -> None:
        sink = self._sink
        if self._command_prefix is not None and self._commands is not None \
                and topic.startswith(self._command_prefix):
            sink = self._commands
        if token is None:
            sink.submit(topic, payload, None, _NO_ACK, retained=retained)
        else:
            sink.submit(topic, payload, self, token, retained=retained)

    async def _connect(self) -> BatchAckClient | None:
        self._generation += 1
        extra = (self._command_prefix + "#",) if self._command_prefix and self._commands else ()
        client = BatchAckClient(self._settings, self._client_id, self._generation,
                                self._on_message, extra,
                                will=self._presence[1] if self._presence else None)
        self._client = client
        try:
            async with asyncio.timeout(self._settings.connect_timeout_s):
                await client.open()
        except asyncio.CancelledError:
            await _close_quietly(client)
            raise
        except Exception as exc:  # any failure to connect is retried with backoff
            self._set_connected(False, describe_connect_error(exc))
            await _close_quietly(client)
            return None
        self._set_connected(True, None)
        if self._presence is not None:
            topic, payload = self._presence[0]
            client.publish(topic, payload, qos=1, retain=True)
        self._flush_outbox(client)
        return client

    def _set_connected(self, connected: bool, error: str | None) -> None:
        """Record the link state; log only transitions, never each retry."""
        broker = f"{self._settings.host}:{self._settings.port}"
        if connected and not self.connected:
            log.info("mqtt connected", extra={"broker": broker, "client_id": self._client_id})
        elif not connected and error and (self.connected or self.last_error != error):
            # One line per change of reason, never one per retry.
            log.warning("mqtt unavailable; reconnecting with backoff",
                        extra={"broker": broker, "reason": error,
                               "retry_at_most_every_s": self._settings.reconnect.max_delay_s})
        self.connected = connected
        if connected:
            self.connected_event.set()
        else:
            self.connected_event.clear()
        self.last_error = error
        self._metrics.mqtt_connected.set(1 if connected else 0)

    async def _wait_lost_or_stopping(self, client: BatchAckClient) -> None:
        lost = asyncio.ensure_future(client.lost.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({lost, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            stopping.cancel()

    async def _sleep_unless_stopping(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await self._stopping.wait()


async def _close_quietly(client: BatchAckClient) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await client.disconnect()
