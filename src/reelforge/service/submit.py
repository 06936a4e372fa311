"""Turning a validated request into a durable job: the four ways a video starts.

Files a job needs (reference image, source video) are written into the new video's folder before
its rows commit; if the commit fails they are removed, and if the process dies in between the
folder is an orphan the next start sweeps. So a committed job always finds its inputs.
"""
from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
from sqlalchemy.orm import Session

from ..pipeline import MAX_SIDE, MIN_SIDE
from . import crud, quotas
from .catalog import Catalog, RenderSeconds, RenderSize
from .config import Settings
from .db import Job, User, Video
from .deps import owned_video
from .errors import invalid_param, not_ready
from .schemas import VideoCreate, VideoEdit, VideoExtend
from .storage import Storage
from .uploads import Body, data_url_bytes, decode_image, probe_video
from .workers.base import TURBO_CACHE_THRESHOLD, JobQueue, JobSpec


def new_seed() -> int:
    return random.randrange(2**31)


def _number(value: float) -> str:
    return f"{value:g}"


def _start(session: Session, storage: Storage, queue: JobQueue, settings: Settings, user: User, video_id: str,
           spec: JobSpec, *, kind: str, model: str, size: RenderSize, seconds: RenderSeconds,
           files: dict[str, bytes] | None = None, links: dict[str, tuple[str, str]] | None = None, reference: np.ndarray | None = None,
           remixed_from: str | None = None, source_video_id: str | None = None) -> Video:
    quotas.check_seconds(session, user, settings, spec.seconds)
    try:
        if reference is not None:
            storage.write_image(video_id, "reference.png", reference, "PNG")
        for name, data in (files or {}).items():
            storage.write_bytes(video_id, name, data)
        for name, (from_id, from_name) in (links or {}).items():
            storage.link(from_id, from_name, video_id, name)
        video = crud.create_video(session, user, video_id, kind=kind, model=model, prompt=spec.prompt,
                                  seconds=seconds, size=size, seed=spec.seed, spec=spec,
                                  remixed_from=remixed_from, source_video_id=source_video_id)
    except BaseException:
        storage.delete(video_id)
        raise
    queue.wake()
    return video


def _completed_source(session: Session, user: User, video_id: str, param: str) -> Video:
    if not isinstance(video_id, str):
        raise invalid_param(param, f"{param} must be a video id")
    video = owned_video(session, user, video_id)
    if video.status != "completed":
        raise not_ready(f"video {video.id!r} is {video.status}; only a completed video can be used here")
    return video


def _reference_image(request: VideoCreate, body: Body, settings: Settings) -> np.ndarray | None:
    limits = (settings.max_upload_bytes, settings.max_image_pixels)
    if "input_reference" in body.files:
        return decode_image(body.files["input_reference"], "input_reference", *limits)
    ref = request.input_reference
    if ref is None:
        return None
    if ref.file_id is not None:
        raise invalid_param("input_reference", "input_reference.file_id is not supported; upload the image or "
                            "send it as input_reference.image_url, a base64 data: URL")
    if ref.image_url is None:
        raise invalid_param("input_reference", "input_reference needs an uploaded image or an image_url")
    return decode_image(data_url_bytes(ref.image_url, "input_reference"), "input_reference", *limits)


def create(session: Session, storage: Storage, queue: JobQueue, catalog: Catalog, settings: Settings,
           user: User, request: VideoCreate, body: Body) -> Video:
    unexpected = set(body.files) - {"input_reference"}
    if unexpected:
        raise invalid_param(sorted(unexpected)[0], f"Unknown file parameter: {sorted(unexpected)[0]!r}",
                            code="unknown_parameter")
    model = catalog.model(request.model, turbo=request.turbo)
    turbo = catalog.is_turbo(model)
    cache = request.cache_threshold
    if cache is None:
        cache = TURBO_CACHE_THRESHOLD if request.turbo and not turbo else 0.0
    size, seconds = catalog.size(request.size), catalog.seconds(request.seconds)
    image = _reference_image(request, body, settings)
    video_id = crud.new_video_id()
    seed = new_seed() if request.seed is None else request.seed
    spec = JobSpec("create", request.prompt, seed, size.width, size.height, seconds.seconds,
                   reference=image is not None, negative_prompt=request.negative_prompt, steps=request.steps,
                   guidance=request.guidance, cache_threshold=cache, turbo=turbo)
    return _start(session, storage, queue, settings, user, video_id, spec, kind="create", model=model, size=size,
                  seconds=seconds, reference=image)


def remix(session: Session, storage: Storage, queue: JobQueue, settings: Settings, user: User, source: Video,
          prompt: str) -> Video:
    """The source's job again, with its seed, size, length and inputs, and a new prompt."""
    if source.status != "completed":
        raise not_ready(f"video {source.id!r} is {source.status}; only a completed video can be remixed")
    spec = replace(JobSpec.from_json(session.get(Job, source.id).spec), prompt=prompt)
    links = {name: (source.id, name) for name, used in (("reference.png", spec.reference),
                                                          ("source.mp4", spec.source)) if used}
    size = RenderSize(source.size, source.render_width, source.render_height)
    seconds = RenderSeconds(source.seconds, source.render_seconds)
    return _start(session, storage, queue, settings, user, crud.new_video_id(), spec, kind="remix",
                  model=source.model, size=size, seconds=seconds, links=links, remixed_from=source.id)


def _uploaded_source(body: Body, settings: Settings) -> tuple[bytes, int, int, float]:
    if "video" not in body.files:
        raise invalid_param("video", "Missing required parameter: 'video' (an upload or {\"id\": \"video_...\"})",
                            code="missing_required_parameter")
    data = body.files["video"]
    width, height, duration = probe_video(data, "video", settings.max_upload_bytes)
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise invalid_param("video", f"video is {width}x{height}; each side must be {MIN_SIDE}..{MAX_SIDE} pixels")
    return data, width, height, duration


def extend(session: Session, storage: Storage, queue: JobQueue, catalog: Catalog, settings: Settings,
           user: User, request: VideoExtend, body: Body) -> Video:
    """The source followed by `seconds` more; the video object reports the stitched length."""
    segment = catalog.seconds(request.seconds, extension=True)
    if request.video is not None:
        source = _completed_source(session, user, request.video.id, "video")
        size = RenderSize(source.size, source.render_width, source.render_height)
        total = RenderSeconds(_number(float(source.seconds) + float(segment.reported)),
                              source.render_seconds + segment.seconds)
        model, files, links, source_id = source.model, None, {"source.mp4": (source.id, "video.mp4")}, source.id
    else:
        data, width, height, duration = _uploaded_source(body, settings)
        size = RenderSize(f"{width}x{height}", width, height)
        total = RenderSeconds(_number(round(duration + segment.seconds, 3)), duration + segment.seconds)
        model, files, links, source_id = catalog.model(None), {"source.mp4": data}, None, None
    spec = JobSpec("extension", request.prompt, new_seed(), size.width, size.height, segment.seconds, source=True,
                   turbo=catalog.is_turbo(model))
    return _start(session, storage, queue, settings, user, crud.new_video_id(), spec, kind="extension", model=model,
                  size=size, seconds=total, files=files, links=links, source_video_id=source_id)


def edit(session: Session, storage: Storage, queue: JobQueue, catalog: Catalog, settings: Settings,
         user: User, request: VideoEdit, body: Body) -> Video:
    """A new video from the source's opening frame and the new prompt, at the source's size and length."""
    if request.video is not None:
        source = _completed_source(session, user, request.video.id, "video")
        size = RenderSize(source.size, source.render_width, source.render_height)
        # An extended source can be longer than one window: the edit renders the first window.
        seconds = RenderSeconds(source.seconds, min(source.render_seconds, catalog.max_seconds()))
        model, seed, files, links = source.model, source.seed, None, {"source.mp4": (source.id, "video.mp4")}
        source_id = source.id
    else:
        data, width, height, duration = _uploaded_source(body, settings)
        size = RenderSize(f"{width}x{height}", width, height)
        length = min(duration, catalog.max_seconds())
        seconds = RenderSeconds(_number(round(length, 3)), length)
        model, seed, files, links, source_id = catalog.model(None), new_seed(), {"source.mp4": data}, None, None
    spec = JobSpec("edit", request.prompt, seed, size.width, size.height, seconds.seconds, source=True,
                   turbo=catalog.is_turbo(model))
    return _start(session, storage, queue, settings, user, crud.new_video_id(), spec, kind="edit", model=model,
                  size=size, seconds=seconds, files=files, links=links, source_video_id=source_id)
