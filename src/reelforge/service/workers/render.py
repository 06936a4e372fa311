"""One job, start to finish, with the engine: JobSpec -> video.mp4, thumbnail and sprite sheet.

Shared by every worker implementation; it knows nothing of the database. `report(progress)` is
called as work goes and returning False stops the work (the engine raises `Cancelled`).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ...flow.samplers import Cancelled
from ...long import WINDOW_SECONDS, Shot, generate_long, window_plan
from ...media.decode import read_video
from ...media import watermark
from ...media.encode import fan_out
from ...media.provenance import Identity, visible_mark, write_signed
from ...pipeline import Pipeline, VideoOutput
from ..storage import VARIANTS, Storage, preview_indexes
from .base import JobSpec

DENOISE_SHARE = 90  # percent of progress for the denoising steps; encoding takes the rest


def load_image(path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))  # (H, W, 3) uint8


def render(pipe: Pipeline, storage: Storage, video_id: str, spec: JobSpec,
           report: Callable[[int], bool], identity: Identity) -> None:
    """Generate and write the video's files; raises the engine's `Cancelled` when report says stop."""
    if spec.turbo:
        pipe = pipe.turbo()
    long = spec.kind == "create" and spec.seconds > pipe.config.max_seconds and not spec.reference
    source_fps = read_video(storage.path(video_id, "source.mp4"))[1] if spec.kind == "extension" else pipe.config.fps
    segments = _segments(spec.seconds, pipe.config.max_seconds - 1.0, source_fps) if spec.kind == "extension" \
        else [spec.seconds]
    windows = len(window_plan(spec.seconds, WINDOW_SECONDS, 1.0)) if long else len(segments)
    steps = (spec.steps or pipe.config.steps) * windows
    knobs = dict(negative_prompt=spec.negative_prompt, steps=spec.steps, guidance=spec.guidance,
                 cache_threshold=spec.cache_threshold)
    done = [0]  # steps over all windows: a long clip's progress runs once from 0 to 100

    def on_step(i: int, t: float, latents) -> bool:
        done[0] += 1
        return report(min(DENOISE_SHARE, DENOISE_SHARE * done[0] // steps))

    image = load_image(storage.path(video_id, "reference.png")) if spec.reference else None
    if long:  # past the model's window: window by window (reelforge.long)
        video = generate_long(pipe, [Shot(0.0, spec.prompt)], spec.seconds, size=(spec.width, spec.height),
                              seed=spec.seed, on_step=on_step, **knobs)
    elif spec.kind == "extension":
        frames, fps, _ = read_video(storage.path(video_id, "source.mp4"))
        for k, segment in enumerate(segments):  # one window at a time, each continuing the last
            video = pipe.extend(frames, fps, spec.prompt, seconds=segment, seed=spec.seed + k, on_step=on_step, **knobs)
            frames = video.frames
    else:
        if spec.kind == "edit":  # an edit keeps the source's opening frame and re-imagines the rest
            image = read_video(storage.path(video_id, "source.mp4"))[0][0]
        video = pipe(spec.prompt, seconds=spec.seconds, size=(spec.width, spec.height), seed=spec.seed,
                     image=image, on_step=on_step, **knobs)
    if not report(DENOISE_SHARE):
        raise Cancelled("cancelled before encoding")
    render_files(storage, video_id, video, identity)


def _segments(seconds: float, longest: float, fps: float) -> list[float]:
    """`seconds` split into pieces of at most `longest`, each a whole number of frames at `fps`, so
    that the pieces add up to exactly the frames asked for."""
    total = round(seconds * fps)
    count = max(1, math.ceil(seconds / longest - 1e-9))
    frames = [total // count + (1 if i < total % count else 0) for i in range(count)]
    return [n / fps for n in frames]


def render_files(storage: Storage, video_id: str, video: VideoOutput, identity: Identity) -> None:
    """The MP4 (watermarked, with a signed manifest naming this video), its labelled public copy,
    thumbnail and sprite sheet. The frames are delivered, marked (once, for both copies) and
    encoded a chunk at a time: a 20 s 1080p clip is 3 GB of uint8, and was held three times over."""
    storage.folder(video_id).mkdir(parents=True, exist_ok=True)
    picks, previews = set(preview_indexes(video.count).tolist()), {}

    def marked_chunks():
        done = 0
        for part in watermark.embed_chunks(video.chunks(), video.fps, identity.deployment_id, video_id, in_place=True):
            previews.update((done + i, part[i].copy()) for i in range(len(part)) if done + i in picks)
            done += len(part)
            yield part

    def writer(variant: str, visible: bool):  # the gallery's copy wears a label
        return lambda parts: write_signed((visible_mark(p) for p in parts) if visible else parts,
                                          storage.path(video_id, VARIANTS[variant][0]), video.fps, "mp4",
                                          video.settings, video.metadata, video_id, identity)
    fan_out(marked_chunks(), [writer("video", False), writer("public", True)])
    storage.write_previews(video_id, np.stack([previews[i] for i in sorted(previews)]))
