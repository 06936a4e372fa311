"""One job, start to finish, with the engine: JobSpec -> video.mp4, thumbnail and sprite sheet.

Shared by every worker implementation; it knows nothing of the database. `report(progress)` is
called as work goes and returning False stops the work (the engine raises `Cancelled`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...flow.samplers import Cancelled
from ...media.decode import read_video
from ...media.provenance import Identity, write_marked
from ...pipeline import Pipeline, VideoOutput
from ..storage import VARIANTS, Storage
from .base import JobSpec

DENOISE_SHARE = 90  # percent of progress for the denoising steps; encoding takes the rest


def load_image(path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))  # (H, W, 3) uint8


def render(pipe: Pipeline, storage: Storage, video_id: str, spec: JobSpec,
           report: Callable[[int], bool], identity: Identity) -> None:
    """Generate and write the video's files; raises the engine's `Cancelled` when report says stop."""
    steps = spec.steps or pipe.config.steps
    knobs = dict(negative_prompt=spec.negative_prompt, steps=spec.steps, guidance=spec.guidance,
                 cache_threshold=spec.cache_threshold)

    def on_step(i: int, t: float, latents) -> bool:
        return report(min(DENOISE_SHARE, DENOISE_SHARE * (i + 1) // steps))

    image = load_image(storage.path(video_id, "reference.png")) if spec.reference else None
    if spec.kind == "extension":
        frames, fps, _ = read_video(storage.path(video_id, "source.mp4"))
        video = pipe.extend(frames, fps, spec.prompt, seconds=spec.seconds, seed=spec.seed, on_step=on_step, **knobs)
    else:
        if spec.kind == "edit":  # an edit keeps the source's opening frame and re-imagines the rest
            image = read_video(storage.path(video_id, "source.mp4"))[0][0]
        video = pipe(spec.prompt, seconds=spec.seconds, size=(spec.width, spec.height), seed=spec.seed,
                     image=image, on_step=on_step, **knobs)
    if not report(DENOISE_SHARE):
        raise Cancelled("cancelled before encoding")
    render_files(storage, video_id, video, identity)


def render_files(storage: Storage, video_id: str, video: VideoOutput, identity: Identity) -> None:
    """The MP4 (watermarked, with a signed manifest naming this video), thumbnail and sprite sheet."""
    storage.folder(video_id).mkdir(parents=True, exist_ok=True)
    for variant, visible in (("video", False), ("public", True)):  # the gallery's copy wears a visible label
        write_marked(video.frames, storage.path(video_id, VARIANTS[variant][0]), video.fps, "mp4", video.settings,
                     video.metadata, video_id, identity, visible=visible)
    storage.write_previews(video_id, video.frames)
