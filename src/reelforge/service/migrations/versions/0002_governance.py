"""Governance: roles with rights, publisher right and per-user limits, suspension instead of
`disabled`, publication state on videos, usage for quotas, red-team reports, the prompt policy,
blocked prompts and the append-only audit log.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APPEND_ONLY = "audit_log is append-only"


def upgrade() -> None:
    # Users: "member" was the role that generates; it is "creator" now. `disabled` becomes a suspension
    # with a time (SQLite >= 3.35 drops a column in place: no table rebuild, no cascade).
    op.add_column("users", sa.Column("publisher", sa.Boolean, nullable=False, server_default=sa.text("0")))
    op.add_column("users", sa.Column("suspended_at", sa.Integer))
    op.add_column("users", sa.Column("suspended_reason", sa.Text))
    op.add_column("users", sa.Column("videos_per_day", sa.Integer))
    op.add_column("users", sa.Column("seconds_per_day", sa.Integer))
    op.add_column("users", sa.Column("create_per_minute", sa.Integer))
    op.execute("UPDATE users SET role = 'creator' WHERE role = 'member'")
    op.execute("UPDATE users SET suspended_at = created_at, suspended_reason = 'disabled before governance' "
               "WHERE disabled")
    op.drop_column("users", "disabled")

    op.add_column("videos", sa.Column("publication", sa.String(16), nullable=False, server_default="private"))
    op.add_column("videos", sa.Column("share_token", sa.String(64)))
    op.add_column("videos", sa.Column("submitted_at", sa.Integer))
    op.add_column("videos", sa.Column("published_at", sa.Integer))
    op.add_column("videos", sa.Column("reviewed_by", sa.String(100)))
    op.add_column("videos", sa.Column("reviewed_at", sa.Integer))
    op.add_column("videos", sa.Column("review_reason", sa.Text))
    op.create_index("ix_videos_share_token", "videos", ["share_token"], unique=True)
    op.create_index("ix_videos_publication", "videos", ["publication", "published_at"])

    op.create_table(
        "usage",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("video_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_index("ix_usage_user_created", "usage", ["user_id", "created_at"])
    # Videos made before this revision count towards today's quotas too.
    op.execute("INSERT INTO usage (user_id, video_id, created_at, seconds) "
               "SELECT user_id, id, created_at, render_seconds FROM videos")

    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("video_id", sa.String(64), nullable=False),
        sa.Column("reporter_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("start_seconds", sa.Float),
        sa.Column("end_seconds", sa.Float),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("triaged_by", sa.String(100)),
        sa.Column("triaged_at", sa.Integer),
        sa.Column("triage_note", sa.Text),
    )
    op.create_index("ix_reports_video_id", "reports", ["video_id"])
    op.create_index("ix_reports_reporter_id", "reports", ["reporter_id"])

    op.create_table(
        "policy_rules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "blocked_prompts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("rule", sa.String(520), nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_blocked_prompts_user_id", "blocked_prompts", ["user_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    # The database itself refuses to rewrite history, whatever code or tool connects to it.
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                   f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only; restore a backup of reelforge.db instead")
