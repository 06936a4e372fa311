"""Red-team reports: testers (and anyone with the report right) file findings against a video,
admins triage them, and each reporter's accepted findings are counted and credited by name.

A report copies the video's prompt, model and seed, so exports stay usable for training and
evaluation after the video is gone. Triage is a small state machine (TRIAGE), audited.
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit, crud
from .db import Report, User, Video
from .errors import ApiError, conflict, invalid_param

CATEGORIES = ("prompt_not_followed", "temporal_inconsistency", "physics", "visual_artifact", "unsafe_content",
              "other")
SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "accepted", "rejected", "fixed")
# status -> the statuses triage may move it to; "fixed" is final.
TRIAGE: dict[str, frozenset[str]] = {
    "open": frozenset({"accepted", "rejected"}),
    "accepted": frozenset({"fixed", "open"}),
    "rejected": frozenset({"open"}),
    "fixed": frozenset(),
}
CREDITED = ("accepted", "fixed")  # a fixed finding was accepted first
MAX_DESCRIPTION_CHARS = 4000
MAX_NOTE_CHARS = 2000
EXPORT_COLUMNS = ("id", "video_id", "reporter", "category", "severity", "description", "start_seconds",
                  "end_seconds", "prompt", "model", "seed", "status", "created_at", "triaged_by", "triaged_at",
                  "triage_note")


def report_not_found(report_id: int) -> ApiError:
    return ApiError(404, f"no report {report_id}", param="report_id", code="not_found")


def check_time_range(video: Video, start: float | None, end: float | None) -> None:
    length = float(video.seconds)
    for name, value in (("start_seconds", start), ("end_seconds", end)):
        if value is not None and not 0 <= value <= length:
            raise invalid_param(name, f"{name} {value:g} is outside the clip, which is {length:g} s long")
    if start is not None and end is not None and start >= end:
        raise invalid_param("end_seconds", f"end_seconds {end:g} must be after start_seconds {start:g}")


def file(session: Session, reporter: User, video: Video, *, category: str, severity: str, description: str,
         start_seconds: float | None = None, end_seconds: float | None = None) -> Report:
    """A new open report; the caller has checked that `reporter` may see `video`."""
    check_time_range(video, start_seconds, end_seconds)
    report = Report(video_id=video.id, reporter_id=reporter.id, category=category, severity=severity,
                    description=description, start_seconds=start_seconds, end_seconds=end_seconds,
                    prompt=video.prompt, model=video.model, seed=video.seed, status="open", created_at=crud.now())
    session.add(report)
    session.commit()
    return report


def triage(session: Session, report_id: int, status: str, actor: User, note: str | None = None) -> Report:
    report = session.get(Report, report_id)
    if report is None:
        raise report_not_found(report_id)
    if status not in STATUSES:
        raise invalid_param("status", f"unknown status {status!r}; allowed: {', '.join(STATUSES)}")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise invalid_param("note", f"note has {len(note)} characters; at most {MAX_NOTE_CHARS} are allowed")
    if status not in TRIAGE[report.status]:
        allowed = ", ".join(sorted(TRIAGE[report.status])) or "nothing (it is final)"
        raise conflict(f"report {report.id} is {report.status}; it can become {allowed}", code="invalid_transition")
    audit.record(session, actor.name, "report.triaged", f"report {report.id}", old=report.status, new=status,
                 note=note)
    report.status, report.triaged_by, report.triaged_at, report.triage_note = status, actor.name, crud.now(), note
    session.commit()
    return report


def listing(session: Session, reporter: User | None, status: str | None, limit: int) -> list[tuple[Report, str]]:
    """Reports with their reporter's name, newest first; only `reporter`'s when given."""
    query = select(Report, User.name).join(User, User.id == Report.reporter_id)
    if reporter is not None:
        query = query.where(Report.reporter_id == reporter.id)
    if status is not None:
        query = query.where(Report.status == status)
    return list(session.execute(query.order_by(Report.id.desc()).limit(limit)).all())


def get(session: Session, report_id: int) -> tuple[Report, str]:
    row = session.execute(select(Report, User.name).join(User, User.id == Report.reporter_id)
                          .where(Report.id == report_id)).first()
    if row is None:
        raise report_not_found(report_id)
    return row[0], row[1]


def credits(session: Session) -> list[dict]:
    """Each reporter with accepted findings: name and count, most first (ties by name)."""
    rows = session.execute(select(User.name, func.count()).join(Report, Report.reporter_id == User.id)
                           .where(Report.status.in_(CREDITED)).group_by(User.name)
                           .order_by(func.count().desc(), User.name))
    return [{"reporter": name, "accepted": count} for name, count in rows]


def as_dict(report: Report, reporter: str) -> dict:
    return {"id": report.id, "video_id": report.video_id, "reporter": reporter, "category": report.category,
            "severity": report.severity, "description": report.description, "start_seconds": report.start_seconds,
            "end_seconds": report.end_seconds, "prompt": report.prompt, "model": report.model, "seed": report.seed,
            "status": report.status, "created_at": report.created_at, "triaged_by": report.triaged_by,
            "triaged_at": report.triaged_at, "triage_note": report.triage_note}


def export_rows(session: Session) -> list[dict]:
    """Every report, oldest first, for CSV or JSON export."""
    rows = session.execute(select(Report, User.name).join(User, User.id == Report.reporter_id).order_by(Report.id))
    return [as_dict(report, name) for report, name in rows]
