"""Dependencies as `Annotated` aliases, so routes read `user: CurrentUser, session: SessionDep`."""
from __future__ import annotations

import re
import secrets
from typing import Annotated, Iterator

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from . import crud, logins, publication, quotas
from .catalog import Catalog
from .config import Settings
from .db import User, Video, WebSession
from .errors import ApiError, forbidden, not_found, unauthorized
from .rights import DOING, Right, can
from .storage import Storage
from .uploads import Body, read_body
from .workers.base import JobQueue

# Ids are `video_` and letters or digits: anything else (a slash, dots, %2F) cannot name a video,
# so it is a 404 before it reaches a query or a file path.
VIDEO_ID = re.compile(r"video_[A-Za-z0-9]{1,64}")


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


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _suspended(user: User) -> ApiError:
    return unauthorized(f"user {user.name!r} is suspended, and so are their keys; an admin can lift it "
                        f"(`reelforge users unsuspend {user.name}`)", code="user_suspended")


def browser_session(session: Session, request: Request) -> tuple[WebSession, User] | None:
    """The signed-in browser's live session and user, or None (no cookie, signed out, expired)."""
    token = request.cookies.get(logins.COOKIE)
    return logins.session_for(session, token) if token else None


def authenticate(session: Session, request: Request) -> User:
    """The user whose key the request carries (or, with no key, whose browser session cookie);
    401 without valid credentials or for a suspended user.

    Reads the database on every request, with no cache: a revoked key, a signed-out session or a
    suspension is refused on the very next call. A cookie is sent by the browser on its own, so a
    request that changes something must also echo the session's CSRF token (X-CSRF-Token)."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if not header and request.cookies.get(logins.COOKIE):
        found = browser_session(session, request)
        if found is None:
            raise unauthorized("your browser session has ended; sign in again at /signin", code="session_expired")
        row, user = found
        if user.suspended_at is not None:
            raise _suspended(user)
        if request.method not in SAFE_METHODS and not secrets.compare_digest(
                request.headers.get("x-csrf-token", ""), row.csrf):
            raise forbidden("a request made with a browser session must carry its X-CSRF-Token header")
        return user
    if not header:
        raise unauthorized("missing API key; send 'Authorization: Bearer <key>' "
                           "(make one with `reelforge keys create --user NAME`)")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthorized("the Authorization header must be 'Bearer <key>'")
    user = crud.user_for_key(session, key.strip())
    if user is None:
        raise unauthorized(f"invalid API key '{key.strip()[:6]}...'; it is unknown or revoked")
    if user.suspended_at is not None:
        raise _suspended(user)
    return user


def get_current_user(request: Request, session: SessionDep) -> User:
    return authenticate(session, request)


CurrentUser = Annotated[User, Depends(get_current_user)]


def requires(right: Right):
    """The dependency every route names its right with: the caller, or a 403 saying what was refused."""
    def check(user: CurrentUser) -> User:
        if not can(user, right):
            raise forbidden(f"user {user.name!r} has the role {user.role!r}, which may not {DOING[right]}")
        return user
    return Depends(check)


Writer = Annotated[User, requires(Right.GENERATE)]  # create, cancel, delete one's own videos
Reviewer = Annotated[User, requires(Right.REVIEW)]
Reporter = Annotated[User, requires(Right.REPORT)]
ReportReader = Annotated[User, requires(Right.EXPORT_REPORTS)]
Triager = Annotated[User, requires(Right.TRIAGE)]
Admin = Annotated[User, requires(Right.MANAGE)]
PolicyEditor = Annotated[User, requires(Right.POLICY)]
Auditor = Annotated[User, requires(Right.AUDIT)]


def get_creator(user: Writer, session: SessionDep, settings: SettingsDep) -> User:
    """A user who may start a job now: one who generates, under quota and under the rate limit."""
    quotas.check_start(session, user, settings)
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


def visible_video(session: Session, user: User, video_id: str) -> Video:
    """A video the user may see: their own, a public one, or any for a reviewer; 404 otherwise."""
    if not VIDEO_ID.fullmatch(video_id):
        raise not_found(video_id)
    video = crud.find_video(session, video_id)
    if video is None or not (video.user_id == user.id or video.publication in publication.PUBLIC
                             or can(user, Right.REVIEW)):
        raise not_found(video_id)
    return video


def get_owned_video(video_id: Annotated[str, Path()], user: CurrentUser, session: SessionDep) -> Video:
    return owned_video(session, user, video_id)


OwnedVideo = Annotated[Video, Depends(get_owned_video)]


async def get_body(request: Request) -> Body:
    return await read_body(request, request.app.state.settings.max_upload_bytes)


BodyDep = Annotated[Body, Depends(get_body)]


async def get_fields(request: Request) -> dict:
    """Our own endpoints' JSON (or form) body as a dict; no body at all is an empty one."""
    if not request.headers.get("content-type") and request.headers.get("content-length", "0") == "0":
        return {}
    body = await read_body(request, request.app.state.settings.max_upload_bytes)
    if body.files:
        raise ApiError(400, "this endpoint takes no files", param=sorted(body.files)[0], code="unknown_parameter")
    return body.fields


FieldsDep = Annotated[dict, Depends(get_fields)]
