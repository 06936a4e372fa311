"""Per-user limits on starting jobs, each a 429 with Retry-After: jobs active at once, jobs per
minute, videos per day and seconds of video per day.

Windows are rolling (the last 60 s, the last 24 h) and read the `usage` table, which keeps a row
for every job started even after its video is deleted. A user's own limit (users table) wins over
the deployment's (Settings); 0 means no limit.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import crud
from .config import Settings
from .db import Usage, User
from .errors import too_many

MINUTE, DAY = 60, 24 * 3600


def _limit(user: User, settings: Settings, name: str) -> int:
    own = getattr(user, name)
    return getattr(settings, name) if own is None else own


def _usage(session: Session, user: User, since: int) -> list[tuple[int, float]]:
    """(created_at, seconds) of the user's jobs since `since`, oldest first."""
    return list(session.execute(select(Usage.created_at, Usage.seconds).where(
        Usage.user_id == user.id, Usage.created_at >= since).order_by(Usage.created_at, Usage.id)).all())


def check_start(session: Session, user: User, settings: Settings) -> None:
    """Before a request is parsed: may this user start another job at all?"""
    active = crud.active_count(session, user)
    if active >= settings.max_active_jobs:
        raise too_many(f"user {user.name!r} has {active} videos queued or in progress; at most "
                       f"{settings.max_active_jobs} are allowed at once", retry_after=5, code="quota_exceeded")
    at = crud.now()
    per_minute = _limit(user, settings, "create_per_minute")
    recent = _usage(session, user, at - MINUTE)
    if per_minute and len(recent) >= per_minute:
        retry = recent[len(recent) - per_minute][0] + MINUTE - at
        raise too_many(f"user {user.name!r} created {len(recent)} videos in the last minute; at most "
                       f"{per_minute} are allowed", retry_after=retry, code="rate_limit_exceeded")
    per_day = _limit(user, settings, "videos_per_day")
    today = _usage(session, user, at - DAY)
    if per_day and len(today) >= per_day:
        retry = today[len(today) - per_day][0] + DAY - at
        raise too_many(f"user {user.name!r} created {len(today)} videos in the last 24 hours; the quota is "
                       f"{per_day} a day", retry_after=retry, code="quota_exceeded")


def check_seconds(session: Session, user: User, settings: Settings, seconds: float) -> None:
    """Once the length is known, before any file is written: would this job pass the daily seconds?"""
    limit = _limit(user, settings, "seconds_per_day")
    if not limit:
        return
    at = crud.now()
    today = _usage(session, user, at - DAY)
    used = sum(s for _, s in today)
    if used + seconds <= limit:
        return
    if seconds > limit:
        raise too_many(f"this video would render {seconds:g} s, more than user {user.name!r}'s whole quota of "
                       f"{limit} s a day", retry_after=DAY, code="quota_exceeded")
    retry, freed = DAY, 0.0  # wait until enough of the oldest jobs leave the window
    for created_at, spent in today:
        freed += spent
        if used - freed + seconds <= limit:
            retry = created_at + DAY - at
            break
    raise too_many(f"user {user.name!r} rendered {used:g} s of video in the last 24 hours; this video needs "
                   f"{seconds:g} s more and the quota is {limit} s a day", retry_after=retry, code="quota_exceeded")


def usage_by_user(session: Session, since: int) -> list[tuple[str, int, float]]:
    """(user name, videos started, seconds rendered) since `since`, busiest first: the admin's view."""
    from sqlalchemy import func
    rows = session.execute(select(User.name, func.count(Usage.id), func.coalesce(func.sum(Usage.seconds), 0.0))
                           .join(Usage, Usage.user_id == User.id).where(Usage.created_at >= since)
                           .group_by(User.name).order_by(func.sum(Usage.seconds).desc(), User.name))
    return [(name, count, float(seconds)) for name, count, seconds in rows]
