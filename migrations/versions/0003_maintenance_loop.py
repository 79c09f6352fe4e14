"""The maintenance loop: operator decisions, task assignee and resolution, fault labels.

maintenance_decisions holds every decision: those made at a gateway (synced, with their
outcome) and those an engineer inserts centrally for a gateway (outcome NULL until that
gateway has applied them; it then fills outcome, outcome_detail and applied_at).
fault_labels keeps the confirmed faults (tasks completed with fault_found) as labelled
examples. gateways counts how far each of the two logs is synced.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("maintenance_tasks", sa.Column("assignee", sa.Text))
    op.add_column("maintenance_tasks", sa.Column("resolution", sa.Text))
    for kind in ("decisions", "labels"):
        op.add_column("gateways", sa.Column(f"last_{kind}_seq", sa.BigInteger, nullable=False,
                                            server_default="0"))
    op.create_table(
        "maintenance_decisions",
        sa.Column("decision_id", sa.Text, primary_key=True),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("target_kind", sa.Text, nullable=False),
        sa.Column("target_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("params", JSONB, nullable=False, server_default="{}"),
        sa.Column("origin", sa.Text, nullable=False, server_default="central"),
        sa.Column("decided_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("received_at", _TS),
        sa.Column("outcome", sa.Text),
        sa.Column("outcome_detail", sa.Text),
        sa.Column("allowed_actions", JSONB),
        sa.Column("applied_at", _TS),
        sa.Column("recorded_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    # What a gateway pulls: its decisions that no gateway has applied yet.
    op.create_index("maintenance_decisions_pending", "maintenance_decisions",
                    ["gateway_id", "decided_at"], postgresql_where=sa.text("outcome IS NULL"))
    op.create_table(
        "fault_labels",
        sa.Column("label_id", sa.Text, primary_key=True),
        sa.Column("gateway_id", sa.Text, nullable=False),
        sa.Column("asset_id", sa.Text),
        sa.Column("sensor_ids", JSONB, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("alert_ids", JSONB, nullable=False),
        sa.Column("task_id", sa.Text, nullable=False),
        sa.Column("window_start", _TS, nullable=False),
        sa.Column("window_end", _TS, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("decision_id", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fault_labels")
    op.drop_index("maintenance_decisions_pending", table_name="maintenance_decisions")
    op.drop_table("maintenance_decisions")
    for kind in ("decisions", "labels"):
        op.drop_column("gateways", f"last_{kind}_seq")
    op.drop_column("maintenance_tasks", "resolution")
    op.drop_column("maintenance_tasks", "assignee")
