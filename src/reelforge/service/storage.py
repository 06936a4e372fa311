"""The file store: one folder per video under REELFORGE_HOME/files/videos.

    <id>/video.mp4         the result (H.264, written atomically by media.encode)
    <id>/thumbnail.webp    a middle frame
    <id>/spritesheet.jpg   frames in a grid, for scrubbing previews
    <id>/reference.png     the input_reference image, normalised to RGB
    <id>/source.mp4        the video an extension or edit starts from (a hard link when possible)

Every write is temp file + rename, so a crash leaves either the old file or the new one.
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np

from ..media.encode import write_bytes_atomic

VARIANTS = {"video": ("video.mp4", "video/mp4"), "thumbnail": ("thumbnail.webp", "image/webp"),
            "spritesheet": ("spritesheet.jpg", "image/jpeg"),
            "public": ("public.mp4", "video/mp4")}  # what share links play: with the visible "AI" label
SPRITE_FRAMES = 16  # enough to scrub a 20 s clip in steps of just over a second
SPRITE_COLUMNS = 4


class Storage:
    def __init__(self, root: Path):
        self.root = root / "videos"
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, video_id: str) -> Path:
        return self.root / video_id

    def path(self, video_id: str, name: str) -> Path:
        return self.folder(video_id) / name

    def variant(self, video_id: str, variant: str) -> tuple[Path, str]:
        name, media_type = VARIANTS[variant]
        return self.path(video_id, name), media_type

    def write_bytes(self, video_id: str, name: str, data: bytes) -> Path:
        target = self.path(video_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_bytes_atomic(target, data)

    def write_image(self, video_id: str, name: str, image: np.ndarray, fmt: str, **options) -> Path:
        import io

        from PIL import Image
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=fmt, **options)
        return self.write_bytes(video_id, name, buffer.getvalue())

    def write_previews(self, video_id: str, frames: np.ndarray) -> None:
        """The thumbnail and sprite sheet of frames (T, H, W, 3) uint8."""
        self.write_image(video_id, VARIANTS["thumbnail"][0], frames[len(frames) // 2], "WEBP", quality=85)
        self.write_image(video_id, VARIANTS["spritesheet"][0], sprite_sheet(frames), "JPEG", quality=85)

    def link(self, from_id: str, from_name: str, to_id: str, to_name: str) -> None:
        """Give `to_id` its own name for a file of `from_id` (a hard link, else a copy), so that
        deleting the original cannot break a queued job that starts from it."""
        source, target = self.path(from_id, from_name), self.path(to_id, to_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)

    def delete(self, video_id: str) -> None:
        shutil.rmtree(self.folder(video_id), ignore_errors=True)

    def sweep(self, keep: set[str]) -> list[str]:
        """Remove folders of videos that have no row (a crash between a DELETE's commit and its rmtree)."""
        orphans = [p.name for p in self.root.iterdir() if p.is_dir() and p.name not in keep]
        for name in orphans:
            self.delete(name)
        return orphans


def preview_indexes(count: int) -> np.ndarray:
    """The frames of a `count`-frame clip that its previews show: up to SPRITE_FRAMES, evenly spaced.
    Given just these, `write_previews` makes the same sheet (and a middle thumbnail)."""
    return np.linspace(0, count - 1, min(SPRITE_FRAMES, count)).round().astype(int)


def sprite_sheet(frames: np.ndarray) -> np.ndarray:
    """Up to SPRITE_FRAMES evenly spaced frames in rows of SPRITE_COLUMNS: (rows*H, cols*W, 3)."""
    picks = frames[preview_indexes(len(frames))]  # (N, H, W, 3)
    count = len(picks)
    columns = min(SPRITE_COLUMNS, count)
    rows = math.ceil(count / columns)
    _, h, w, c = picks.shape
    sheet = np.zeros((rows * columns, h, w, c), np.uint8)
    sheet[:count] = picks
    return sheet.reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, columns * w, c)
