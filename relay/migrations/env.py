"""Alembic's entry: always handed an open connection by relay.records.migrate (which holds the lock)."""

from __future__ import annotations

from alembic import context

from relay.records import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
