"""Bring a database file to the newest schema with Alembic, before anything else opens it.

`upgrade(path)` runs at every server and CLI start. A database made before Alembic came in (by
`create_all`, with no `alembic_version` table) is stamped as revision 0001, the schema it has, and
then upgraded like any other. Everything happens in one `BEGIN IMMEDIATE` transaction: SQLite's
DDL is transactional, so a failed upgrade leaves the file as it was, and two processes starting
at once take turns instead of both migrating.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema `create_all` made before migrations existed


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(path: Path) -> None:
    """Create or upgrade the database at `path` to the head revision; a no-op when it is there."""
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool, connect_args={"timeout": 30})
    try:
        with engine.connect() as connection:
            # WAL is a property of the file: set once, and readers never wait on writes after.
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a table rebuild must not cascade
            connection.commit()
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock before reading the version
            tables = set(inspect(connection).get_table_names())
            config = alembic_config()
            config.attributes["connection"] = connection
            if "alembic_version" not in tables and "users" in tables:
                command.stamp(config, BASELINE)
            command.upgrade(config, "head")
            connection.commit()
    finally:
        engine.dispose()
