"""GatewayApi: everything the HTTP layer may ask of the running gateway, as one typed port.

The HTTP layer knows this Protocol and the response models below, never the daemon's
concrete parts; the daemon implements it (edge/api.py). Every response is a pydantic model,
so `/openapi.json` documents it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, Protocol, TypeVar

from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field

from edge.ingest.http_source import IngestOutcome
from edge.ingest.ports import PipelineHealth
from edge.ingest.replay import ReplayOutcome
from edge.maintenance.decisions import DecisionRequest, DecisionResult
from edge.records import AlertRecord, DecisionRecord, TaskRecord
from edge.status import StatusReport

# The list filters (edge/maintenance: ALERT_FILTERS, TASK_FILTERS; a test keeps them equal).
AlertState = Literal["open", "resolved", "closed", "active"]
TaskState = Literal["open", "acknowledged", "in_progress", "done", "cancelled", "active"]


class Readiness(BaseModel):
    ready: bool
    reasons: list[str]
    central: str | None = Field(
        default=None, description="The central link's state (detail; it does not make the "
                                  "gateway unready: the buffer holds what central lacks).")


class Identity(BaseModel):
    """Who a bearer token is: its role (ingest, operator, read) and whether it may decide."""

    role: str
    may_decide: bool


class AgentReport(BaseModel):
    """One bus-driven agent: its state, work done, failures and its bus queue."""

    agent_id: str
    state: str
    capabilities: list[str]
    events_processed: int
    errors: int
    last_error: str | None
    uptime_s: float
    queued: int = Field(description="Events waiting in its bus queue.")
    overflowed: int = Field(description="Events dropped for it (full queue); it catches up.")
    backlog_readings: int | None = Field(
        default=None, description="Committed readings it has not judged yet (detection).")


ItemT = TypeVar("ItemT")


@dataclass(frozen=True, slots=True)
class Page(Generic[ItemT]):
    """One page of a list, newest first; `next_cursor` continues it (None: the end)."""

    items: list[ItemT]
    next_cursor: str | None


class QuarantineItem(BaseModel):
    """A quarantined message: what came, from where, why it was refused."""

    seq: int = Field(description="Its place in the quarantine (the paging cursor).")
    received_at: datetime
    source: str = Field(description="The MQTT topic, 'http', or 'buffer' (a conflict).")
    transport: str = Field(description="mqtt, http, or buffer (a row the buffer made: a "
                                       "conflict); tells a topic named 'http' from HTTP.")
    reason: str
    detail: str
    payload_bytes: int
    payload_preview: str = Field(description="The first 1 KiB, as UTF-8 (invalid bytes replaced).")
    replayed_at: datetime | None = Field(description="When it was replayed after a config fix.")


class AlertDetail(BaseModel):
    alert: AlertRecord
    decisions: list[DecisionRecord]
    allowed_actions: list[str]


class TaskDetail(BaseModel):
    task: TaskRecord
    decisions: list[DecisionRecord]
    allowed_actions: list[str]


class ReadingPoint(BaseModel):
    ts: datetime
    value: float


class StatePoint(BaseModel):
    ts: datetime
    state: str | None = Field(description="A state (running, true, ...); null: a null value.")


class GatewayApi(Protocol):
    @property
    def metrics_registry(self) -> CollectorRegistry: ...

    def readiness(self) -> Readiness: ...

    def request_rejected(self, reason: str, path: str) -> None:
        """A guard refused a request ("unauthorized", "body_too_large"): count and log it."""

    async def ingest(self, body: bytes) -> IngestOutcome: ...

    async def alerts(self, states: tuple[str, ...] | None, limit: int,
                     cursor: str | None) -> Page[AlertRecord]:
        """The latest version of each alert whose state is one of `states` (None: all)."""

    async def tasks(self, states: tuple[str, ...] | None, limit: int,
                    cursor: str | None) -> Page[TaskRecord]: ...

    async def quarantine(self, reason: str | None, limit: int,
                         cursor: int | None) -> Page[QuarantineItem]: ...

    async def replay_quarantine(self, reason: str | None, limit: int,
                                after_seq: int) -> ReplayOutcome: ...

    async def decide(self, request: DecisionRequest) -> DecisionResult: ...

    async def alert_detail(self, alert_id: str) -> AlertDetail | None: ...

    async def task_detail(self, task_id: str) -> TaskDetail | None: ...

    async def sensor_readings(self, sensor_id: str, minutes: float, until: datetime | None,
                              limit: int) -> list[ReadingPoint]: ...

    async def sensor_states(self, sensor_id: str, minutes: float, until: datetime | None,
                            limit: int) -> list[StatePoint]: ...

    def agents(self) -> list[AgentReport]: ...

    def pipeline(self) -> PipelineHealth: ...

    async def status(self) -> StatusReport: ...
