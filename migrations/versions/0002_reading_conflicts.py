"""sensor_reading_conflicts: readings that arrived with a key the central side already had.

A reading with the same (gateway, sensor, time) as a stored one but another value is kept
here instead of vanishing in `ON CONFLICT DO NOTHING` (field trial item 12).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sensor_reading_conflicts",
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("sensor_id", sa.Text, nullable=False),
        sa.Column("time", _TS, nullable=False),
        sa.Column("stored_value", sa.Double, nullable=False),
        sa.Column("received_value", sa.Double, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False, server_default=sa.func.now()),
        # A replayed batch records the same conflict once.
        sa.PrimaryKeyConstraint("gateway_id", "sensor_id", "time", "received_value",
                                name="sensor_reading_conflicts_pkey"),
    )


def downgrade() -> None:
    op.drop_table("sensor_reading_conflicts")
