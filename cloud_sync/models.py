"""The central schema's one source of truth: SQLAlchemy 2 typed declarative models.

Everything else is derived from these tables: the syncer's COPY column lists and upserts
(cloud_sync/statements.py), and the check that the Alembic migrations (frozen history in
migrations/versions/) build exactly this schema (tests/integration/test_schema_agreement.py
runs `alembic upgrade head` and `compare_metadata`). Keys make every write idempotent:
readings by (gateway_id, sensor_id, time), alerts and tasks by ids the gateway derives
deterministically, so a replay never makes a second row.

Column `info={"immutable": True}`: set when a row is first written, never changed by a
later version of the same alert or task (the upserts leave it alone).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Double, Index, Integer, PrimaryKeyConstraint, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

_IMMUTABLE = {"immutable": True}
# Alerts and tasks: `buffer_epoch_us` (when the gateway's buffer file was made) and
# `version_seq` (the version's seq in that buffer's log) say which version a row holds. The
# newest is the highest pair, never the latest updated_at: versions stamped on two clocks,
# or at one microsecond, would leave a row stuck at an older state. NULL: from before 0005.
# Indexes that only one storage engine has, outside the models: plain PostgreSQL gets a BRIN
# index on time (migration 0001); TimescaleDB's create_hypertable makes its own time index.
ENGINE_SPECIFIC_INDEXES = frozenset({"sensor_readings_time_brin", "sensor_readings_time_idx",
                                     "sensor_states_time_brin", "sensor_states_time_idx"})


class Base(DeclarativeBase):
    pass


class GatewayORM(Base):
    """One row per gateway: a heartbeat and how far its sync got, per kind."""

    __tablename__ = "gateways"

    gateway_id: Mapped[str] = mapped_column(Text, primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    software_version: Mapped[str | None] = mapped_column(Text)
    last_readings_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_alerts_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_tasks_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_decisions_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_labels_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_states_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_catalog_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")


class SensorReadingORM(Base):
    """A sensor reading; a TimescaleDB hypertable on `time` when the extension exists."""

    __tablename__ = "sensor_readings"
    __table_args__ = (
        # The idempotency key: a replayed reading conflicts here and is skipped.
        PrimaryKeyConstraint("gateway_id", "sensor_id", "time", name="sensor_readings_pkey"),
    )

    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    gateway_id: Mapped[str] = mapped_column(Text)
    sensor_id: Mapped[str] = mapped_column(Text)
    asset_id: Mapped[str | None] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Double)
    unit: Mapped[str | None] = mapped_column(Text)
    quality: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[int] = mapped_column(Integer, server_default="0")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SensorReadingConflictORM(Base):
    """A reading that arrived with the key of a stored one but another value (kept visible)."""

    __tablename__ = "sensor_reading_conflicts"
    __table_args__ = (
        PrimaryKeyConstraint("gateway_id", "sensor_id", "time", "received_value",
                             name="sensor_reading_conflicts_pkey"),
    )

    gateway_id: Mapped[str] = mapped_column(Text)
    sensor_id: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stored_value: Mapped[float] = mapped_column(Double)
    received_value: Mapped[float] = mapped_column(Double)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AnomalyAlertORM(Base):
    """The latest state of an alert (opened once, updated, resolved)."""

    __tablename__ = "anomaly_alerts"
    __table_args__ = (
        Index("anomaly_alerts_open", "asset_id", "opened_at",
              postgresql_where=text("state = 'open'")),
    )

    alert_id: Mapped[str] = mapped_column(Text, primary_key=True)
    gateway_id: Mapped[str] = mapped_column(Text, info=_IMMUTABLE)
    asset_id: Mapped[str | None] = mapped_column(Text, info=_IMMUTABLE)
    sensor_id: Mapped[str] = mapped_column(Text, info=_IMMUTABLE)
    detector: Mapped[str] = mapped_column(Text, info=_IMMUTABLE)
    severity: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Double)
    value: Mapped[float | None] = mapped_column(Double)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=_IMMUTABLE)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    buffer_epoch_us: Mapped[int | None] = mapped_column(BigInteger)
    version_seq: Mapped[int | None] = mapped_column(BigInteger)


class MaintenanceTaskORM(Base):
    """The latest state of a maintenance task (one open task per asset and cause)."""

    __tablename__ = "maintenance_tasks"
    __table_args__ = (
        Index("maintenance_tasks_open", "asset_id", "due_at",
              postgresql_where=text("state = 'open'")),
    )

    task_id: Mapped[str] = mapped_column(Text, primary_key=True)
    gateway_id: Mapped[str] = mapped_column(Text, info=_IMMUTABLE)
    asset_id: Mapped[str | None] = mapped_column(Text, info=_IMMUTABLE)
    cause: Mapped[str] = mapped_column(Text, info=_IMMUTABLE)
    priority: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    assignee: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    alert_ids: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=_IMMUTABLE)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    buffer_epoch_us: Mapped[int | None] = mapped_column(BigInteger)
    version_seq: Mapped[int | None] = mapped_column(BigInteger)


class MaintenanceDecisionORM(Base):
    """An operator decision: made at a gateway (synced with its outcome), or inserted here by
    an engineer for a gateway (outcome NULL until that gateway has applied it).

    To decide centrally, insert decision_id, gateway_id, target_kind ('alert' or 'task'),
    target_id, action, actor, note and decided_at (params as JSON where the action needs
    them); the gateway pulls it, applies it through its own state machine, and fills
    outcome ('applied' or 'rejected'), outcome_detail, allowed_actions and applied_at.
    """

    __tablename__ = "maintenance_decisions"
    __table_args__ = (
        # Ids are chosen by whoever decides: unique per gateway, not across the fleet.
        PrimaryKeyConstraint("gateway_id", "decision_id", name="maintenance_decisions_pkey"),
        Index("maintenance_decisions_pending", "gateway_id", "decided_at",
              postgresql_where=text("outcome IS NULL")),
    )

    gateway_id: Mapped[str] = mapped_column(Text)
    decision_id: Mapped[str] = mapped_column(Text)
    target_kind: Mapped[str] = mapped_column(Text, info=_IMMUTABLE)
    target_id: Mapped[str] = mapped_column(Text, info=_IMMUTABLE)
    action: Mapped[str] = mapped_column(Text, info=_IMMUTABLE)
    actor: Mapped[str] = mapped_column(Text, info=_IMMUTABLE)
    note: Mapped[str] = mapped_column(Text, server_default="", info=_IMMUTABLE)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}", info=_IMMUTABLE)
    origin: Mapped[str] = mapped_column(Text, server_default="central", info=_IMMUTABLE)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 info=_IMMUTABLE)
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(Text)
    outcome_detail: Mapped[str | None] = mapped_column(Text)
    allowed_actions: Mapped[list[str] | None] = mapped_column(JSONB)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                  info=_IMMUTABLE)


class FaultLabelORM(Base):
    """A confirmed fault (a task completed with fault_found): the fleet's labelled history."""

    __tablename__ = "fault_labels"

    label_id: Mapped[str] = mapped_column(Text, primary_key=True)
    gateway_id: Mapped[str] = mapped_column(Text)
    asset_id: Mapped[str | None] = mapped_column(Text)
    sensor_ids: Mapped[list[str]] = mapped_column(JSONB)
    cause: Mapped[str] = mapped_column(Text)
    alert_ids: Mapped[list[str]] = mapped_column(JSONB)
    task_id: Mapped[str] = mapped_column(Text)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text)
    decision_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SensorStateORM(Base):
    """A value that is not a number (an equipment state, a flag, a text) or a null; keyed like
    readings, a TimescaleDB hypertable on `time` when the extension exists."""

    __tablename__ = "sensor_states"
    __table_args__ = (
        PrimaryKeyConstraint("gateway_id", "sensor_id", "time", name="sensor_states_pkey"),
    )

    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    gateway_id: Mapped[str] = mapped_column(Text)
    sensor_id: Mapped[str] = mapped_column(Text)
    asset_id: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text)  # NULL: the device sent a null
    quality: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[int] = mapped_column(Integer, server_default="0")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SensorCatalogORM(Base):
    """What a gateway knows about a sensor from its source: the original name its id was made
    from (Sparkplug metric names, JSON keys), datatype, unit and properties."""

    __tablename__ = "sensor_catalog"
    __table_args__ = (
        PrimaryKeyConstraint("gateway_id", "sensor_id", name="sensor_catalog_pkey"),
    )

    gateway_id: Mapped[str] = mapped_column(Text)
    sensor_id: Mapped[str] = mapped_column(Text)
    asset_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    datatype: Mapped[str] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    state: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), info=_IMMUTABLE)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
