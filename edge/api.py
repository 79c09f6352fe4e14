"""DaemonApi: the running gateway's answers to the HTTP API (implements `GatewayApi`).

Built by the composition root from the parts it wired; the HTTP layer sees only the port.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Protocol

from prometheus_client import CollectorRegistry

from edge.agents import AgentRegistry
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.http.backend import (
    AgentReport,
    AlertState,
    Readiness,
    TaskState,
)
from edge.ingest.http_source import HttpSource, IngestOutcome
from edge.ingest.mqtt_source import MqttSource
from edge.ingest.pipeline import IngestPipeline
from edge.ingest.ports import PipelineHealth
from edge.logs import RateLimitedLog
from edge.metrics import GatewayMetrics
from edge.records import AlertRecord, TaskRecord
from edge.settings import Settings
from edge.status import NOT_CONFIGURED, StatusReport, build_status

log = logging.getLogger(__name__)


class CentralState(Protocol):
    """The central syncer's link state: up, down, refused, schema_missing, ..."""

    @property
    def state(self) -> str: ...


class DaemonApi:
    def __init__(self, settings: Settings, metrics: GatewayMetrics, *, buffer: SqliteBuffer,
                 pipeline: IngestPipeline, http_source: HttpSource, mqtt: MqttSource,
                 agents: AgentRegistry, bus: EventBus, central: CentralState | None) -> None:
        self._settings = settings
        self._metrics = metrics
        self._buffer = buffer
        self._pipeline = pipeline
        self._http_source = http_source
        self._mqtt = mqtt
        self._agents = agents
        self._bus = bus
        self._central = central
        self._rejections = RateLimitedLog(log)

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self._metrics.registry

    def request_rejected(self, reason: str, path: str) -> None:
        self._metrics.http_rejected.labels(reason).inc()
        limit = self._settings.http.max_body_bytes
        self._rejections.warning(reason, f"http request rejected: {reason.replace('_', ' ')}",
                                 reason=reason, path=path,
                                 **({"limit_bytes": limit} if reason == "body_too_large" else {}))

    def readiness(self) -> Readiness:
        reasons = []
        if not self._mqtt.connected:
            reasons.append(f"mqtt: not connected ({self._mqtt.last_error or 'connecting'})")
        if not self._buffer.writable:
            reasons.append(f"buffer: {self._buffer.last_error or 'not open'}")
        central = None if self._central is None else self._central.state
        return Readiness(ready=not reasons, reasons=reasons, central=central)

    async def ingest(self, body: bytes) -> IngestOutcome:
        return await self._http_source.ingest(body)

    async def alerts(self, state: AlertState | None) -> list[AlertRecord]:
        return await self._buffer.alerts.latest(state)

    async def tasks(self, state: TaskState | None) -> list[TaskRecord]:
        return await self._buffer.tasks.latest(state)

    def agents(self) -> list[AgentReport]:
        queues = {stats.name: stats for stats in self._bus.stats()}
        reports = []
        for agent in self._agents:
            health = agent.get_health()
            queue = queues.get(health.agent_id)
            reports.append(AgentReport(
                **{**asdict(health), "capabilities": list(health.capabilities)},
                queued=queue.queued if queue else 0, overflowed=queue.overflowed if queue else 0,
                backlog_readings=agent.backlog(self._pipeline.last_seq)))
        return reports

    def pipeline(self) -> PipelineHealth:
        return self._pipeline.health(self._settings.systemd.watchdog_stall_s)

    async def status(self) -> StatusReport:
        return await build_status(
            self._buffer, mqtt_connected=self._mqtt.connected,
            central=NOT_CONFIGURED if self._central is None else self._central.state)
