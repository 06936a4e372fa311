"""Alembic's entry point, run only through `migrate.upgrade`, which hands over a connection already
inside its transaction. A new revision is a file in versions/ written by hand after the last one:
plain `op` calls, `revision` and `down_revision` set, and db.py changed to match (a test compares)."""
from alembic import context

from reelforge.service.db import Base

context.configure(connection=context.config.attributes["connection"], target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
