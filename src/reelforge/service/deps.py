"""Dependencies as `Annotated` aliases, so routes read `user: CurrentUser, session: SessionDep`."""
from __future__ import annotations

import re
from typing import Annotated, Iterator

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from . import crud
from .catalog import Catalog
from .config import Settings
from .db import User, Video
from .errors import forbidden, not_found, too_many, unauthorized
from .storage import Storage
from .uploads import Body, read_body
from .workers.base import JobQueue

# Ids are `video_` and letters or digits: anything else (a slash, dots, %2F) cannot name a video,
# so it is a 404 before it reaches a query or a file path.
VIDEO_ID = re.compile(r"video_[A-Za-z0-9]{1,64}")
RATE_WINDOW_SECONDS = 60


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_storage(request: Request) -> Storage:
    return request.app.state.storage


def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue


def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
StorageDep = Annotated[Storage, Depends(get_storage)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]


def authenticate(session: Session, request: Request) -> User:
    """The user whose key the request carries; 401 without a valid key, 403 for a disabled user."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if not header:
        raise unauthorized("missing API key; send 'Authorization: Bearer <key>' "
                           "(make one with `reelforge keys create --user NAME`)")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthorized("the Authorization header must be 'Bearer <key>'")
    user = crud.user_for_key(session, key.strip())
    if user is None:
        raise unauthorized(f"invalid API key '{key.strip()[:6]}...'; it is unknown or revoked")
    if user.disabled:
        raise forbidden(f"user {user.name!r} is disabled")
    return user


def get_current_user(request: Request, session: SessionDep) -> User:
    return authenticate(session, request)


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_writer(user: CurrentUser) -> User:
    """A user whose role may change things (create, cancel, delete)."""
    if user.role == "viewer":
        raise forbidden(f"user {user.name!r} has the role 'viewer', which may only read videos")
    return user


Writer = Annotated[User, Depends(get_writer)]


def get_creator(user: Writer, session: SessionDep, settings: SettingsDep) -> User:
    """A user who may start a job now: a writer, under quota and under the rate limit."""
    active = crud.active_count(session, user)
    if active >= settings.max_active_jobs:
        raise too_many(f"user {user.name!r} has {active} videos queued or in progress; at most "
                       f"{settings.max_active_jobs} are allowed at once", retry_after=5, code="quota_exceeded")
    recent = crud.created_since(session, user, crud.now() - RATE_WINDOW_SECONDS)
    if len(recent) >= settings.create_per_minute:
        retry = recent[len(recent) - settings.create_per_minute] + RATE_WINDOW_SECONDS - crud.now()
        raise too_many(f"user {user.name!r} created {len(recent)} videos in the last minute; at most "
                       f"{settings.create_per_minute} are allowed", retry_after=retry, code="rate_limit_exceeded")
    return user


Creator = Annotated[User, Depends(get_creator)]


def owned_video(session: Session, user: User, video_id: str) -> Video:
    """The caller's video by id; 404 for a malformed id, someone else's video or no video."""
    if not VIDEO_ID.fullmatch(video_id):
        raise not_found(video_id)
    video = crud.get_video(session, user, video_id)
    if video is None:
        raise not_found(video_id)
    return video


def get_owned_video(video_id: Annotated[str, Path()], user: CurrentUser, session: SessionDep) -> Video:
    return owned_video(session, user, video_id)


OwnedVideo = Annotated[Video, Depends(get_owned_video)]


async def get_body(request: Request) -> Body:
    return await read_body(request, request.app.state.settings.max_upload_bytes)


BodyDep = Annotated[Body, Depends(get_body)]
