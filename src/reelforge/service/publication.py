"""Approval before sharing: the way a video goes from private to the public gallery, and back.

An explicit state machine. Every video starts `private` (seen by its creator, reviewers and admins
only). Only `approved` (by a reviewer) and `published` (by its creator, holding the publisher
right) are public: they have a share token, and leaving those states clears it, so a withdrawn
video's link is dead on the next request. Each move is one conditional UPDATE (the state it was
read in must still hold) with its audit entry in the same commit.
"""
from __future__ import annotations

import secrets

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from . import accounts, audit, crud
from .db import Report, User, Video
from .errors import ApiError, conflict, forbidden, invalid_param
from .rights import Right, can

STATES = ("private", "pending", "approved", "rejected", "published", "withdrawn")
PUBLIC = frozenset({"approved", "published"})
# (state, action) -> the state it leads to. Anything not here is refused with a 409.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("private", "submit"): "pending",
    ("rejected", "submit"): "pending",
    ("withdrawn", "submit"): "pending",
    ("private", "publish"): "published",  # a publisher skips review; a rejection or withdrawal stands
    ("pending", "retract"): "private",
    ("approved", "retract"): "private",
    ("published", "retract"): "private",
    ("pending", "approve"): "approved",
    ("pending", "reject"): "rejected",
    ("approved", "withdraw"): "withdrawn",
    ("published", "withdraw"): "withdrawn",
}
OWNER_ACTIONS = {"submit": Right.SUBMIT, "publish": Right.PUBLISH, "retract": None}  # retract: the owner's own
REVIEW_ACTIONS = ("approve", "reject", "withdraw")
ACTIONS = (*OWNER_ACTIONS, *REVIEW_ACTIONS)
NEEDS_REASON = ("reject", "withdraw")


class TransitionError(ValueError):
    pass


def next_state(state: str, action: str) -> str:
    """The state `action` leads to from `state`; TransitionError naming what is allowed otherwise."""
    if action not in ACTIONS:
        raise TransitionError(f"unknown action {action!r}; allowed: {', '.join(ACTIONS)}")
    target = TRANSITIONS.get((state, action))
    if target is None:
        allowed = [a for (s, a) in TRANSITIONS if s == state]
        raise TransitionError(f"a {state} video cannot be {_done(action)}; from {state} it can be "
                              f"{' or '.join(_done(a) for a in allowed) or 'nothing'}")
    return target


def _done(action: str) -> str:
    return {"submit": "submitted", "publish": "published", "retract": "retracted", "approve": "approved",
            "reject": "rejected", "withdraw": "withdrawn"}[action]


def check_reason(action: str, reason: str | None) -> str | None:
    if action in NEEDS_REASON and (reason is None or not reason.strip()):
        raise invalid_param("reason", f"a reason is required to {action}; the creator sees it",
                            code="missing_required_parameter")
    return accounts.check_reason(reason)


def apply(session: Session, video: Video, action: str, actor: User, reason: str | None = None) -> Video:
    """Move `video` by `action` on behalf of `actor`, after checking who may do it. The caller has
    already found the video visible to the actor (its owner's, or any for a reviewer)."""
    if action in OWNER_ACTIONS:
        right = OWNER_ACTIONS[action]
        if video.user_id != actor.id:
            raise ApiError(404, f"no video with id {video.id!r}", param="video_id", code="not_found")
        if right is not None and not can(actor, right):
            raise forbidden(f"user {actor.name!r} (role {actor.role!r}) may not {action} videos"
                            + ("; submit it for review instead" if action == "publish" else ""))
    elif not can(actor, Right.REVIEW):
        raise forbidden(f"user {actor.name!r} (role {actor.role!r}) may not review videos")
    elif video.user_id == actor.id:
        raise forbidden(f"user {actor.name!r} may not {action} their own video; another reviewer must")
    check_reason(action, reason)
    if action in ("submit", "publish") and video.status != "completed":
        raise conflict(f"video {video.id!r} is {video.status}; only a completed video can be {_done(action)}",
                       code="video_not_ready")
    try:
        target = next_state(video.publication, action)
    except TransitionError as e:
        raise conflict(f"video {video.id!r}: {e}", code="invalid_transition") from None
    values: dict = {"publication": target}
    at = crud.now()
    if action == "submit":
        values.update(submitted_at=at, reviewed_by=None, reviewed_at=None, review_reason=None)
    if action in REVIEW_ACTIONS:
        values.update(reviewed_by=actor.name, reviewed_at=at, review_reason=reason)
    if target in PUBLIC:
        values.update(share_token=secrets.token_urlsafe(24), published_at=at)
    else:
        values.update(share_token=None, published_at=None)
    moved = session.execute(update(Video).where(Video.id == video.id, Video.publication == video.publication)
                            .values(**values)).rowcount
    if not moved:
        session.rollback()
        raise conflict(f"video {video.id!r} changed while this request ran; fetch it and try again",
                       code="invalid_transition")
    audit.record(session, actor.name, f"video.{_done(action)}", video.id, old=video.publication, new=target,
                 reason=reason)
    session.commit()
    session.refresh(video)
    return video


# Reading ----------------------------------------------------------------------------------------

def review_queue(session: Session, state: str, limit: int) -> list[tuple[Video, str]]:
    """Videos in `state` with their creator's name, the longest waiting first."""
    query = (select(Video, User.name).join(User, User.id == Video.user_id).where(Video.publication == state)
             .order_by(Video.submitted_at.is_(None), Video.submitted_at, Video.seq).limit(limit))
    return list(session.execute(query).all())


def open_flags(session: Session, video_ids: list[str]) -> dict[str, dict[str, int]]:
    """Open red-team reports per video, counted by category."""
    rows = session.execute(select(Report.video_id, Report.category, func.count()).where(
        Report.video_id.in_(video_ids), Report.status == "open").group_by(Report.video_id, Report.category))
    out: dict[str, dict[str, int]] = {}
    for video_id, category, count in rows:
        out.setdefault(video_id, {})[category] = count
    return out


def gallery(session: Session, limit: int, after: Video | None) -> tuple[list[tuple[Video, str]], bool]:
    """Public videos, newest publication first; `after` is the last one of the previous page."""
    query = select(Video, User.name).join(User, User.id == Video.user_id).where(Video.publication.in_(PUBLIC))
    if after is not None:
        query = query.where(or_(Video.published_at < after.published_at,
                                and_(Video.published_at == after.published_at, Video.seq < after.seq)))
    rows = list(session.execute(query.order_by(Video.published_at.desc(), Video.seq.desc()).limit(limit + 1))
                .all())
    return rows[:limit], len(rows) > limit


def public_video(session: Session, video_id: str) -> Video | None:
    return session.scalar(select(Video).where(Video.id == video_id, Video.publication.in_(PUBLIC)))


def shared(session: Session, token: str) -> tuple[Video, str] | None:
    row = session.execute(select(Video, User.name).join(User, User.id == Video.user_id).where(
        Video.share_token == token, Video.publication.in_(PUBLIC))).first()
    return None if row is None else (row[0], row[1])
