"""The event catalog: every event that travels on the in-process bus.

Events are immutable pydantic models. Batch events carry hot-path `Reading` tuples without
re-validating them (they were validated once, by the ingest pipeline).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, field_validator

from edge.records import DecisionRecord, Reading
from edge.times import as_utc

Severity = Literal["info", "warning", "critical"]


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


class BaseEventModel(BaseModel):
    """Fields every event has; `event_type` is fixed per class."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str] = "base"

    event_id: str = Field(default_factory=_new_id)
    timestamp: datetime = Field(default_factory=_now)
    source: str = Field(description="Id of the agent or part that published the event.")
    correlation_id: str | None = Field(
        default=None, description="Ties together events that stem from one cause."
    )

    @property
    def type(self) -> str:
        return self.event_type


class DataProcessedEvent(BaseEventModel):
    """Validated readings, published only after they are durably committed to the buffer."""

    event_type: ClassVar[str] = "data_processed"
    readings: SkipValidation[tuple[Reading, ...]]
    rejected_count: int = Field(default=0, ge=0)
    first_seq: int | None = Field(
        default=None, description="Buffer sequence numbers of the batch's new rows "
                                  "(None: every reading was a duplicate).")
    last_seq: int | None = None


class NodeStateEvent(BaseEventModel):
    """A Sparkplug B edge node or device went offline (NDEATH/DDEATH) or came back (birth).

    Its sensors are stale while it is offline: detection does not count their silence,
    and one alert (detector `node_offline`) says the node is gone, resolved at its rebirth.
    """

    event_type: ClassVar[str] = "node_state"
    scope: str = Field(description="group/node or group/node/device, as the topic names it")
    source_id: str = Field(description="The scope as an id (edge/ingest/sensor_ids.py): the "
                                       "node_offline alert's sensor and asset.")
    state: Literal["offline", "online"]
    sensor_ids: tuple[str, ...] = ()
    reason: str = ""
    at: datetime


class FeedGapEvent(BaseEventModel):
    """Events for this subscriber were dropped (its queue was full): catch up from the buffer.

    The bus delivers it, to that subscriber only, once its queue has room again; the buffer
    holds every committed reading, so nothing is lost, only judged later.
    """

    event_type: ClassVar[str] = "feed_gap"
    dropped: int = Field(ge=1, description="Events dropped since the last gap event.")


class AnomalyDetectedEvent(BaseEventModel):
    """A detector found something wrong with a sensor."""

    event_type: ClassVar[str] = "anomaly_detected"
    alert_id: str = Field(description="Deterministic: the same anomaly always gets the same id.")
    asset_id: str | None
    sensor_id: str
    detector: str
    severity: Severity
    score: float
    value: float
    reading_ts: datetime
    window: dict[str, Any] = Field(default_factory=dict)
    reason: str
    state: Literal["open", "updated", "resolved", "closed"] = "open"  # closed: by an operator
    opened_at: datetime
    snoozed_until: datetime | None = Field(
        default=None, description="An operator snoozed it: no escalation or repeat notification "
                                  "until then.")
    due_within_s: float | None = Field(
        default=None, description="Forecasts: the crossing may come this soon after `reading_ts` "
                                  "(the early end of the prediction interval); the task is due "
                                  "before it.")

    @field_validator("snoozed_until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # A snooze stored without an offset (older buffers) is UTC: never a naive time here.
        return None if value is None else as_utc(value)


class HumanDecisionEvent(BaseEventModel):
    """An operator decided about an alert or a task, and what came of it."""

    event_type: ClassVar[str] = "human_decision"
    decision: SkipValidation[DecisionRecord]


class MaintenanceTaskCreatedEvent(BaseEventModel):
    """A maintenance task was opened (or updated) for an asset."""

    event_type: ClassVar[str] = "maintenance_task_created"
    task_id: str = Field(description="Deterministic per asset and cause.")
    asset_id: str | None
    cause: str
    priority: Literal["low", "medium", "high", "urgent"]
    due_at: datetime
    alert_ids: tuple[str, ...] = ()
    description: str
    change: Literal["created", "updated", "escalated", "decided", "recovered"] = "created"
    state: str = "open"
