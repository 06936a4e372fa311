"""The database: users, their API keys and browser sessions, videos (the public objects), jobs (the durable queue), and
governance: usage for quotas, red-team reports, the prompt policy, blocked prompts, the audit log.

SQLite in WAL mode under REELFORGE_HOME: readers never wait for the worker's writes, and a job row
committed before the 200 goes out survives any crash. The schema is made and changed by Alembic
revisions (`service/migrations`), applied by `migrate.upgrade` before any engine is handed out;
these classes must always describe the head revision (a test compares the two).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import (Boolean, Float, ForeignKey, Index, Integer, String, Text, create_engine, event,
                        text)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(32), default="creator")  # a key of rights.ROLE_RIGHTS
    publisher: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("0"))  # publish unreviewed
    suspended_at: Mapped[int | None] = mapped_column(Integer, nullable=True)  # set: every key of theirs is a 401
    suspended_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Per-user limits; None: the deployment's setting (REELFORGE_*), 0: no limit.
    videos_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seconds_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    create_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[int] = mapped_column(Integer)
    # "scrypt$n$r$p$salt$hash" (security.hash_password); None: no browser sign-in, keys only.
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown by `keys list`, never enough to use
    hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the whole key
    created_at: Mapped[int] = mapped_column(Integer)
    revoked_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_used_at: Mapped[int | None] = mapped_column(Integer, nullable=True)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the row only its hash (like a key).
    Signing out deletes the row; a suspension or the kill switch refuses or deletes it."""
    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the cookie's token
    csrf: Mapped[str] = mapped_column(String(64))  # echoed by every form and by JS in X-CSRF-Token
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)


class Video(Base):
    """The object the API returns, plus what was really rendered (the `render_*` columns) and where it
    stands on its way to the public gallery (the `publication` columns, see publication.TRANSITIONS)."""
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
    publication: Mapped[str] = mapped_column(String(16), default="private", server_default="private")
    # Set only while public: withdrawing clears it, so an old link stops working at once.
    share_token: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True, index=True)
    submitted_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)  # a name: kept if the user goes
    reviewed_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    review_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_videos_user_seq", "user_id", "seq"),
                      Index("ix_videos_publication", "publication", "published_at"))


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


class Usage(Base):
    """One row per job started, kept when its video is deleted: quotas count compute spent, and
    deleting a video must not hand it back."""
    __tablename__ = "usage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    video_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)  # rendered seconds, what the job costs

    __table_args__ = (Index("ix_usage_user_created", "user_id", "created_at"),)


class Report(Base):
    """A red-team finding against a video. The prompt, model and seed are copied in, so the report
    stays useful for training and evaluation after the video is deleted."""
    __tablename__ = "reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[str] = mapped_column(String(64), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    start_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(100))
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")  # see reports.TRIAGE
    created_at: Mapped[int] = mapped_column(Integer)
    triaged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    triaged_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    triage_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class PolicyRule(Base):
    """One term or pattern of the deployment's prompt policy; a prompt matching any is refused."""
    __tablename__ = "policy_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # term, pattern
    value: Mapped[str] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(Integer)


class BlockedPrompt(Base):
    """A refused prompt, kept for reviewers; the rule is copied in as text (rules can be removed)."""
    __tablename__ = "blocked_prompts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prompt: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(String(520))  # "term: ..." or "pattern: ..."
    created_at: Mapped[int] = mapped_column(Integer)


class AuditEntry(Base):
    """Append-only: no code path updates or deletes a row, and SQLite triggers refuse it (migration 0002).
    Actor and target are names, not foreign keys, so the log outlives what it speaks of."""
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(200))  # a user's name, or "cli:<login>", or "system"
    action: Mapped[str] = mapped_column(String(64))  # e.g. key.created, video.approved
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON object


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(path: Path) -> Engine:
    """An engine on the database at `path`, created or upgraded to the newest schema first."""
    from .migrate import upgrade
    path.parent.mkdir(parents=True, exist_ok=True)
    upgrade(path)
    # Sync routes run in a 40-thread pool, each holding a connection. Connections are kept, not
    # reopened per request: opening one under load cost 200 ms at p99 (measured, service_load.py).
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=64, max_overflow=0)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
