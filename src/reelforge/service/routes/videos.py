"""`/v1/videos`: the official SDK's `videos` resource, plus `cancel` and `events` (progress as
server-sent events, for the web studio). Routes are thin: parse, call submit/crud, shape the reply.
Every prompt passes the deployment's policy before anything else is done with the request."""
from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse

from .. import crud, policy, submit
from ..deps import (BodyDep, CatalogDep, Creator, CurrentUser, OwnedVideo, QueueDep, SessionDep, SettingsDep,
                    StorageDep, Writer, authenticate, owned_video)
from ..db import Video
from ..errors import ApiError, invalid_param, not_ready
from ..schemas import (ListParams, VideoCreate, VideoDeleted, VideoEdit, VideoExtend, VideoPublic, VideoRemix,
                       VideosPublic)
from ..storage import Storage
from ..uploads import validate

router = APIRouter(prefix="/v1/videos", tags=["videos"])

EVENT_POLL_SECONDS = 0.25
EVENT_KEEPALIVE_SECONDS = 15.0


@router.post("", response_model=VideoPublic)
def create_video(user: Creator, body: BodyDep, session: SessionDep, storage: StorageDep, queue: QueueDep,
                 catalog: CatalogDep, settings: SettingsDep):
    request = validate(VideoCreate, body.fields)
    policy.enforce(session, user, request.prompt)
    return VideoPublic.of(submit.create(session, storage, queue, catalog, settings, user, request, body))


@router.get("", response_model=VideosPublic)
def list_videos(user: CurrentUser, session: SessionDep, params: Annotated[ListParams, Query()]):
    after_seq = None
    if params.after is not None:
        after_seq = crud.video_seq(session, user, params.after)
        if after_seq is None:
            raise invalid_param("after", f"after {params.after!r} is not the id of one of your videos")
    videos, has_more = crud.list_videos(session, user, after_seq, params.limit, params.order)
    data = [VideoPublic.of(v) for v in videos]
    return VideosPublic(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                        has_more=has_more)


@router.get("/{video_id}", response_model=VideoPublic)
def retrieve_video(video: OwnedVideo, response: Response, settings: SettingsDep):
    if video.status in ("queued", "in_progress"):
        response.headers["openai-poll-after-ms"] = str(settings.poll_after_ms)  # read by the SDK's poll()
    return VideoPublic.of(video)


@router.delete("/{video_id}", response_model=VideoDeleted)
def delete_video(video_id: str, user: Writer, session: SessionDep, storage: StorageDep, queue: QueueDep):
    video = owned_video(session, user, video_id)
    crud.delete_video(session, video, actor=user.name)
    queue.cancel(video.id)
    storage.delete(video.id)  # after the commit: a crash in between leaves an orphan the next start sweeps
    return VideoDeleted(id=video.id)


@router.post("/{video_id}/cancel", response_model=VideoPublic)
def cancel_video(video_id: str, user: Writer, session: SessionDep, storage: StorageDep, queue: QueueDep):
    video = owned_video(session, user, video_id)
    if not crud.cancel_video(session, video):
        raise ApiError(409, f"video {video.id!r} is already {video.status}; only a queued or in-progress "
                       "video can be cancelled", code="video_finished")
    queue.cancel(video.id)
    storage.delete(video.id)
    return VideoPublic.of(video)


@router.get("/{video_id}/content")
def download_content(video: OwnedVideo, storage: StorageDep,
                     variant: Annotated[str, Query()] = "video"):
    return content_response(video, storage, variant)


def content_response(video: Video, storage: Storage, variant: str) -> FileResponse:
    """A completed video's file; shared by the owner's, the reviewers' and the public share routes."""
    if variant not in ("video", "thumbnail", "spritesheet"):
        raise invalid_param("variant", f"unknown variant {variant!r}; allowed: video, thumbnail, spritesheet")
    if video.status != "completed":
        raise not_ready(f"video {video.id!r} is {video.status}; its content is available once it is completed")
    path, media_type = storage.variant(video.id, variant)
    if not path.is_file():
        raise ApiError(404, f"the {variant} of video {video.id!r} is no longer stored", param="variant",
                       code="not_found")
    return FileResponse(path, media_type=media_type)  # answers Range requests with 206, so players can seek


@router.post("/{video_id}/remix", response_model=VideoPublic)
def remix_video(video_id: str, user: Creator, body: BodyDep, session: SessionDep, storage: StorageDep,
                queue: QueueDep, settings: SettingsDep):
    source = owned_video(session, user, video_id)
    request = validate(VideoRemix, body.fields)
    policy.enforce(session, user, request.prompt)
    return VideoPublic.of(submit.remix(session, storage, queue, settings, user, source, request.prompt))


@router.post("/extensions", response_model=VideoPublic)
def extend_video(user: Creator, body: BodyDep, session: SessionDep, storage: StorageDep, queue: QueueDep,
                 catalog: CatalogDep, settings: SettingsDep):
    request = validate(VideoExtend, body.fields)
    policy.enforce(session, user, request.prompt)
    return VideoPublic.of(submit.extend(session, storage, queue, catalog, settings, user, request, body))


@router.post("/edits", response_model=VideoPublic)
def edit_video(user: Creator, body: BodyDep, session: SessionDep, storage: StorageDep, queue: QueueDep,
               catalog: CatalogDep, settings: SettingsDep):
    request = validate(VideoEdit, body.fields)
    policy.enforce(session, user, request.prompt)
    return VideoPublic.of(submit.edit(session, storage, queue, catalog, settings, user, request, body))


@router.get("/{video_id}/events")
async def video_events(video_id: str, request: Request):
    """`data:` lines with the video object whenever its status or progress changes, until it ends.

    Reads the database, not the worker, so it works the same whoever runs the job. Holds no
    database session between reads (a stream can last minutes), and checks the key at every read:
    a stream ends as soon as its key is revoked or its user suspended."""
    sessions = request.app.state.sessions

    def check():
        with sessions() as session:
            user = authenticate(session, request)
            owned_video(session, user, video_id)
            return user

    user = await run_in_threadpool(check)

    def read():
        with sessions() as session:
            try:
                authenticate(session, request)
            except ApiError as e:
                return e
            row = crud.get_video(session, user, video_id)
            return None if row is None else VideoPublic.of(row)

    async def stream():
        last, quiet = None, 0.0
        while not await request.is_disconnected():
            current = await run_in_threadpool(read)
            if isinstance(current, ApiError):
                yield f"event: error\ndata: {json.dumps(current.body())}\n\n"
                return
            if current is None:
                yield f"event: deleted\ndata: {json.dumps({'id': video_id})}\n\n"
                return
            state = (current.status, current.progress)
            if state != last:
                last, quiet = state, 0.0
                yield f"event: video\ndata: {current.model_dump_json()}\n\n"
                if current.status in ("completed", "failed"):
                    return
            elif quiet >= EVENT_KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(EVENT_POLL_SECONDS)
            quiet += EVENT_POLL_SECONDS

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

