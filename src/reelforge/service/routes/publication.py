"""Sharing: a creator's `/v1/videos/{id}/publication` (submit for review, publish as a publisher,
retract), the public `/v1/gallery`, and `/share/{token}` links that work without a key. Only
approved or publisher-published videos are public; the rules are in publication.py."""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from .. import publication
from ..db import Video
from ..deps import CurrentUser, FieldsDep, OwnedVideo, SessionDep, SettingsDep, StorageDep
from ..errors import ApiError, invalid_param
from ..governance_schemas import Gallery, GalleryItem, GalleryParams, PublicationPublic, PublicationRequest
from ..uploads import validate
from ..web.pages import share_page, wants_html
from ..web.templating import optional_viewer
from .videos import content_response

router = APIRouter(tags=["publication"])


def share_url(request: Request, video: Video) -> str | None:
    return str(request.url_for("shared_video", token=video.share_token)) if video.share_token else None


def _shared(session, token: str) -> tuple[Video, str]:
    found = publication.shared(session, token) if len(token) <= 64 else None
    if found is None:
        raise ApiError(404, "no public video at this link; it may have been withdrawn", param="token",
                       code="not_found")
    return found


def _item(request: Request, video: Video, creator: str) -> GalleryItem:
    return GalleryItem(id=video.id, creator=creator, prompt=video.prompt, seconds=video.seconds, size=video.size,
                       published_at=video.published_at, share_url=share_url(request, video),
                       content_url=str(request.url_for("shared_content", token=video.share_token)))


@router.get("/v1/videos/{video_id}/publication", response_model=PublicationPublic)
def get_publication(video: OwnedVideo, request: Request):
    """Where the caller's video stands: private, pending, approved, rejected (with the reviewer's
    reason), published or withdrawn."""
    return PublicationPublic.of(video, share_url(request, video))


@router.post("/v1/videos/{video_id}/publication", response_model=PublicationPublic)
def request_publication(video: OwnedVideo, user: CurrentUser, session: SessionDep, request: Request,
                        fields: FieldsDep):
    """`{"action": "submit"}` asks reviewers; `{"action": "publish"}` publishes at once (publisher right)."""
    body = validate(PublicationRequest, fields)
    video = publication.apply(session, video, body.action, user)
    return PublicationPublic.of(video, share_url(request, video))


@router.delete("/v1/videos/{video_id}/publication", response_model=PublicationPublic)
def retract_publication(video: OwnedVideo, user: CurrentUser, session: SessionDep, request: Request):
    """Take a pending submission back, or unpublish one's own public video."""
    video = publication.apply(session, video, "retract", user)
    return PublicationPublic.of(video, share_url(request, video))


@router.get("/v1/gallery", response_model=Gallery)
def gallery(session: SessionDep, request: Request, params: Annotated[GalleryParams, Query()]):
    """Every public video, newest first; no key needed."""
    after = None
    if params.after is not None:
        after = publication.public_video(session, params.after)
        if after is None:
            raise invalid_param("after", f"after {params.after!r} is not the id of a video in the gallery")
    rows, has_more = publication.gallery(session, params.limit, after)
    data = [_item(request, v, name) for v, name in rows]
    return Gallery(data=data, has_more=has_more, last_id=data[-1].id if data else None)


@router.get("/share/{token}", response_model=GalleryItem, name="shared_video")
def shared_video(token: str, session: SessionDep, request: Request, storage: StorageDep, settings: SettingsDep):
    """A public video's details; no key needed. 404 once it is withdrawn or retracted. A browser
    (Accept: text/html) gets the studio's page with a player, and the provenance check that
    `POST /v1/provenance/check` would give its file."""
    video, creator = _shared(session, token)
    if wants_html(request):
        viewer = optional_viewer(request, session)
        public, _ = storage.variant(video.id, "public")
        report = _checked(str(public), public.stat().st_mtime_ns, video.id, settings.home) if public.is_file() else None
        return share_page(request, viewer, video, creator, str(request.url_for("shared_content", token=token)), report)
    return _item(request, video, creator)


@lru_cache(maxsize=256)
def _checked(path: str, mtime_ns: int, video_id: str, home):
    """The provenance report of a public file, checked once per version of the file (`mtime_ns` is
    in the key for that): a check takes seconds."""
    from ...media.provenance import ProvenanceError, load_identity, verify
    identity = load_identity(home)
    try:
        return verify(path, identity.trust_pem, identity.deployment_id, [video_id])
    except ProvenanceError:
        return None


@router.get("/share/{token}/content", name="shared_content")
def shared_content(token: str, session: SessionDep, storage: StorageDep,
                   variant: Annotated[str, Query()] = "video"):
    video, _ = _shared(session, token)
    public, media_type = storage.variant(video.id, "public")
    if variant == "video" and video.status == "completed" and public.is_file():
        return FileResponse(public, media_type=media_type)  # the copy with the visible label
    return content_response(video, storage, variant)
