"""The database: users, their API keys, videos (the public objects) and jobs (the durable queue).

SQLite in WAL mode under REELFORGE_HOME: readers never wait for the worker's writes, and a job row
committed before the 200 goes out survives any crash. Tables are made with `create_all`; the
schema is new, and the first change to it should bring Alembic in (noted in the README).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # "member" may generate; "viewer" may only read. Governance will add roles, not columns.
    role: Mapped[str] = mapped_column(String(32), default="member")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(Integer)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown by `keys list`, never enough to use
    hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the whole key
    created_at: Mapped[int] = mapped_column(Integer)
    revoked_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_used_at: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Video(Base):
    """The object the API returns, plus what was really rendered (the `render_*` columns)."""
    __tablename__ = "videos"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # list order, cursors
    id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(Integer)
    completed_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires_at: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    model: Mapped[str] = mapped_column(String(100))
    prompt: Mapped[str] = mapped_column(Text)
    seconds: Mapped[str] = mapped_column(String(16))
    size: Mapped[str] = mapped_column(String(16))
    remixed_from_video_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="create")  # create, remix, extension, edit
    source_video_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    render_width: Mapped[int] = mapped_column(Integer)
    render_height: Mapped[int] = mapped_column(Integer)
    render_seconds: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer)  # chosen at creation, so a restarted job renders the same

    __table_args__ = (Index("ix_videos_user_seq", "user_id", "seq"),)


class Job(Base):
    """One row per video while it needs work; the queue any worker implementation claims from."""
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # see queue.TRANSITIONS
    spec: Mapped[str] = mapped_column(Text)  # JSON: queue.JobSpec, everything a worker needs
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_jobs_state_created", "state", "created_at"),)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(path: Path) -> Engine:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Sync routes run in a 40-thread pool, each holding a connection. Connections are kept, not
    # reopened per request: opening one under load cost 200 ms at p99 (measured, service_load.py).
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=64, max_overflow=0)
    event.listen(engine, "connect", _sqlite_pragmas)
    with engine.connect() as connection:  # WAL is a property of the file: set once, readers never wait on writes
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    Base.metadata.create_all(engine)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
