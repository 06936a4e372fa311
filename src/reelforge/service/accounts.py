"""Users and their keys as an admin manages them: roles, the publisher right, limits, suspension
and the kill switch. Shared by the admin API and `reelforge users` / `reelforge keys`.

Every change is audited in the transaction that makes it. A suspension or a revocation of every key
cancels the jobs it concerns in that same transaction; `cancel_active` returns their ids so that a
caller holding the in-process queue can stop them at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from . import audit, crud
from .db import ApiKey, User, WebSession
from .errors import ApiError, invalid_param
from .rights import check_role

USER_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,100}")
MAX_REASON_CHARS = 2000
LIMITS = ("videos_per_day", "seconds_per_day", "create_per_minute")


def user_not_found(name: str) -> ApiError:
    return ApiError(404, f"no user {name!r}; `reelforge users list` shows them", param="user",
                    code="user_not_found")


def check_name(name: str, param: str = "name") -> str:
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        raise invalid_param(param, f"user name {name!r} must be 1-100 letters, digits or _.@-")
    return name


def check_reason(reason: str | None) -> str | None:
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise invalid_param("reason", f"reason has {len(reason)} characters; at most {MAX_REASON_CHARS} are allowed")
    return reason


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise user_not_found(name)
    return user


def users_named(session: Session, names: list[str]) -> list[User]:
    """All of them, or a 404 naming the first unknown one (and nothing is changed)."""
    found = {u.name: u for u in session.scalars(select(User).where(User.name.in_(names)))}
    for name in names:
        if name not in found:
            raise user_not_found(name)
    return [found[n] for n in dict.fromkeys(names)]


def users_with_role(session: Session, role: str) -> list[User]:
    return list(session.scalars(select(User).where(User.role == _role(role)).order_by(User.id)))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def create_user(session: Session, name: str, role: str, actor: str, publisher: bool = False) -> User:
    check_name(name)
    _role(role)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise ApiError(409, f"user {name!r} already exists; change it with set-role or PATCH", param="name",
                       code="user_exists")
    user = crud.get_or_create_user(session, name, role, actor)
    if publisher:
        _set(session, user, "publisher", True, actor)
    session.commit()
    return user


def _role(role: str) -> str:
    try:
        return check_role(role)
    except ValueError as e:
        raise invalid_param("role", str(e)) from None


def _set(session: Session, user: User, field: str, value, actor: str) -> None:
    old = getattr(user, field)
    if old == value:
        return
    action = {"role": "user.role_changed", "publisher": "user.publisher_changed"}.get(field, "user.limits_changed")
    audit.record(session, actor, action, user.name, field=field, old=old, new=value)
    setattr(user, field, value)


@dataclass(frozen=True)
class UserChange:
    """What an admin may change on a user; a field left out is kept. A limit set to None falls back
    to the deployment's setting, 0 lifts it."""
    role: str | None = None
    publisher: bool | None = None
    limits: dict | None = None  # a subset of LIMITS -> int >= 0 or None


def update_user(session: Session, name: str, change: UserChange, actor: str) -> User:
    user = get_user(session, name)
    if change.role is not None:
        _set(session, user, "role", _role(change.role), actor)
    if change.publisher is not None:
        _set(session, user, "publisher", change.publisher, actor)
    for field, value in (change.limits or {}).items():
        if field not in LIMITS:
            raise invalid_param(field, f"unknown limit {field!r}; allowed: {', '.join(LIMITS)}")
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise invalid_param(field, f"{field} must be an integer >= 0 (0: no limit) or null (the default)")
        _set(session, user, field, value, actor)
    session.commit()
    return user


def create_key(session: Session, name: str, actor: str) -> tuple[ApiKey, str]:
    """A key for an existing user (the admin API never creates users implicitly)."""
    get_user(session, name)
    return crud.create_key(session, name, actor=actor)


def suspend(session: Session, users: list[User], actor: str, reason: str | None = None) -> list[str]:
    """Suspend users: from the next request on, every key of theirs is a 401, and their queued and
    running jobs are cancelled in the same commit. Returns the ids of the cancelled videos."""
    check_reason(reason)
    at = crud.now()
    for user in users:
        if user.suspended_at is None:
            user.suspended_at, user.suspended_reason = at, reason
            audit.record(session, actor, "user.suspended", user.name, reason=reason)
    session.flush()
    cancelled = crud.cancel_active(session, [u.id for u in users])
    if cancelled:
        audit.record(session, actor, "jobs.cancelled", None, videos=cancelled, why="suspension")
    session.commit()
    return cancelled


def unsuspend(session: Session, users: list[User], actor: str) -> None:
    for user in users:
        if user.suspended_at is not None:
            user.suspended_at, user.suspended_reason = None, None
            audit.record(session, actor, "user.unsuspended", user.name)
    session.commit()


def revoke_all_keys(session: Session, actor: str, reason: str | None = None) -> tuple[int, list[str]]:
    """The kill switch: every key and browser session stops working at once and every queued or running
    job is cancelled.
    New keys (`reelforge keys create`) work again. Returns (keys revoked, videos cancelled)."""
    check_reason(reason)
    revoked = session.execute(update(ApiKey).where(ApiKey.revoked_at.is_(None)).values(revoked_at=crud.now())).rowcount
    signed_out = session.execute(delete(WebSession)).rowcount  # browsers hold credentials too
    cancelled = crud.cancel_active(session, None)
    audit.record(session, actor, "keys.revoked_all", None, keys=revoked, sessions=signed_out,
                 videos_cancelled=cancelled, reason=reason)
    session.commit()
    return revoked, cancelled
