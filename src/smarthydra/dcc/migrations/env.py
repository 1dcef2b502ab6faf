"""Alembic environment for the DCC database: run on the connection the store hands over."""

from __future__ import annotations

from alembic import context

from smarthydra.dcc.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the DCC migrations run through smarthydra.dcc.store.migrate()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
