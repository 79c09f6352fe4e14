"""Alert and task rows keep the newest version by the gateway buffer's order, not by time.

anomaly_alerts and maintenance_tasks get buffer_epoch_us and version_seq: where a version
sits in the gateway's buffer log. The upsert keeps the highest (buffer_epoch_us,
version_seq); ordering by updated_at left a row stuck when a later version carried an
earlier or equal time (versions stamped on the gateway's and the sensors' clocks).
Rows written before this revision have NULLs: their next version replaces them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("anomaly_alerts", "maintenance_tasks"):
        op.add_column(table, sa.Column("buffer_epoch_us", sa.BigInteger))
        op.add_column(table, sa.Column("version_seq", sa.BigInteger))


def downgrade() -> None:
    for table in ("anomaly_alerts", "maintenance_tasks"):
        op.drop_column(table, "version_seq")
        op.drop_column(table, "buffer_epoch_us")
