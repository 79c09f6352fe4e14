"""What the HTTP API needs from the running gateway, gathered in one small port."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from edge.agents import AgentRegistry
from edge.agents.acquisition import DataAcquisitionAgent, ReadingValidator
from edge.buffer import SqliteBuffer
from edge.errors import PayloadError
from edge.ingest.codecs import decode_payload
from edge.ingest.mqtt_source import MqttSource
from edge.ingest.topics import TopicContext
from edge.metrics import GatewayMetrics
from edge.settings import Settings

_HTTP_CONTEXT = TopicContext("http", None, None)


@dataclass
class IngestOutcome:
    committed: bool
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


class HttpAcks:
    """Ack sink for HTTP requests: each waits on a future that the commit resolves."""

    def __init__(self) -> None:
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)

    def register(self) -> tuple[int, asyncio.Future[None]]:
        token = next(self._ids)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        return token, future

    def forget(self, token: int) -> None:
        self._waiting.pop(token, None)

    def acknowledge(self, tokens: list[int]) -> None:
        for token in tokens:
            future = self._waiting.pop(token, None)
            if future is not None and not future.done():
                future.set_result(None)


class GatewayBackend:
    """Readiness, ingestion, alerts, tasks, agents and status, for the HTTP layer."""

    def __init__(self, settings: Settings, metrics: GatewayMetrics, *, buffer: SqliteBuffer,
                 acquisition: DataAcquisitionAgent, mqtt: MqttSource, agents: AgentRegistry,
                 central_state: Any | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._buffer = buffer
        self._acquisition = acquisition
        self._mqtt = mqtt
        self._agents = agents
        self._central = central_state
        self._validator = ReadingValidator(settings.ingest, settings.sensors)
        self._acks = HttpAcks()

    def not_ready_reasons(self) -> list[str]:
        reasons = []
        if not self._mqtt.connected:
            reasons.append(f"mqtt: not connected ({self._mqtt.last_error or 'connecting'})")
        if not self._buffer.writable:
            reasons.append(f"buffer: {self._buffer.last_error or 'not open'}")
        return reasons

    async def ingest(self, body: bytes) -> IngestOutcome:
        """Same path as MQTT (validation, quarantine, durable commit); answers after the commit."""
        outcome = self._preview(body)
        token, committed = self._acks.register()
        self._acquisition.submit("http", body, self._acks, token)
        try:
            await asyncio.wait_for(asyncio.shield(committed),
                                   self.settings.http.commit_timeout_s)
        except TimeoutError:
            self._acks.forget(token)
            outcome.committed = False
        return outcome

    def _preview(self, body: bytes) -> IngestOutcome:
        # The pipeline validates again and quarantines; this only tells the client.
        now_us = time.time_ns() // 1000
        outcome = IngestOutcome(committed=True)
        try:
            items = decode_payload(body, self.settings.ingest.max_payload_bytes,
                                   self.settings.ingest.max_readings_per_message)
        except PayloadError as exc:
            outcome.rejected.append({"index": None, "reason": exc.reason, "detail": exc.detail})
            return outcome
        for index, item in enumerate(items):
            try:
                self._validator.validate(item, _HTTP_CONTEXT, now_us)
                outcome.accepted += 1
            except PayloadError as exc:
                outcome.rejected.append({"index": index, "reason": exc.reason, "detail": exc.detail})
        return outcome

    async def alerts(self, state: str | None) -> list[dict[str, Any]]:
        return [a.model_dump(mode="json") for a in await self._buffer.latest_alerts(state)]

    async def tasks(self, state: str | None) -> list[dict[str, Any]]:
        return [t.model_dump(mode="json") for t in await self._buffer.latest_tasks(state)]

    def agents(self) -> list[dict[str, Any]]:
        return [asdict(health) for health in self._agents.health()]

    async def status(self) -> dict[str, Any]:
        return await buffer_status(self._buffer, mqtt_connected=self._mqtt.connected,
                                   central=self._central)


async def buffer_status(buffer: SqliteBuffer, mqtt_connected: bool | None,
                        central: Any | None) -> dict[str, Any]:
    """Buffer depth per kind, sync lag, central up/down, open alerts and tasks."""
    depths = await buffer.depths()
    now_us = time.time_ns() // 1000
    oldest = depths["readings"].oldest_unsynced_us
    return {
        "buffer": {kind: {"rows": d.rows, "unsynced": d.unsynced} for kind, d in depths.items()},
        "sync_lag_s": round((now_us - oldest) / 1e6, 3) if oldest else 0.0,
        "central": None if central is None else ("up" if central.online else "down"),
        "mqtt_connected": mqtt_connected,
        "open_alerts": len(await buffer.open_alerts()),
        "open_tasks": len(await buffer.open_tasks()),
    }
