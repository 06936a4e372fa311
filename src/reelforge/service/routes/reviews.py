"""`/v1/reviews`: the review queue (prompt, video, creator, flags), decisions on it, and the prompts
the policy blocked. Reviewers and admins only; the rules are in publication.py."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from .. import crud, policy, publication
from ..deps import VIDEO_ID, FieldsDep, Reviewer, SessionDep, StorageDep
from ..db import User
from ..errors import invalid_param, not_found
from ..governance_schemas import (BlockedPromptPublic, BlockedPrompts, PublicationPublic, ReviewDecision, ReviewItem,
                                  ReviewQueue)
from ..uploads import validate
from .publication import share_url
from .videos import content_response

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])


def _video(session, video_id: str):
    video = crud.find_video(session, video_id) if VIDEO_ID.fullmatch(video_id) else None
    if video is None:
        raise not_found(video_id)
    return video


def _item(video, creator: str, flags: dict[str, int]) -> ReviewItem:
    return ReviewItem(video_id=video.id, creator=creator, prompt=video.prompt, model=video.model,
                      seconds=video.seconds, size=video.size, status=video.status, state=video.publication,
                      created_at=video.created_at, submitted_at=video.submitted_at, reviewed_by=video.reviewed_by,
                      reason=video.review_reason, flags=flags, content_url=f"/v1/reviews/{video.id}/content")


@router.get("", response_model=ReviewQueue)
def review_queue(user: Reviewer, session: SessionDep, state: Annotated[str, Query()] = "pending",
                 limit: Annotated[int, Query(ge=1, le=100)] = 50):
    """Videos waiting for a decision (or, with `state`, those in any other publication state)."""
    if state not in publication.STATES:
        raise invalid_param("state", f"unknown state {state!r}; allowed: {', '.join(publication.STATES)}")
    rows = publication.review_queue(session, state, limit)
    flags = publication.open_flags(session, [v.id for v, _ in rows])
    return ReviewQueue(data=[_item(v, name, flags.get(v.id, {})) for v, name in rows])


@router.get("/blocked", response_model=BlockedPrompts)
def blocked_prompts(user: Reviewer, session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    return BlockedPrompts(data=[BlockedPromptPublic(id=b.id, user=name, prompt=b.prompt, rule=b.rule,
                                                    created_at=b.created_at)
                                for b, name in policy.blocked(session, limit)])


@router.get("/{video_id}", response_model=ReviewItem)
def review_item(video_id: str, user: Reviewer, session: SessionDep):
    video = _video(session, video_id)
    creator = session.get(User, video.user_id).name
    return _item(video, creator, publication.open_flags(session, [video.id]).get(video.id, {}))


@router.get("/{video_id}/content")
def review_content(video_id: str, user: Reviewer, session: SessionDep, storage: StorageDep,
                   variant: Annotated[str, Query()] = "video"):
    return content_response(_video(session, video_id), storage, variant)


def _decide(action: str, video_id: str, user, session, request: Request, fields: dict) -> PublicationPublic:
    decision = validate(ReviewDecision, fields)
    video = publication.apply(session, _video(session, video_id), action, user, decision.reason)
    return PublicationPublic.of(video, share_url(request, video))


@router.post("/{video_id}/approve", response_model=PublicationPublic)
def approve(video_id: str, user: Reviewer, session: SessionDep, request: Request, fields: FieldsDep):
    """Publish a pending video to the gallery; an optional `reason` is a note the creator sees."""
    return _decide("approve", video_id, user, session, request, fields)


@router.post("/{video_id}/reject", response_model=PublicationPublic)
def reject(video_id: str, user: Reviewer, session: SessionDep, request: Request, fields: FieldsDep):
    """Refuse a pending video; `reason` is required and shown to the creator."""
    return _decide("reject", video_id, user, session, request, fields)


@router.post("/{video_id}/withdraw", response_model=PublicationPublic)
def withdraw(video_id: str, user: Reviewer, session: SessionDep, request: Request, fields: FieldsDep):
    """Unpublish a public video at once (its share link stops working); `reason` is required."""
    return _decide("withdraw", video_id, user, session, request, fields)
