"""The audit log: who did what sensitive thing, when. Append-only.

`record` adds a row to the caller's transaction, so an action and its entry commit together or not
at all. There is no function to change or remove an entry, and the database refuses it too.
"""
from __future__ import annotations

import datetime
import json
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import AuditEntry

COLUMNS = ("id", "at", "time", "actor", "action", "target", "detail")


def record(session: Session, actor: str, action: str, target: str | None = None, **detail) -> None:
    """Add an entry to the session's transaction; the caller commits it with the action."""
    session.add(AuditEntry(at=time.time(), actor=actor, action=action, target=target,
                           detail=json.dumps(detail, sort_keys=True, default=str)))


def entries(session: Session, after_id: int = 0, action: str | None = None) -> list[dict]:
    """Entries oldest first, as plain dicts (`detail` decoded), after `after_id`."""
    query = select(AuditEntry).where(AuditEntry.id > after_id).order_by(AuditEntry.id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return [_row(e) for e in session.scalars(query)]


def _row(entry: AuditEntry) -> dict:
    when = datetime.datetime.fromtimestamp(entry.at, datetime.timezone.utc).isoformat(timespec="seconds")
    return {"id": entry.id, "at": entry.at, "time": when, "actor": entry.actor, "action": entry.action,
            "target": entry.target, "detail": json.loads(entry.detail)}
