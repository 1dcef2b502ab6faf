"""Keep what restores a replaced comms hub or gas proxy (8.12.1, 8.12.2): each one's device log
and each hub's HAN backup; and each device's key-agreement certificate, which a method C join
(8.7, CS03C) sends to its partner.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("key_agreement_certificate", sa.Text, nullable=True))
    op.create_table(
        "device_logs",
        sa.Column("eui", sa.String(16), primary_key=True),
        sa.Column("entries", sa.Text, nullable=False),
        sa.Column("han_backup", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("device_logs")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("key_agreement_certificate")
