"""Signing in from a browser: passwords and sessions, beside API keys (which stay for programs).

The cookie carries a random token and the database only its SHA-256 (as for keys, the token's
256 bits make a slow hash pointless). Every request reads the row and the user: signing out,
a suspension or the kill switch refuses the session on the very next request, as for keys.
"""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import audit, crud
from .accounts import get_user
from .db import User, WebSession
from .errors import invalid_param
from .security import (MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, generate_token, hash_key, hash_password,
                       verify_password)

SESSION_SECONDS = 14 * 24 * 3600  # a fortnight, then sign in again
COOKIE = "reelforge_session"


def check_password(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise invalid_param("password", f"a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters; "
                            f"this one has {len(password)}")
    return password


def set_password(session: Session, name: str, password: str, actor: str) -> User:
    """Give user `name` a (new) password; their signed-in browsers are signed out."""
    user = get_user(session, name)
    user.password_hash = hash_password(check_password(password))
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit.record(session, actor, "user.password_set", user.name)
    session.commit()
    return user


def sign_in(session: Session, name: str, password: str) -> tuple[WebSession, str] | None:
    """A new session and its cookie token, or None for a wrong name or password (which is not said).
    A suspended user's password is right but gets no session."""
    user = session.scalar(select(User).where(User.name == name))
    # A made-up hash for unknown names: answering as slowly either way does not reveal who exists.
    if not verify_password(password, user.password_hash if user and user.password_hash else _DECOY):
        return None
    if user is None or user.suspended_at is not None:
        return None
    token, at = generate_token(), crud.now()
    row = WebSession(user_id=user.id, hash=hash_key(token), csrf=generate_token(), created_at=at,
                     expires_at=at + SESSION_SECONDS)
    session.add(row)
    audit.record(session, user.name, "session.signed_in", user.name)
    session.commit()
    return row, token


def session_for(session: Session, token: str) -> tuple[WebSession, User] | None:
    """The live session and its user for a cookie token; None when unknown, signed out or expired."""
    row = session.execute(select(WebSession, User).join(User).where(WebSession.hash == hash_key(token))).first()
    if row is None or row.WebSession.expires_at <= crud.now():
        return None
    return row.WebSession, row.User


def sign_out(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.hash == hash_key(token)))
    session.commit()


_DECOY = hash_password("an unguessable placeholder for users with no password")
