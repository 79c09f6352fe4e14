"""What is not a number, and what names mean: sensor_states and sensor_catalog.

sensor_states holds equipment states, flags, texts and nulls (Sparkplug Boolean/String/
DateTime metrics, mapped enumerations), keyed like sensor_readings; where TimescaleDB was
enabled (migration 0001), it is a hypertable with the same compression and retention.
sensor_catalog keeps, per gateway and sensor, the original name a sensor id was made from,
with datatype, unit and properties. gateways counts how far both logs are synced.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import JSONB

from cloud_sync import timescale
from edge.settings import TimescaleSettings

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    for kind in ("states", "catalog"):
        op.add_column("gateways", sa.Column(f"last_{kind}_seq", sa.BigInteger, nullable=False,
                                            server_default="0"))
    op.create_table(
        "sensor_states",
        sa.Column("time", _TS, nullable=False),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("sensor_id", sa.Text, nullable=False),
        sa.Column("asset_id", sa.Text),
        sa.Column("state", sa.Text),
        sa.Column("quality", sa.Text),
        sa.Column("flags", sa.Integer, nullable=False, server_default="0"),
        sa.Column("received_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("gateway_id", "sensor_id", "time", name="sensor_states_pkey"),
    )
    op.create_table(
        "sensor_catalog",
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("sensor_id", sa.Text, nullable=False),
        sa.Column("asset_id", sa.Text),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("datatype", sa.Text, nullable=False),
        sa.Column("unit", sa.Text),
        sa.Column("properties", JSONB, nullable=False, server_default="{}"),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("first_seen_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("gateway_id", "sensor_id", name="sensor_catalog_pkey"),
    )
    bind = op.get_bind()
    if not timescale.installed(bind):
        op.create_index("sensor_states_time_brin", "sensor_states", ["time"],
                        postgresql_using="brin")
        return
    options = context.config.attributes.get("timescale") or TimescaleSettings()
    for statement in timescale.hypertable_statements("sensor_states", options):
        op.execute(statement.sql)
    log.info("TimescaleDB: sensor_states is a hypertable with compression")


def downgrade() -> None:
    op.drop_table("sensor_catalog")
    op.drop_table("sensor_states")
    for kind in ("states", "catalog"):
        op.drop_column("gateways", f"last_{kind}_seq")
