"""The central schema as SQLAlchemy 2 typed declarative models.

Migrations (`migrations/versions/`) create these tables; the models document them and let
engineers query them from Python. Keys make every write idempotent: readings by
(gateway_id, sensor_id, time), alerts and tasks by ids the gateway derives
deterministically, so a replay never makes a second row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Double, Integer, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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


class SensorReadingORM(Base):
    """A sensor reading; a TimescaleDB hypertable on `time` when the extension exists."""

    __tablename__ = "sensor_readings"

    gateway_id: Mapped[str] = mapped_column(Text, primary_key=True)
    sensor_id: Mapped[str] = mapped_column(Text, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    asset_id: Mapped[str | None] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Double, nullable=False)
    unit: Mapped[str | None] = mapped_column(Text)
    quality: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[int] = mapped_column(Integer, server_default="0")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AnomalyAlertORM(Base):
    """The latest state of an alert (opened once, updated, resolved)."""

    __tablename__ = "anomaly_alerts"

    alert_id: Mapped[str] = mapped_column(Text, primary_key=True)
    gateway_id: Mapped[str] = mapped_column(Text, nullable=False)
    asset_id: Mapped[str | None] = mapped_column(Text)
    sensor_id: Mapped[str] = mapped_column(Text, nullable=False)
    detector: Mapped[str] = mapped_column(Text, nullable=False)
    severity: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False)
    score: Mapped[float | None] = mapped_column(Double)
    value: Mapped[float | None] = mapped_column(Double)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MaintenanceTaskORM(Base):
    """The latest state of a maintenance task (one open task per asset and cause)."""

    __tablename__ = "maintenance_tasks"

    task_id: Mapped[str] = mapped_column(Text, primary_key=True)
    gateway_id: Mapped[str] = mapped_column(Text, nullable=False)
    asset_id: Mapped[str | None] = mapped_column(Text)
    cause: Mapped[str] = mapped_column(Text, nullable=False)
    priority: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    alert_ids: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
