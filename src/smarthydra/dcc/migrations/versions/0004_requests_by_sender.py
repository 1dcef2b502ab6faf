"""Index a user's requests in order: the operator console lists one user's requests, newest
first, and without it that meant reading the whole table.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_service_requests_sender_sequence", "service_requests", ["sender", "sequence"]
    )


def downgrade() -> None:
    op.drop_index("ix_service_requests_sender_sequence", table_name="service_requests")
