"""The gateway's status report: what `edge-gateway status` and `/api/v1/status` show.

`build_status` reads it from the buffer's stores (plus the link states the daemon knows),
through the small `StatusSources` port; the CLI renders it (`render`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from edge.detection.feedback import FEEDBACK_KEY, FeedbackBook
from edge.times import now_us


class Depth(Protocol):
    @property
    def rows(self) -> int: ...

    @property
    def unsynced(self) -> int: ...

    @property
    def oldest_unsynced_us(self) -> int | None: ...


class DepthReader(Protocol):
    async def depths(self) -> Mapping[str, Depth]: ...


class OpenCounter(Protocol):
    async def count_open(self) -> int: ...


class JsonReader(Protocol):
    async def get_json(self, key: str) -> Any: ...


class StatusSources(Protocol):
    """The buffer's stores that a status report reads."""

    @property
    def meta(self) -> JsonReader: ...

    @property
    def status(self) -> DepthReader: ...

    @property
    def alerts(self) -> OpenCounter: ...

    @property
    def tasks(self) -> OpenCounter: ...


class KindStatus(BaseModel):
    rows: int
    unsynced: int


class FeedbackStatus(BaseModel):
    """Operators' false-alarm feedback held by detection, per sensor and detector."""

    sensor_id: str
    detector: str
    false_alarms: int
    budget_factor: float = Field(description="The sensor's false-alert budget is scaled by this.")
    suppressed_until: datetime | None


class StatusReport(BaseModel):
    """Buffer depth per kind, sync lag, link states, open alerts and tasks."""

    source: str = "daemon"
    buffer: dict[str, KindStatus]
    sync_lag_s: float | None = Field(
        description="Age of the oldest reading central lacks; null when central is not "
                    "configured.")
    central: str = Field(
        description="up, down, refused, schema_missing, schema_outdated, connecting, "
                    "'not configured', or 'unknown' (read from the buffer, daemon down)")
    mqtt_connected: bool | None
    open_alerts: int
    open_tasks: int
    detection_feedback: list[FeedbackStatus] = Field(default_factory=list)


NOT_CONFIGURED = "not configured"


async def build_status(buffer: StatusSources, *, mqtt_connected: bool | None,
                       central: str, source: str = "daemon") -> StatusReport:
    depths = await buffer.status.depths()
    oldest = depths["readings"].oldest_unsynced_us
    return StatusReport(
        source=source,
        buffer={kind: KindStatus(rows=d.rows, unsynced=d.unsynced) for kind, d in depths.items()},
        sync_lag_s=None if central == NOT_CONFIGURED else (
            round((now_us() - oldest) / 1e6, 3) if oldest else 0.0),
        central=central,
        mqtt_connected=mqtt_connected,
        open_alerts=await buffer.alerts.count_open(),
        open_tasks=await buffer.tasks.count_open(),
        detection_feedback=_feedback(await buffer.meta.get_json(FEEDBACK_KEY)),
    )


def _feedback(saved: Any) -> list[FeedbackStatus]:
    book = FeedbackBook(0.0)
    book.load(saved or [])
    now = now_us() / 1e6
    return [FeedbackStatus(
        sensor_id=view.sensor_id, detector=view.detector, false_alarms=view.false_alarms,
        budget_factor=round(book.budget_factor(view.sensor_id), 4),
        suppressed_until=datetime.fromtimestamp(view.suppressed_until, UTC)
        if view.suppressed_until > now else None) for view in book.views()]


def render(status: StatusReport) -> str:
    lines = [f"source        : {status.source}"]
    for kind, depth in status.buffer.items():
        synced = "" if kind == "quarantine" else f" ({depth.unsynced} not yet synced)"
        lines.append(f"buffer {kind:<11}: {depth.rows} rows{synced}")
    lines += [
        "sync lag      : " + ("central not configured" if status.sync_lag_s is None
                               else f"{status.sync_lag_s} s"),
        f"central       : {status.central}",
        f"mqtt          : {_yes_no(status.mqtt_connected)}",
        f"open alerts   : {status.open_alerts}",
        f"open tasks    : {status.open_tasks}",
    ]
    for entry in status.detection_feedback:
        quiet = f", suppressed until {entry.suppressed_until:%Y-%m-%d %H:%M}Z" \
            if entry.suppressed_until else ""
        lines.append(f"false alarms  : {entry.detector} on {entry.sensor_id}: "
                     f"{entry.false_alarms}, sensor budget x{entry.budget_factor:g}{quiet}")
    return "\n".join(lines)


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("connected" if value else "disconnected")
