"""DaemonApi: the running gateway's answers to the HTTP API (implements `GatewayApi`).

Built by the composition root from the parts it wired; the HTTP layer sees only the port.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry

from edge.agents import AgentRegistry
from edge.buffer import SqliteBuffer
from edge.bus import EventBus
from edge.http.backend import (
    AgentReport,
    AlertDetail,
    Page,
    QuarantineItem,
    Readiness,
    ReadingPoint,
    StatePoint,
    TaskDetail,
)
from edge.ingest.http_source import HttpSource, IngestOutcome
from edge.ingest.mqtt_source import MqttSource
from edge.ingest.pipeline import IngestPipeline
from edge.ingest.ports import PipelineHealth
from edge.ingest.replay import QuarantineReplay, ReplayOutcome
from edge.logs import RateLimitedLog
from edge.maintenance import alerts as alert_rules
from edge.maintenance import tasks as task_rules
from edge.maintenance.decisions import DecisionRequest, DecisionResult
from edge.metrics import GatewayMetrics
from edge.operator.service import DecisionService
from edge.records import AlertRecord, QuarantineEntry, TaskRecord
from edge.settings import Settings
from edge.status import NOT_CONFIGURED, StatusReport, build_status
from edge.times import datetime_to_us, now_us, us_to_datetime

log = logging.getLogger(__name__)


T = TypeVar("T")
_PREVIEW_BYTES = 1024


def _page(rows: list[tuple[str, T]], limit: int) -> Page[T]:
    """`rows` was asked for with limit + 1: a row beyond `limit` means there is a next page."""
    items = rows[:limit]
    more = len(rows) > limit
    return Page([item for _, item in items], items[-1][0] if more and items else None)


def _quarantine_item(row: QuarantineEntry) -> QuarantineItem:
    return QuarantineItem(
        seq=row.seq, received_at=us_to_datetime(row.received_us), source=row.source,
        transport=row.transport,
        reason=row.reason, detail=row.detail, payload_bytes=len(row.payload),
        payload_preview=row.payload[:_PREVIEW_BYTES].decode("utf-8", errors="replace"),
        replayed_at=None if row.replayed_us is None else us_to_datetime(row.replayed_us))


class CentralState(Protocol):
    """The central syncer's link state: up, down, refused, schema_missing, ..."""

    @property
    def state(self) -> str: ...


class DaemonApi:
    def __init__(self, settings: Settings, metrics: GatewayMetrics, *, buffer: SqliteBuffer,
                 pipeline: IngestPipeline, http_source: HttpSource, replay: QuarantineReplay,
                 decisions: DecisionService, mqtt: MqttSource,
                 agents: AgentRegistry, bus: EventBus, central: CentralState | None) -> None:
        self._settings = settings
        self._metrics = metrics
        self._buffer = buffer
        self._pipeline = pipeline
        self._http_source = http_source
        self._replay = replay
        self._decisions = decisions
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

    async def alerts(self, states: tuple[str, ...] | None, limit: int,
                     cursor: str | None) -> Page[AlertRecord]:
        return _page(await self._buffer.alerts.page(states, limit + 1, cursor), limit)

    async def tasks(self, states: tuple[str, ...] | None, limit: int,
                    cursor: str | None) -> Page[TaskRecord]:
        return _page(await self._buffer.tasks.page(states, limit + 1, cursor), limit)

    async def quarantine(self, reason: str | None, limit: int,
                         cursor: int | None) -> Page[QuarantineItem]:
        rows = await self._buffer.quarantine.page(reason, limit + 1, cursor)
        return _page([(str(row.seq), _quarantine_item(row)) for row in rows], limit)

    async def decide(self, request: DecisionRequest) -> DecisionResult:
        return await self._decisions.submit(request)

    async def alert_detail(self, alert_id: str) -> AlertDetail | None:
        alert = await self._buffer.alerts.get(alert_id)
        if alert is None:
            return None
        return AlertDetail(alert=alert, decisions=await self._buffer.decisions.for_target(alert_id),
                           allowed_actions=list(alert_rules.allowed_actions(alert)))

    async def task_detail(self, task_id: str) -> TaskDetail | None:
        task = await self._buffer.tasks.get(task_id)
        if task is None:
            return None
        return TaskDetail(task=task, decisions=await self._buffer.decisions.for_target(task_id),
                          allowed_actions=list(task_rules.allowed_actions(task.state)))

    async def sensor_readings(self, sensor_id: str, minutes: float, until: datetime | None,
                              limit: int) -> list[ReadingPoint]:
        rows = await self._buffer.readings.sensor_window(sensor_id, *_window(minutes, until),
                                                         limit)
        return [ReadingPoint(ts=us_to_datetime(ts), value=value) for ts, value in rows]

    async def sensor_states(self, sensor_id: str, minutes: float, until: datetime | None,
                            limit: int) -> list[StatePoint]:
        rows = await self._buffer.readings.state_window(sensor_id, *_window(minutes, until),
                                                        limit)
        return [StatePoint(ts=us_to_datetime(ts), state=state) for ts, state in rows]

    async def replay_quarantine(self, reason: str | None, limit: int,
                                after_seq: int) -> ReplayOutcome:
        outcome = await self._replay.replay(reason, limit, after_seq)
        log.info("quarantine replayed", extra=outcome.model_dump())
        return outcome

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


def _window(minutes: float, until: datetime | None) -> tuple[int, int]:
    """(since_us, until_us): the `minutes` up to `until` (default: now)."""
    until_us = datetime_to_us(until) if until is not None else now_us()
    return until_us - int(minutes * 60e6), until_us
