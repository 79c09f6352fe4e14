"""Central schema: gateways, sensor_readings (hypertable when possible), alerts, tasks.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import JSONB

from cloud_sync import timescale
from edge.settings import TimescaleSettings

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

log = logging.getLogger("cloud_sync.migrations")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gateways",
        sa.Column("gateway_id", sa.Text, primary_key=True),
        sa.Column("first_seen", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("last_seen", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("software_version", sa.Text),
        sa.Column("last_readings_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_alerts_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_tasks_seq", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "sensor_readings",
        sa.Column("time", _TS, nullable=False),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("sensor_id", sa.Text, nullable=False),
        sa.Column("asset_id", sa.Text),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("unit", sa.Text),
        sa.Column("quality", sa.Text),
        sa.Column("flags", sa.Integer, nullable=False, server_default="0"),
        sa.Column("received_at", _TS, nullable=False),
        # The idempotency key: a replayed reading conflicts here and is skipped.
        sa.PrimaryKeyConstraint("gateway_id", "sensor_id", "time", name="sensor_readings_pkey"),
    )
    op.create_table(
        "anomaly_alerts",
        sa.Column("alert_id", sa.Text, primary_key=True),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("asset_id", sa.Text),
        sa.Column("sensor_id", sa.Text, nullable=False),
        sa.Column("detector", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("score", sa.Double),
        sa.Column("value", sa.Double),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("resolved_at", _TS),
    )
    op.create_index("anomaly_alerts_open", "anomaly_alerts", ["asset_id", "opened_at"],
                    postgresql_where=sa.text("state = 'open'"))
    op.create_table(
        "maintenance_tasks",
        sa.Column("task_id", sa.Text, primary_key=True),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("asset_id", sa.Text),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("alert_ids", JSONB, nullable=False, server_default="[]"),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("due_at", _TS),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("maintenance_tasks_open", "maintenance_tasks", ["asset_id", "due_at"],
                    postgresql_where=sa.text("state = 'open'"))
    _time_series_features()


def _time_series_features() -> None:
    bind = op.get_bind()
    options = context.config.attributes.get("timescale") or TimescaleSettings()
    version = timescale.enable_extension(bind, options.mode)
    if version is None:
        op.create_index("sensor_readings_time_brin", "sensor_readings", ["time"],
                        postgresql_using="brin")
        if options.mode == "auto":
            log.warning("TimescaleDB is not available: sensor_readings is a plain table with a "
                        "BRIN index on time (no hypertable, compression, retention or hourly "
                        "aggregate)")
        return
    timescale.apply(bind, options)
    log.info("TimescaleDB %s: sensor_readings is a hypertable with compression and an "
             "hourly continuous aggregate", version)


def downgrade() -> None:
    op.execute(f"DROP MATERIALIZED VIEW IF EXISTS {timescale.HOURLY_VIEW} CASCADE")
    op.drop_table("maintenance_tasks")
    op.drop_table("anomaly_alerts")
    op.drop_table("sensor_readings")
    op.drop_table("gateways")
