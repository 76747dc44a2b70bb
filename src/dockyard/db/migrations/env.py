"""Alembic environment: runs on a connection handed over by :mod:`dockyard.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from dockyard.db.metadata import metadata

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `dockyard db upgrade` (dockyard.db.migrate)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
