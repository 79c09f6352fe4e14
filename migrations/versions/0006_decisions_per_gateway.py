"""Decision ids are unique per gateway, not across the fleet.

Decision ids are chosen by whoever decides (an HMI counter, a work-order number), so two
gateways may use the same one. Keyed by decision_id alone, the second gateway's decision was
lost centrally and could settle another gateway's pending central decision. The key becomes
(gateway_id, decision_id).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("maintenance_decisions_pkey", "maintenance_decisions", type_="primary")
    op.create_primary_key("maintenance_decisions_pkey", "maintenance_decisions",
                          ["gateway_id", "decision_id"])


def downgrade() -> None:
    op.drop_constraint("maintenance_decisions_pkey", "maintenance_decisions", type_="primary")
    op.create_primary_key("maintenance_decisions_pkey", "maintenance_decisions", ["decision_id"])
