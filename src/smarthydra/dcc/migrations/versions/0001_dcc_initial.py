"""The DCC's first schema: audit chain, counters, users, inventory, requests, queues.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("previous", sa.LargeBinary(32), nullable=False),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "request_counters",
        sa.Column("user_eui", sa.String(16), primary_key=True),
        sa.Column("last_counter", sa.String(20), nullable=False),
    )
    op.create_table(
        "dcc_users",
        sa.Column("eui", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("signing_key", sa.Text, nullable=False),
        sa.Column("endpoint", sa.Text, nullable=True),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_eui", sa.String(16), sa.ForeignKey("dcc_users.eui"), primary_key=True),
        sa.Column("role", sa.String(8), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "devices",
        sa.Column("eui", sa.String(16), primary_key=True),
        sa.Column("device_type", sa.String(8), nullable=False),
        sa.Column("hub", sa.String(16), nullable=False),
        sa.Column("mpxn", sa.String(32), nullable=False),
        sa.Column("key_agreement_key", sa.Text, nullable=False),
        sa.Column("smi_status", sa.String(32), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
    )
    op.create_table(
        "registrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("mpxn", sa.String(32), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("party", sa.String(16), nullable=False),
        sa.Column("effective_from", _TS, nullable=False),
    )
    op.create_index("ix_registrations_mpxn", "registrations", ["mpxn"])
    op.create_table(
        "service_requests",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("sender", sa.String(16), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("srv", sa.String(16), nullable=False),
        sa.Column("command_variant", sa.Integer, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("accepted_at", _TS, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
    )
    op.create_index("ix_service_requests_state", "service_requests", ["state"])
    op.create_index("ix_service_requests_sequence", "service_requests", ["sequence"])
    op.create_table(
        "quarantine",
        sa.Column("ticket", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id",
            sa.String(128),
            sa.ForeignKey("service_requests.request_id"),
            nullable=False,
        ),
        sa.Column("user_eui", sa.String(16), nullable=False),
        sa.Column("srv", sa.String(16), nullable=False),
        sa.Column("held_at", _TS, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("operator", sa.String(64), nullable=True),
    )
    op.create_table(
        "wan_queue",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("hub", sa.String(16), nullable=False),
        sa.Column("device", sa.String(16), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("frame", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("queued_at", _TS, nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=True),
        sa.UniqueConstraint("request_id", name="uq_wan_queue_request_id"),
    )
    op.create_index("ix_wan_queue_state", "wan_queue", ["state"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_eui", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_outbox_user_eui", "outbox", ["user_eui"])
    op.create_index("ix_outbox_state", "outbox", ["state"])
    op.create_table(
        "anomaly_thresholds",
        sa.Column("user_eui", sa.String(16), primary_key=True),
        sa.Column("srv", sa.String(16), primary_key=True),
        sa.Column("max_requests", sa.Integer, nullable=False),
        sa.Column("window_seconds", sa.Float, nullable=False),
    )
    op.create_table(
        "schedules",
        sa.Column("schedule_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_eui", sa.String(16), nullable=False),
        sa.Column("device", sa.String(16), nullable=False),
        sa.Column("srv", sa.String(16), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("start", _TS, nullable=False),
        sa.Column("end_at", _TS, nullable=True),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("next_run", _TS, nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("active", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "schedules",
        "anomaly_thresholds",
        "outbox",
        "wan_queue",
        "quarantine",
        "service_requests",
        "registrations",
        "devices",
        "user_roles",
        "dcc_users",
        "request_counters",
        "audit_head",
        "audit_log",
    ):
        op.drop_table(table)
