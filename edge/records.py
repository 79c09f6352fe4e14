"""Records that go into the buffer and on to the central database (the shared kernel).

Readings and quarantine rows are plain named tuples, because they are built once per
message: a pydantic model per reading costs ~10 µs, a NamedTuple ~0.3 µs, and it feeds
SQLite's `executemany` as it is. Alerts and tasks are rare, so they are validated models.
The sync rows (`ReadingRow`, `VersionRow`) are what the buffer hands the syncer: their
field order is the column order of the buffer's SELECT and of the central COPY, both
derived from the fields, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Reading.flags bits
# The detectors that judge against what a sensor (or asset) learned, as opposed to the
# datasheet's hard limits (`limits`, `rate`), which always alert: operators' false-alarm
# feedback tunes only these (tests/unit/test_detectors.py checks the names).
LEARNED_DETECTORS = frozenset({"outlier", "drift", "flatline", "silence", "asset_model"})
FLAG_TS_FROM_ARRIVAL = 1  # the payload had no ts; the arrival time was used
FLAG_UNIT_CONVERTED = 2  # the value was converted to the sensor's canonical unit
FLAG_CLOCK_SUSPECT = 4  # stamped before ingest.min_reading_time or older than max_reading_age_s
FLAG_RETAINED = 8  # from a retained MQTT message (taken once per topic and payload)
FLAG_HISTORICAL = 16  # sent as historical (Sparkplug is_historical): stored, not judged live


class Reading(NamedTuple):
    """One accepted sensor reading; times are integer microseconds since the epoch, UTC."""

    sensor_id: str
    asset_id: str | None
    ts_us: int
    value: float
    unit: str | None
    quality: str | None
    flags: int
    received_us: int


class StateReading(NamedTuple):
    """A value that is not a number: an equipment state, a flag, a text, or a null.

    `state` is None when the device sent a null (the value is unknown, not zero); booleans are
    "true"/"false", enumerations their mapped name, DateTimes RFC 3339. Keyed like readings.
    """

    sensor_id: str
    asset_id: str | None
    ts_us: int
    state: str | None
    quality: str | None
    flags: int
    received_us: int


class CatalogRecord(BaseModel):
    """What the gateway knows about a sensor from its source (a Sparkplug birth, a mapping):
    the original name a sensor id was made from, its datatype, unit and properties."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sensor_id: str
    asset_id: str | None
    name: str = Field(description="The name as the source wrote it.")
    source: Literal["sparkplug_b", "mapping"]
    scope: str = Field(description="Sparkplug: group/node[/device]; mapping: the subscription.")
    datatype: str
    unit: str | None
    properties: dict[str, Any] = Field(default_factory=dict)
    state: Literal["current"] = "current"
    first_seen_at: datetime
    updated_at: datetime

    @field_validator("name", "scope", "unit")
    @classmethod
    def _without_nul(cls, text: str | None) -> str | None:
        """A source may name things with NUL, which no PostgreSQL text or jsonb can hold:
        shown as U+FFFD, so the entry (and every row synced after it) still goes through."""
        return text.replace("\x00", "\ufffd") if text else text

    @field_validator("properties")
    @classmethod
    def _properties_without_nul(cls, properties: dict[str, Any]) -> dict[str, Any]:
        return {key.replace("\x00", "\ufffd"): value.replace("\x00", "\ufffd")
                if isinstance(value, str) else value for key, value in properties.items()}


class SparkplugBirth(NamedTuple):
    """The last birth of an edge node or device, kept so aliases decode after a restart."""

    scope: str
    bdseq: int | None
    payload: bytes
    received_us: int


# Where a message came from, apart from its source name (an MQTT topic may be called 'http').
Transport = Literal["mqtt", "http", "buffer"]  # buffer: a row the buffer made (a conflict)


class QuarantineEntry(NamedTuple):
    """A quarantine row as read back: for the API and for replays."""

    seq: int
    received_us: int
    source: str
    payload: bytes
    reason: str
    detail: str
    replayed_us: int | None
    transport: Transport


class RetainedTaken(NamedTuple):
    """A retained message the pipeline took, remembered so it is not taken again."""

    topic: str
    digest: bytes
    taken_us: int


class QuarantineRecord(NamedTuple):
    """One rejected message (or one rejected element of an array payload)."""

    received_us: int
    source: str  # the MQTT topic, "http", or "buffer"
    payload: bytes
    reason: str
    detail: str
    transport: Transport


class ReadingRow(NamedTuple):
    """A buffered reading as the syncer reads it: its buffer sequence number, then the reading."""

    seq: int
    sensor_id: str
    asset_id: str | None
    ts_us: int
    value: float
    unit: str | None
    quality: str | None
    flags: int
    received_us: int


if ReadingRow._fields[1:] != Reading._fields:  # checked at import, also under python -O
    raise TypeError("ReadingRow must be seq followed by Reading's fields")


class VersionRow(NamedTuple):
    """One buffered alert or task version as the syncer reads it; `body` is its JSON."""

    seq: int
    item_id: str
    body: str


@dataclass(frozen=True, slots=True)
class BatchExtras:
    """What a batch commits besides readings: states, catalogue entries, Sparkplug births."""

    states: Sequence[StateReading] = ()
    catalog: Sequence[CatalogRecord] = ()
    births: Sequence[SparkplugBirth] = ()

    def __bool__(self) -> bool:
        return bool(self.states or self.catalog or self.births)


NO_EXTRAS = BatchExtras()


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What one committed batch did; `first_seq..last_seq` are the new readings' rows."""

    inserted: int
    duplicates: int  # exact repeats of a stored reading (e.g. broker redelivery)
    quarantined: int  # including conflicts
    first_seq: int | None = None
    last_seq: int | None = None
    conflicts: int = 0  # same sensor and ts, another value: quarantined as conflicting_duplicate
    conflicted: tuple[tuple[int, str], ...] = ()  # (index in the batch's readings, detail)
    states_inserted: int = 0
    states_duplicates: int = 0


class AlertRecord(BaseModel):
    """One version of an alert, as buffered and synced (the central row keeps the latest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str
    asset_id: str | None
    sensor_id: str
    detector: str
    severity: Literal["info", "warning", "critical"]
    state: Literal["open", "resolved", "closed"]  # closed: by an operator
    score: float | None = None
    value: float | None = None
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None


TargetKind = Literal["alert", "task"]
Origin = Literal["gateway", "http", "mqtt", "central", "cli"]
Outcome = Literal["applied", "rejected"]


class DecisionRecord(BaseModel):
    """A decision and what came of it: buffered, synced to maintenance_decisions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision_id: str
    target_kind: TargetKind
    target_id: str
    action: str
    actor: str
    note: str
    params: dict[str, Any]
    origin: Origin
    decided_at: datetime
    received_at: datetime
    outcome: Outcome
    outcome_detail: str
    allowed_actions: list[str] = Field(default_factory=list,
                                       description="What the target allowed (when rejected).")



class LabelRecord(BaseModel):
    """A confirmed fault: a task completed with fault_found, kept as a labelled example.

    The fleet's own labelled history: which sensors of which asset, over which span, showed
    which cause, as the technician confirmed it (synced to fault_labels).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    label_id: str
    asset_id: str | None
    sensor_ids: list[str]
    cause: str
    alert_ids: list[str]
    task_id: str
    window_start: datetime
    window_end: datetime
    note: str
    decision_id: str
    created_at: datetime


class TaskRecord(BaseModel):
    """One version of a maintenance task, as buffered and synced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str
    asset_id: str | None
    cause: str
    priority: Literal["low", "medium", "high", "urgent"]
    state: Literal["open", "acknowledged", "in_progress", "done", "cancelled"]
    description: str
    assignee: str | None = None
    resolution: str | None = Field(
        default=None, description="done/cancelled: completed, fault_found, no_fault_found, "
                                  "resolved_by_recovery, cancelled")
    alert_ids: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    due_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
